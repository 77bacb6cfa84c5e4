"""What one EnvService serves, as plain data: the server's view of a spec and its
scenarios. Validated on the host (spec/ with pydantic), then handed to the
container as a JSON bundle, so the server there needs no pydantic: a smaller
process in every sandbox."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ServedCheck:
    check_item: str
    check_func: str


@dataclass(frozen=True)
class ServedScenario:
    task_id: str
    task: str = ""
    init_config: dict[str, Any] = field(default_factory=dict)
    checklist_with_func: list[ServedCheck] = field(default_factory=list)


@dataclass(frozen=True)
class ServedEnv:
    env_id: str
    env_class_name: str
    env_class_code: str
    spec_hash: str
    tools: list[dict[str, Any]]  # what is served, OpenAI format
    environment_summary: str = ""
    environment_introduction: str = ""
    constraints_rules: list[str] = field(default_factory=list)
    tool_schemas: str = "derived"  # how `tools` was made: "derived" from the code, or the "record"'s own


def from_spec(spec: Any, scenarios: dict[str, Any],
              tool_schemas: str = "derived") -> tuple[ServedEnv, dict[str, ServedScenario]]:
    """From spec.models' EnvSpec and Scenarios (validated); tools per `tool_schemas` (spec/toolschema.py)."""
    from envscaler.spec.toolschema import served_tools

    env = ServedEnv(env_id=spec.env_id, env_class_name=spec.env_class_name, env_class_code=spec.env_class_code,
                    spec_hash=spec.spec_hash, tools=served_tools(spec.tools, spec.env_class_code, spec.env_class_name,
                                                        tool_schemas),
                    environment_summary=spec.environment_summary,
                    environment_introduction=spec.environment_introduction,
                    constraints_rules=list(spec.constraints_rules), tool_schemas=tool_schemas)
    served = {key: ServedScenario(task_id=s.task_id, task=s.task, init_config=s.init_config,
                                  checklist_with_func=[ServedCheck(c.check_item, c.check_func)
                                                       for c in s.checklist_with_func])
              for key, s in scenarios.items()}
    return env, served


def bundle(env: ServedEnv, scenarios: dict[str, ServedScenario]) -> bytes:
    return json.dumps({"env": asdict(env), "scenarios": [asdict(s) for s in scenarios.values()]},
                      ensure_ascii=False).encode()


def load_bundle(path: Path) -> tuple[ServedEnv, dict[str, ServedScenario]]:
    data = json.loads(path.read_text())
    env = ServedEnv(**data["env"])
    scenarios = {}
    for raw in data["scenarios"]:
        checks = [ServedCheck(**c) for c in raw.pop("checklist_with_func")]
        scenarios[raw["task_id"]] = ServedScenario(**raw, checklist_with_func=checks)
    return env, scenarios
