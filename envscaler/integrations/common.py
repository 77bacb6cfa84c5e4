"""What the trainers' adapters share: an environment's description, its scenarios' tasks, a tool's observation
and an episode's reward, each taken from the pool (nothing of the environment runs in the trainer)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from envscaler.client.errors import EnvClientError
from envscaler.client.models import EnvInfo, Evaluation, ToolResult
from envscaler.client.pool_client import AsyncPoolSession, Pool, PoolSession
from envscaler.rollout.agent import agent_system_prompt, clip


class IntegrationError(ValueError):
    """A pool, environment or scenario an adapter cannot use; the message names which and why."""


@dataclass(frozen=True)
class Described:
    info: EnvInfo
    system_prompt: str
    tasks: dict[str, str]  # scenario id -> task, as the sandbox's Reset gives it


def describe(pool: Pool, env_id: str, *, scenarios: list[str] | None = None, tasks: bool = False,
             wait: float = 60.0) -> Described:
    """One lease on `env_id`: its description and, with `tasks`, every chosen scenario's task."""
    try:
        session = pool.acquire(env_id, wait=wait)
    except EnvClientError as exc:
        raise IntegrationError(f"{env_id}: cannot lease it from the pool at {pool.address}: {exc}") from None
    try:
        info = session.describe()
        chosen = info.scenario_ids if scenarios is None else scenarios
        unknown = [s for s in chosen if s not in info.scenario_ids]
        if unknown:
            raise IntegrationError(f"{env_id}: no scenario {', '.join(map(repr, unknown))} "
                                   f"(it has {', '.join(info.scenario_ids) or 'none'})")
        found = {s: session.reset(s).task for s in chosen} if tasks else dict.fromkeys(chosen, "")
    finally:
        give_back(session)
    return Described(info=info, system_prompt=agent_system_prompt(info, "non-conv"), tasks=found)


def give_back(session: PoolSession) -> None:
    with contextlib.suppress(EnvClientError):  # an expired lease is already back in the pool
        session.release()


async def give_back_async(session: AsyncPoolSession) -> None:
    with contextlib.suppress(EnvClientError):
        await session.release()


def observation(result: ToolResult, limit: int) -> str:
    """What the model reads back from a call, as envscaler's own rollouts show it."""
    return clip(result.observation, limit)


def reward(evaluation: Evaluation | None, broken: str) -> float:
    """The checks' mean; an episode whose environment code broke it scores 0, as in the gym adapter."""
    return 0.0 if broken or evaluation is None else evaluation.reward
