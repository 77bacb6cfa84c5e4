"""A verifiers environment backed by a pool: multi-turn tool use, the scenario's sandboxed checks as its rubric.

    import verifiers as vf
    from openai import AsyncOpenAI
    from envscaler.integrations.verifiers import PoolToolEnv

    env = PoolToolEnv("tcp:127.0.0.1:50051", env_ids=["env_4"])
    results = env.evaluate_sync(vf.clients.OpenAIChatCompletionsClient(AsyncOpenAI(...)), model="...")

Each dataset row is one scenario of one pooled environment: its prompt is the environment's system prompt and the
scenario's task, its `info` names the environment and the scenario and carries the environment's tool schemas (as
the sandbox serves them). A rollout leases a container for its scenario (setup_state), runs each of the model's
tool calls there (env_response), and ends when the model answers without a tool call; then the scenario's checks run
in the sandbox and the lease goes back (a cleanup handler). The rubric's reward is the checks' mean; `checks_passed`
and `checks_total` are its metrics. Nothing of the environment runs in this process.

prime-rl and `vf-eval` load environments by a module's `load_environment(**kwargs)`: this module has one.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import verifiers as vf
from datasets import Dataset
from verifiers.types import AssistantMessage, Messages, State, ToolMessage

from envscaler.client.errors import EnvClientError
from envscaler.client.models import Evaluation
from envscaler.client.pool_client import AsyncPool, AsyncPoolSession, Pool
from envscaler.integrations.common import IntegrationError, describe, give_back_async, observation, reward


def tool_defs(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The environment's tools (OpenAI format, as the sandbox serves them) as verifiers' tool definitions."""
    return [{"name": t["function"]["name"], "description": t["function"].get("description", ""),
             "parameters": t["function"].get("parameters") or {"type": "object", "properties": {}}}
            for t in tools]


def scenario_rows(pool: Pool, env_ids: list[str] | None, scenarios: list[str] | None,
                  wait: float) -> list[dict[str, Any]]:
    """One row per scenario: the system prompt and the task (from the sandbox's Reset), its lease's coordinates."""
    listed = [e.env_id for e in pool.list_envs().envs]
    chosen = listed if env_ids is None else env_ids
    unknown = [e for e in chosen if e not in listed]
    if unknown:
        raise IntegrationError(f"the pool at {pool.address} serves no {', '.join(map(repr, unknown))} "
                               f"(it serves {', '.join(listed) or 'nothing'})")
    rows = []
    for env_id in chosen:
        described = describe(pool, env_id, scenarios=scenarios, tasks=True, wait=wait)
        definitions = tool_defs(described.info.tools)
        for scenario_id, task in described.tasks.items():
            info = {"env_id": env_id, "scenario_id": scenario_id, "tool_defs": definitions}
            rows.append({"prompt": [{"role": "system", "content": described.system_prompt},
                                    {"role": "user", "content": task}],
                         "answer": "", "info": json.dumps(info)})  # JSON: tool schemas differ in shape per row
    if not rows:
        raise IntegrationError(f"no scenarios to play in {', '.join(chosen)}")
    return rows


def check_rows(dataset: Dataset) -> None:
    """Every row must say which lease to make: info.env_id and info.scenario_id."""
    for number, info in enumerate(dataset["info"] if "info" in dataset.column_names else [None] * len(dataset)):
        found = json.loads(info) if isinstance(info, str) else info
        if not isinstance(found, dict) or not all(isinstance(found.get(k), str) for k in ("env_id", "scenario_id")):
            raise IntegrationError(f"dataset row {number}: its 'info' needs 'env_id' and 'scenario_id' strings "
                                   "(scenario_rows makes such rows)")


def evaluation_of(state: State) -> Evaluation | None:
    found = state.get("sandbox_evaluation")
    return Evaluation.model_validate(found) if found else None


async def sandboxed_checks(state: State) -> float:
    """The scenario's checks, evaluated in the rollout's container on its final state."""
    return reward(evaluation_of(state), state.get("sandbox_broken", ""))


async def checks_passed(state: State) -> float:
    evaluation = evaluation_of(state)
    return float(evaluation.passed) if evaluation else 0.0


