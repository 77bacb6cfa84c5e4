"""Replaying the fidelity corpus two ways, to compare them step by step.

`in_process` is EnvScaler's own way, in this process: exec the module, `cls(deepcopy(init_config))` (or
`cls()`), a setattr of each key, `getattr(instance, name)(**arguments)` with `str(result)` as the observation,
`deepcopy(vars(instance))` without dunder keys as the state, and each check_func run on a deep copy of it
with `initial_state` as a global. `sandboxed` drives anything with EnvClient's methods (a server, a pool
session) through the same calls. Both give a Replay; equal Replays are identical runs.
"""

from __future__ import annotations

import copy
import json
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envscaler.runtime.sandbox import codec
from envscaler.spec import Corpus, load_corpus

HERE = Path(__file__).resolve().parent


@dataclass
class Step:
    name: str
    observation: str
    result: Any  # the canonical JSON, parsed
    error_kind: str = ""


@dataclass
class Replay:
    initial_sha256: str
    steps: list[Step] = field(default_factory=list)
    final_sha256: str = ""
    outcomes: list[str] = field(default_factory=list)
    reward: float = 0.0


def corpus() -> Corpus:
    return load_corpus(HERE / "env_metadata.json", HERE / "scenarios.json")


def solutions() -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(env_id, task_id, calls) for every reference solution."""
    found = []
    for path in sorted((HERE / "solutions").glob("*.jsonl")):
        env_id, task_id = path.stem.split("__")
        found.append((env_id, task_id, [json.loads(line) for line in path.read_text().splitlines()]))
    return found


def _state(instance: Any) -> dict[str, Any]:
    return copy.deepcopy({k: v for k, v in vars(instance).items() if not (k.startswith("__") and k.endswith("__"))})


def in_process(corpus: Corpus, env_id: str, task_id: str, calls: list[dict[str, Any]]) -> Replay:
    spec, scenario = corpus.env(env_id), corpus.scenarios_of(env_id)[task_id]
    module = types.ModuleType(f"envscaler_fidelity_{env_id}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(spec.env_class_code, f"<{env_id}>", "exec"), module.__dict__)
    cls = getattr(module, spec.env_class_name)
    config = copy.deepcopy(scenario.init_config)
    try:
        instance = cls(copy.deepcopy(config))
    except TypeError:
        instance = cls()
    for key, value in config.items():
        setattr(instance, key, value)
    initial_state = _state(instance)
    replay = Replay(initial_sha256=codec.sha256(codec.dumps(initial_state)))
    for call in calls:
        result = getattr(instance, call["name"])(**call["arguments"])
        replay.steps.append(Step(call["name"], str(result), json.loads(codec.dumps(result))))
    final_state = _state(instance)
    replay.final_sha256 = codec.sha256(codec.dumps(final_state))
    for check in scenario.checklist_with_func:
        namespace: dict[str, Any] = {"initial_state": copy.deepcopy(initial_state)}
        try:
            exec(check.check_func, namespace)
            value = namespace["check_func"](copy.deepcopy(final_state))
            replay.outcomes.append(("PASS" if value else "FAIL") if isinstance(value, bool) else "ERROR")
        except Exception:
            replay.outcomes.append("ERROR")
    replay.reward = round(replay.outcomes.count("PASS") / len(replay.outcomes), 4)
    return replay


def sandboxed(env: Any, initial_sha256: str, calls: list[dict[str, Any]]) -> Replay:
    """`env` was reset to the scenario already (its Reset gave initial_sha256)."""
    replay = Replay(initial_sha256=initial_sha256)
    for call in calls:
        done = env.call(call["name"], call["arguments"])
        replay.steps.append(Step(call["name"], done.observation, done.result, done.error_kind))
    replay.final_sha256 = env.state().sha256
    evaluation = env.evaluate()
    replay.outcomes = [c.outcome for c in evaluation.checks]
    replay.reward = evaluation.reward
    return replay
