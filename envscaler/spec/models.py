"""Pydantic models of EnvScaler's environment metadata and scenario records.

Unknown fields (EnvScaler's analysis by-products such as `env_structure`) are
kept, so a record round-trips unchanged.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class StateEntity(_Record):
    entity: str
    attributes: str | list[str] = ""
    description: str = ""


class Operation(_Record):
    operation_name: str
    operation_description: str = ""
    operation_type: str = ""
    code: str = ""


class EnvSpec(_Record):
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


class CheckSpec(_Record):
    check_item: str = ""
    check_func: str = Field(min_length=1)


class Scenario(_Record):
    env_id: str = Field(min_length=1)
    env_class_name: str = ""
    task_id: str = Field(min_length=1)
    init_config: dict[str, Any] = Field(default_factory=dict)
    task: str = ""
    checklist: list[str] = Field(default_factory=list)
    checklist_with_func: list[CheckSpec] = Field(default_factory=list)

    @field_validator("task_id", mode="before")
    @classmethod
    def _task_id_as_text(cls, value: Any) -> Any:
        # Some published task ids are numbers; they are keys, so keep them as text.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value
