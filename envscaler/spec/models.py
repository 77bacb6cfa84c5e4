"""Pydantic models of EnvScaler's environment metadata and scenario records.

EnvScaler's pipeline by-products (`env_class_def`, `env_structure`, `env_func_details`, SkelBuilder's scores and
test results) and the author's own `x_` fields are kept, so a record round-trips unchanged; any other field is
reported (`misspelt_fields`): an error when it stands in for a field the record lacks.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from envscaler.spec.fields import FieldFinding, unknown_fields


class Record(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    # Fields EnvScaler writes that nothing here reads: accepted and kept as they are.
    by_products: ClassVar[frozenset[str]] = frozenset()
    # Names people write for a field, for the "did you mean".
    aliases: ClassVar[dict[str, str]] = {}
    # Fields holding lists of records, whose own fields are checked too.
    nested: ClassVar[dict[str, type[Record]]] = {}

    @classmethod
    def known_fields(cls) -> frozenset[str]:
        return frozenset(cls.model_fields) | cls.by_products


def misspelt_fields(model: type[Record], data: dict[str, Any], prefix: str = "") -> list[FieldFinding]:
    """A finding for every field of a raw record, nested lists of records included, that the model does not
    know."""
    found = unknown_fields(data, model.known_fields(), model.aliases, prefix)
    for name, item_model in model.nested.items():
        items = data.get(name)
        if isinstance(items, list):
            for i, item in enumerate(items):
                if isinstance(item, dict):
                    found += misspelt_fields(item_model, item, f"{prefix}{name}[{i}].")
    return found


class StateEntity(Record):
    entity: str
    attributes: str | list[str] = ""
    description: str = ""


class Operation(Record):
    operation_name: str
    operation_description: str = ""
    operation_type: str = ""
    code: str = ""

    # SkelBuilder's stage-2 records call the description `description`.
    by_products: ClassVar[frozenset[str]] = frozenset({"description"})
    aliases: ClassVar[dict[str, str]] = {"name": "operation_name", "type": "operation_type", "source": "code"}


class EnvSpec(Record):
    env_id: str = Field(min_length=1)
    environment_summary: str = ""
    environment_introduction: str = ""
    state_space_definition: list[StateEntity] = Field(default_factory=list)
    constraints_rules: list[str] = Field(default_factory=list)
    operation_list: list[Operation] = Field(default_factory=list)
    env_class_name: str = Field(min_length=1)
    env_class_code: str = Field(min_length=1)
    # OpenAI function schemas as published; None when the record has none.
    tools: list[dict[str, Any]] | None = None

    # What SkelBuilder's stages add (its README's formats): the analysis, the seed task and its scores, the test
    # configs and results.
    by_products: ClassVar[frozenset[str]] = frozenset({
        "env_class_def", "env_structure", "env_func_details", "task", "task_from", "usefulness", "modelability",
        "init_config_list", "func_test_result"})
    aliases: ClassVar[dict[str, str]] = {
        "id": "env_id", "summary": "environment_summary", "introduction": "environment_introduction",
        "state_space": "state_space_definition",
        "rules": "constraints_rules", "constraints": "constraints_rules", "operations": "operation_list",
        "class_name": "env_class_name", "class": "env_class_name", "code": "env_class_code",
        "class_code": "env_class_code", "functions": "tools"}
    nested: ClassVar[dict[str, type[Record]]] = {"state_space_definition": StateEntity,
                                                  "operation_list": Operation}

    @property
    def spec_hash(self) -> str:
        """Content hash of what defines behaviour: the code, the tools and the rules."""
        payload = {
            "env_class_name": self.env_class_name,
            "env_class_code": self.env_class_code,
            "tools": self.tools,
            "constraints_rules": self.constraints_rules,
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()


class CheckSpec(Record):
    check_item: str = ""
    check_func: str = Field(min_length=1)

    aliases: ClassVar[dict[str, str]] = {"item": "check_item", "description": "check_item", "func": "check_func",
                                         "function": "check_func", "code": "check_func", "check": "check_func"}


class Scenario(Record):
    env_id: str = Field(min_length=1)
    env_class_name: str = ""
    task_id: str = Field(min_length=1)
    init_config: dict[str, Any] = Field(default_factory=dict)
    task: str = ""
    checklist: list[str] = Field(default_factory=list)
    checklist_with_func: list[CheckSpec] = Field(default_factory=list)

    aliases: ClassVar[dict[str, str]] = {
        "checks": "checklist_with_func", "check": "checklist_with_func", "check_funcs": "checklist_with_func",
        "checklist_with_funcs": "checklist_with_func", "init": "init_config", "config": "init_config",
        "initial_config": "init_config", "initial_state": "init_config", "id": "task_id", "description": "task",
        "instruction": "task", "class_name": "env_class_name"}
    nested: ClassVar[dict[str, type[Record]]] = {"checklist_with_func": CheckSpec}

    @field_validator("task_id", mode="before")
    @classmethod
    def _task_id_as_text(cls, value: Any) -> Any:
        # Some published task ids are numbers; they are keys, so keep them as text.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value
