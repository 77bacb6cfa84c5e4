"""The server's view of its bundle (format: envscaler/protocol/bundle.py), read from the image's bundle directory. Only
the index stays in memory; one scenario is parsed per Reset (its checks per Evaluate), so the server's memory does not
grow with the number or size of scenarios."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from envscaler.protocol.bundle import (
    ENV_FILE,
    INDEX_FILE,
    ServedCheck,
    ServedEnv,
    ServedScenario,
    scenario_file,
)

__all__ = ["ScenarioStore", "ServedCheck", "ServedEnv", "ServedScenario", "for_reset", "load_bundle",
           "scenario_checks"]


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
        head = json.loads((self.root / scenario_file(position)).read_text())
        return head["task_id"], head["task"], (self.root / scenario_file(position, ".init")).read_bytes()

    def checks(self, task_id: str) -> list[ServedCheck]:
        """One scenario's checks, without reading its init_config."""
        raw = json.loads((self.root / scenario_file(self.positions[task_id], ".checks")).read_text())
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