async def checks_total(state: State) -> float:
    evaluation = evaluation_of(state)
    return float(evaluation.total) if evaluation else 0.0


class PoolToolEnv(vf.MultiTurnEnv):
    """`pool`: a pool's address. `env_ids` and `scenarios` narrow the rows (default: every scenario of every
    environment the pool serves); `dataset` replaces them (rows shaped as scenario_rows makes)."""

    def __init__(self, pool: str, *, env_ids: list[str] | None = None, scenarios: list[str] | None = None,
                 dataset: Dataset | None = None, max_turns: int = 30, wait: float = 120.0,
                 max_observation_chars: int = 8000, **kwargs: Any) -> None:
        self.pool_address, self.wait, self.max_observation_chars = pool, wait, max_observation_chars
        if dataset is None:
            with Pool(pool) as blocking:
                dataset = Dataset.from_list(scenario_rows(blocking, env_ids, scenarios, wait))
        check_rows(dataset)
        rubric = vf.Rubric(funcs=[sandboxed_checks])
        rubric.add_metric(checks_passed)
        rubric.add_metric(checks_total)
        self._sessions: dict[str, AsyncPoolSession] = {}  # trajectory id -> its lease (kept out of the state)
        self._pool: AsyncPool | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        super().__init__(dataset=dataset, eval_dataset=dataset, rubric=rubric, max_turns=max_turns, **kwargs)

    def _async_pool(self) -> AsyncPool:
        """One asyncio client a loop (gRPC's aio channels belong to the loop that made them)."""
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool_loop is not loop:
            self._pool, self._pool_loop = AsyncPool(self.pool_address), loop
        return self._pool

    async def setup_state(self, state: State) -> State:
        info = state["info"]
        env_id, scenario_id = info["env_id"], info["scenario_id"]
        try:
            session = await self._async_pool().acquire(env_id, scenario_id, wait=self.wait)
        except EnvClientError as exc:
            raise vf.SandboxError(f"{env_id}/{scenario_id}: cannot lease: {exc}") from None
        self._sessions[state["trajectory_id"]] = session
        state["episode_id"] = session.episode_id
        return state

    @vf.stop
    async def answered_without_tools(self, state: State) -> bool:
        """The episode ends when the model's turn calls no tool (its final answer), as in envscaler's rollouts."""
        if not state["trajectory"]:
            return False
        last = state["trajectory"][-1]["completion"][-1]
        return last.role == "assistant" and not getattr(last, "tool_calls", None)

    async def env_response(self, messages: Messages, state: State, **kwargs: Any) -> Messages:
        """Each tool call of the turn, in order, in the sandbox; bad JSON or arguments are the sandbox's to
        refuse, and its message is the tool's answer."""
        session = self._sessions[state["trajectory_id"]]
        last = cast(AssistantMessage, messages[-1])
        answers: Messages = []
        for call in last.tool_calls or []:
            try:
                result = await session.call(call.name, call.arguments or "{}")
            except EnvClientError as exc:
                raise vf.SandboxError(f"{session.env_id}: the lease was lost: {exc}") from None
            answers.append(ToolMessage(tool_call_id=call.id,
                                       content=observation(result, self.max_observation_chars)))
            if result.episode_broken:  # the environment's own code ended its worker: the episode is over
                state["sandbox_broken"] = result.error_message or "the environment's code ended the episode"
                state["final_env_response"] = answers
                break
        return answers

    @vf.cleanup
    async def score_in_sandbox(self, state: State) -> None:
        """The checks on the final state while the lease is held, then the lease goes back."""
        session = self._sessions.pop(state.get("trajectory_id", ""), None)
        if session is None:
            return
        try:
            if not state.get("sandbox_broken"):
                state["sandbox_evaluation"] = (await session.evaluate()).model_dump()
        except EnvClientError as exc:
            state["sandbox_error"] = str(exc)
        finally:
            await give_back_async(session)


def load_environment(pool: str = "tcp:127.0.0.1:50051", **kwargs: Any) -> PoolToolEnv:
    """verifiers' loader entry point (`vf.load_environment`, prime-rl, vf-eval)."""
    return PoolToolEnv(pool, **kwargs)
