"""A validated spec and its scenarios as the bundle a sandbox serves (envscaler/protocol/bundle.py): tools derived here,
on the host, from the code's syntax (envscaler/spec/toolschema.py), never by running it."""

from __future__ import annotations

from envscaler.protocol.bundle import ServedCheck, ServedEnv, ServedScenario
from envscaler.spec.models import EnvSpec, Scenario
from envscaler.spec.toolschema import served_tools


def from_spec(spec: EnvSpec, scenarios: dict[str, Scenario],
              tool_schemas: str = "derived") -> tuple[ServedEnv, dict[str, ServedScenario]]:
    """From spec.models' EnvSpec and Scenarios (validated); tools per `tool_schemas` (envscaler/spec/toolschema.py)."""
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
