"""An EnvScaler environment served by openenv-core (PyPI), for the benchmark.

Runs inside a container built from the same base image as ours. It follows
OpenEnv's own recipe: an `Environment` subclass with Action/Observation models,
served by `create_app` under uvicorn; sessions go over its WebSocket at /ws. The
class is instantiated EnvScaler's way, the same environment and scenario as ours.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from openenv.core.env_server.http_server import create_app
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import Action, Observation, State

SPEC = json.loads(Path(os.environ.get("OPENENV_BENCH_SPEC", "/opt/bench/env.json")).read_text())


def _load_class() -> type:
    namespace: dict[str, Any] = {"__name__": "envscaler_env"}
    exec(compile(SPEC["env_class_code"], "<env>", "exec"), namespace)
    return namespace[SPEC["env_class_name"]]


ENV_CLASS = _load_class()


class ToolAction(Action):
    tool: str
    arguments: dict[str, Any] = {}


class ToolObservation(Observation):
    result: Any = None
    observation: str = ""


class EnvScalerEnvironment(Environment):
    def __init__(self) -> None:
        super().__init__()
        self.instance: Any = None
        self.steps = 0

    def reset(self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any) -> ToolObservation:
        config = copy.deepcopy(SPEC["init_config"])
        try:
            self.instance = ENV_CLASS(copy.deepcopy(config))
        except TypeError:
            self.instance = ENV_CLASS()
        for key, value in config.items():
            setattr(self.instance, key, value)
        self.steps = 0
        return ToolObservation(observation=SPEC["task"])

    def step(self, action: ToolAction, timeout_s: float | None = None, **kwargs: Any) -> ToolObservation:
        self.steps += 1
        result = getattr(self.instance, action.tool)(**action.arguments)
        return ToolObservation(result=result, observation=str(result))

    @property
    def state(self) -> State:
        return State(step_count=self.steps)


app = create_app(EnvScalerEnvironment, ToolAction, ToolObservation, env_name="envscaler_bench")
