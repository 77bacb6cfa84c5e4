"""A gym-style view of a pool session, for RL frameworks' rollout loops.

Follows gymnasium's and GEM's conventions:
    obs, info = env.reset(seed=..., options={"scenario": "0115-091204"})
    obs, reward, terminated, truncated, info = env.step(action)

An action is a tool call `{"name": ..., "arguments": {...} | "<raw JSON>"}`, a list
of tool calls (one model turn), or a string: the agent's final answer, which ends
the episode and is scored by the scenario's sandboxed checks.
"""

from __future__ import annotations

from typing import Any

from envscaler.client.pool_client import Pool, PoolSession
from envscaler.rollout.agent import agent_system_prompt

Action = dict[str, Any] | list[dict[str, Any]] | str


class EnvScalerGymEnv:
    def __init__(self, pool: Pool, env_id: str, scenario: str | None = None, *, max_steps: int = 30,
                 wait: float = 60.0) -> None:
        self.pool, self.env_id, self.scenario = pool, env_id, scenario
        self.max_steps, self.wait = max_steps, wait
        self.session: PoolSession | None = None
        self.steps = 0
        self.done = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        scenario = (options or {}).get("scenario", self.scenario)
        if scenario is None:
            raise ValueError("reset needs a scenario: pass it to the constructor or as options={'scenario': ...}")
        self.scenario = scenario
        if self.session is None:
            self.session = self.pool.acquire(self.env_id, wait=self.wait)
        reset = self.session.reset(scenario, seed=seed or 0)
        self.steps, self.done = 0, False
        info = self.session.describe()
        return reset.task, {"env_id": self.env_id, "scenario_id": scenario, "tools": info.tools,
                            "system_prompt": agent_system_prompt(info, "non-conv"),
                            "state_sha256": reset.state_sha256}

    def step(self, action: Action) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self.session is None or self.done:
            raise RuntimeError("call reset() before step()")
        if isinstance(action, str):
            evaluation = self.session.evaluate()
            self.done = True
            return action, evaluation.reward, True, False, {"evaluation": evaluation.model_dump()}
        calls = action if isinstance(action, list) else [action]
        observations, errors = [], []
        for call in calls:
            result = self.session.call(call["name"], call.get("arguments") or {})
            self.steps += 1
            observations.append(result.observation)
            errors.append(result.error_kind)
            if result.episode_broken:
                self.done = True
                return "\n".join(observations), 0.0, False, True, {"errors": errors, "broken": result.error_message}
        truncated = self.steps >= self.max_steps
        self.done = truncated
        return "\n".join(observations), 0.0, False, truncated, {"errors": errors}

    def close(self) -> None:
        if self.session is not None:
            self.session.release()
            self.session = None
