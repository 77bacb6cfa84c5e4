"""What one EnvService serves, as plain data: the server's view of a spec and its
scenarios. Validated on the host (spec/ with pydantic), then handed to the
container as a bundle directory of JSON files, so the server there needs no
pydantic: a smaller process in every sandbox.

A bundle directory holds `env.json`, `index.json` (the scenario ids in order)
and two files per scenario: `scenarios/N.json` (task and init_config) and
`scenarios/N.checks.json`. The server keeps only the index in memory and parses
one scenario per Reset (its checks per Evaluate), so its memory does not grow
with the number or size of scenarios."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
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


ENV_FILE = "env.json"
INDEX_FILE = "index.json"
SCENARIO_DIR = "scenarios"


def _scenario_file(position: int, part: str = "") -> str:
    return f"{SCENARIO_DIR}/{position}{part}.json"


def bundle_files(env: ServedEnv, scenarios: Mapping[str, ServedScenario]) -> Iterator[tuple[str, bytes]]:
    """A bundle directory's files (relative names), scenario by scenario, so a caller can stream them."""
    yield ENV_FILE, json.dumps(asdict(env), ensure_ascii=False).encode()
    yield INDEX_FILE, json.dumps(list(scenarios), ensure_ascii=False).encode()
    for position, scenario in enumerate(scenarios.values()):
        yield _scenario_file(position), json.dumps({"task_id": scenario.task_id, "task": scenario.task},
                                                   ensure_ascii=False).encode()
        yield _scenario_file(position, ".init"), json.dumps(scenario.init_config, ensure_ascii=False).encode()
        yield _scenario_file(position, ".checks"), json.dumps(
            [asdict(c) for c in scenario.checklist_with_func], ensure_ascii=False).encode()


class ScenarioStore(Mapping[str, ServedScenario]):
    """A bundle directory's scenarios, read from disk on each lookup: only the index stays in memory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        ids = json.loads((root / INDEX_FILE).read_text())
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError(f"{root / INDEX_FILE}: expected a JSON list of scenario ids")
        self.positions = {task_id: position for position, task_id in enumerate(ids)}

    def __getitem__(self, task_id: str) -> ServedScenario:
        task_id, task, init_config = self.for_reset(task_id)
        return ServedScenario(task_id=task_id, task=task, init_config=json.loads(init_config),
                              checklist_with_func=self.checks(task_id))

    def for_reset(self, task_id: str) -> tuple[str, str, bytes]:
        """A scenario's id, task and init_config as the JSON text on disk, unparsed."""
        position = self.positions[task_id]
        head = json.loads((self.root / _scenario_file(position)).read_text())
        return head["task_id"], head["task"], (self.root / _scenario_file(position, ".init")).read_bytes()

    def checks(self, task_id: str) -> list[ServedCheck]:
        """One scenario's checks, without reading its init_config."""
        raw = json.loads((self.root / _scenario_file(self.positions[task_id], ".checks")).read_text())
        return [ServedCheck(**c) for c in raw]

    def __iter__(self) -> Iterator[str]:
        return iter(self.positions)

    def __len__(self) -> int:
        return len(self.positions)


def for_reset(scenarios: Mapping[str, ServedScenario], task_id: str) -> tuple[str, str, Any] | None:
    """What Reset needs: id, task and init_config (a store's: the JSON text as bytes, unparsed); None if unknown."""
    if task_id not in scenarios:
        return None
    if isinstance(scenarios, ScenarioStore):
        return scenarios.for_reset(task_id)
    scenario = scenarios[task_id]
    return scenario.task_id, scenario.task, scenario.init_config


def scenario_checks(scenarios: Mapping[str, ServedScenario], task_id: str) -> list[ServedCheck] | None:
    """A scenario's checks (None: no such scenario); from a store, without reading its init_config."""
    if task_id not in scenarios:
        return None
    if isinstance(scenarios, ScenarioStore):
        return scenarios.checks(task_id)
    return scenarios[task_id].checklist_with_func


def write_bundle(root: Path, env: ServedEnv, scenarios: Mapping[str, ServedScenario]) -> Path:
    """A bundle directory on disk (for tests and local serving; images write the same files into their layer)."""
    for name, data in bundle_files(env, scenarios):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def load_bundle(path: Path) -> tuple[ServedEnv, Mapping[str, ServedScenario]]:
    """A bundle directory (scenarios stay on disk), or a single JSON bundle file (all parsed)."""
    if path.is_dir():
        env = ServedEnv(**json.loads((path / ENV_FILE).read_text()))
        return env, ScenarioStore(path)
    data = json.loads(path.read_text())
    env = ServedEnv(**data["env"])
    scenarios = {}
    for raw in data["scenarios"]:
        checks = [ServedCheck(**c) for c in raw.pop("checklist_with_func")]
        scenarios[raw["task_id"]] = ServedScenario(**raw, checklist_with_func=checks)
    return env, scenarios
