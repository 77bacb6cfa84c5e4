"""The bundle: what one EnvService serves, as plain data, and how an image carries it. The host validates a spec
and its scenarios (spec/, with pydantic) and writes the bundle (envscaler/spec/served.py); the sandbox's server reads it
(envscaler/runtime/trusted/served.py) and needs no pydantic: a smaller process in every sandbox.

A bundle directory holds `env.json`, `index.json` (the scenario ids in order) and, per scenario N,
`scenarios/N.json` (id and task), `scenarios/N.init.json` (init_config) and `scenarios/N.checks.json`.
"""

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


def bundle(env: ServedEnv, scenarios: dict[str, ServedScenario]) -> bytes:
    return json.dumps({"env": asdict(env), "scenarios": [asdict(s) for s in scenarios.values()]},
                      ensure_ascii=False).encode()


ENV_FILE = "env.json"
INDEX_FILE = "index.json"
SCENARIO_DIR = "scenarios"


def scenario_file(position: int, part: str = "") -> str:
    return f"{SCENARIO_DIR}/{position}{part}.json"


def bundle_files(env: ServedEnv, scenarios: Mapping[str, ServedScenario]) -> Iterator[tuple[str, bytes]]:
    """A bundle directory's files (relative names), scenario by scenario, so a caller can stream them."""
    yield ENV_FILE, json.dumps(asdict(env), ensure_ascii=False).encode()
    yield INDEX_FILE, json.dumps(list(scenarios), ensure_ascii=False).encode()
    for position, scenario in enumerate(scenarios.values()):
        yield scenario_file(position), json.dumps({"task_id": scenario.task_id, "task": scenario.task},
                                                   ensure_ascii=False).encode()
        yield scenario_file(position, ".init"), json.dumps(scenario.init_config, ensure_ascii=False).encode()
        yield scenario_file(position, ".checks"), json.dumps(
            [asdict(c) for c in scenario.checklist_with_func], ensure_ascii=False).encode()


def write_bundle(root: Path, env: ServedEnv, scenarios: Mapping[str, ServedScenario]) -> Path:
    """A bundle directory on disk (for tests and local serving; images write the same files into their layer)."""
    for name, data in bundle_files(env, scenarios):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root
