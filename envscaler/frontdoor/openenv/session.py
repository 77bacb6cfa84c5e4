"""OpenEnv sessions over pool leases: one session, at most one lease, taken by its first reset and given back when
the session ends (closed, its WebSocket gone, idle past the timeout, or the front door shutting down).

A session's phase moves by one table (TRANSITIONS); a step the table has no row for is refused with the phase's
reason (REFUSALS), so what a session may do next is readable in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from envscaler.client.errors import EnvClientError
from envscaler.frontdoor.openenv.actions import (
    Action,
    AtCapacity,
    CallTool,
    FinalAnswer,
    Invalid,
    ListTools,
    OpenEnvError,
    PoolFailed,
    Refused,
    ResetArgs,
    SessionFailed,
    call_observation,
    result,
    tool_spec,
)
from envscaler.frontdoor.tools import Handle, LeaseGone, acquire
from envscaler.v1 import pool_pb2 as ppb
from envscaler.v1 import pool_pb2_grpc as ppb_grpc

log = logging.getLogger("envscaler.frontdoor.openenv")

Phase = Literal["new", "running", "done", "closed"]
Event = Literal["look", "reset", "call", "call_ends", "final", "lost", "close"]

TRANSITIONS: dict[tuple[Phase, Event], Phase] = {
    ("new", "look"): "new",  # list_tools and state: possible in any open session
    ("running", "look"): "running",
    ("done", "look"): "done",
    ("new", "reset"): "running",
    ("running", "reset"): "running",
    ("done", "reset"): "running",
    ("running", "call"): "running",
    ("running", "call_ends"): "done",  # the call broke the episode (its worker died or overran its deadline)
    ("running", "final"): "done",
    ("running", "lost"): "new",  # the pool no longer holds the lease
    ("done", "lost"): "new",
    ("new", "close"): "closed",
    ("running", "close"): "closed",
    ("done", "close"): "closed",
}
REFUSALS: dict[Phase, str] = {
    "new": "no episode in this session yet: reset first (HTTP /step is stateless, as in OpenEnv, each request a "
           "fresh environment: hold a session on the WebSocket at /envs/<env_id>/ws)",
    "running": "not possible while an episode runs",
    "done": "the episode is over (done): reset to start another",
    "closed": "the session is closed",
}


def advance(phase: Phase, event: Event) -> Phase:
    """The phase after `event`; Refused with the reason when the table has no such move."""
    after = TRANSITIONS.get((phase, event))
    if after is None:
        raise Refused(REFUSALS[phase])
    return after


def pool_error(what: str, exc: EnvClientError) -> OpenEnvError:
    """A pool refusal as the OpenEnv error it is for the caller."""
    message = f"{what}: {exc.code}: {exc.details}"
    if exc.code == "RESOURCE_EXHAUSTED":
        return AtCapacity(message)
    if exc.code == "NOT_FOUND":
        return SessionFailed(message)
    if exc.code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION", "PERMISSION_DENIED"):
        return Refused(message)
    return PoolFailed(message)


def pick_scenario(scenario_ids: tuple[str, ...], seed: int | None) -> str:
    """A scenario drawn from the environment's: the same one for the same seed, any one without a seed."""
    chooser = random.Random(seed) if seed is not None else random.SystemRandom()
    return chooser.choice(scenario_ids)


@dataclass(frozen=True)
class EnvEntry:
    """An environment the pool serves, as ListEnvs describes it (enough for list_tools without a lease)."""

    env_id: str
    summary: str
    tools: tuple[dict[str, Any], ...]
    scenario_ids: tuple[str, ...]

    @classmethod
    def from_pb(cls, m: ppb.EnvSummary) -> EnvEntry:
        tools = tuple(tool_spec(t.name, t.description, json.loads(t.parameters_json or "{}")) for t in m.tools)
        return cls(env_id=m.env_id, summary=m.environment_summary, tools=tools,
                   scenario_ids=tuple(sorted(m.scenario_ids)))


@dataclass
class PoolLink:
    stub: ppb_grpc.PoolServiceAsyncStub
    address: str
    acquire_wait: float
    timeout: float


@dataclass(eq=False)
class Session:
    env: EnvEntry
    pool: PoolLink
    id: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    phase: Phase = "new"
    handle: Handle | None = None
    # Called once when the session ends from outside its transport (idle, shutdown): closes the WebSocket.
    on_end: Callable[[str], Awaitable[None]] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_active: float = field(default_factory=time.monotonic)
    step_count: int = 0
    episode_id: str | None = None
    scenario_id: str | None = None
    reward: float | None = None

    def touch(self) -> None:
        self.last_active = time.monotonic()

    # ------------------------------------------------------------ reset

    async def reset(self, args: ResetArgs) -> dict[str, Any]:
        after = advance(self.phase, "reset")
        if args.scenario is not None and args.scenario not in self.env.scenario_ids:
            known = ", ".join(self.env.scenario_ids[:20]) + (" ..." if len(self.env.scenario_ids) > 20 else "")
            raise Invalid(f"reset.scenario: {args.scenario[:128]!r} is not a scenario of {self.env.env_id} "
                          f"(it has: {known or 'none'})")
        if args.scenario is None and not self.env.scenario_ids:
            raise Refused(f"reset: {self.env.env_id} has no scenarios to draw from")
        scenario = args.scenario or pick_scenario(self.env.scenario_ids, args.seed)
        seed = args.seed or 0
        reset = None
        if self.handle is not None:
            try:
                reset = await self.handle.session.reset(scenario, seed=seed)
            except EnvClientError as exc:
                if exc.code != "NOT_FOUND":  # NOT_FOUND: the lease is gone (expired); lease anew below
                    raise pool_error("Reset", exc) from None
                self.handle = None
        if self.handle is None:
            try:
                self.handle = await acquire(self.pool.stub, self.pool.address, self.env.env_id, scenario, None,
                                            wait=self.pool.acquire_wait, seed=seed, timeout=self.pool.timeout)
            except EnvClientError as exc:
                raise pool_error("Acquire", exc) from None
            reset = self.handle.session.initial
        assert reset is not None
        self.phase, self.step_count, self.reward = after, 0, None
        self.scenario_id = reset.scenario_id or scenario
        self.episode_id = args.episode_id or reset.episode_id
        info = await self._describe()
        fields = {"env_id": self.env.env_id, "scenario_id": self.scenario_id, "episode_id": self.episode_id,
                  "task": reset.task}
        # MCPToolClient keeps only an observation's metadata when it is neither tools nor a tool result: the
        # task reaches its users there; GenericEnvClient's see the fields themselves.
        return result({**fields, "environment_introduction": info.get("environment_introduction", ""),
                       "constraints_rules": info.get("constraints_rules", []), "metadata": fields})

    async def _describe(self) -> dict[str, Any]:
        assert self.handle is not None
        try:
            described = await self.handle.session.describe()  # cached: acquire asked for it already
        except EnvClientError:
            return {}
        return {"environment_introduction": described.environment_introduction,
                "constraints_rules": described.constraints_rules}

    # ------------------------------------------------------------ step

    async def step(self, action: Action) -> dict[str, Any]:
        if isinstance(action, ListTools):
            advance(self.phase, "look")
            return result({"tools": list(self.env.tools)})
        if isinstance(action, CallTool):
            return await self._call(action)
        return await self._final(action)

    def _lease(self) -> Handle:
        assert self.handle is not None  # every phase that allows a call or an answer holds a lease
        return self.handle

    async def _call(self, action: CallTool) -> dict[str, Any]:
        after = advance(self.phase, "call")
        handle = self._lease()
        try:
            outcome = await handle.session.call(action.tool_name, json.dumps(action.arguments))
        except EnvClientError as exc:
            raise self._pool_trouble("CallTool", exc) from None
        self.step_count += 1
        observation = call_observation(action.tool_name, outcome)
        if not outcome.episode_broken:
            self.phase = after
            return result(observation)
        # The environment's own code ended its worker: the episode ends truncated and scores 0, as EnvScaler
        # scores a truncated episode; its checks are still run and reported.
        self.phase = advance(self.phase, "call_ends")
        self.reward = 0.0
        return result({**observation, **await self._evaluation(handle)}, reward=0.0, done=True)

    async def _final(self, action: FinalAnswer) -> dict[str, Any]:
        after = advance(self.phase, "final")
        handle = self._lease()
        try:
            evaluation = await handle.session.evaluate()
        except EnvClientError as exc:
            raise self._pool_trouble("Evaluate", exc) from None
        self.step_count += 1
        self.phase, self.reward = after, evaluation.reward
        return result({"answer": action.answer, "evaluation": evaluation.model_dump()}, reward=evaluation.reward,
                      done=True)

    async def _evaluation(self, handle: Handle) -> dict[str, Any]:
        try:
            return {"evaluation": (await handle.session.evaluate()).model_dump()}
        except EnvClientError as exc:
            return {"evaluation_error": f"Evaluate: {exc.code}: {exc.details}"}

    def _pool_trouble(self, what: str, exc: EnvClientError) -> OpenEnvError:
        if exc.code == "NOT_FOUND":
            self._lost()
            return SessionFailed(f"{what}: the pool no longer holds this session's lease ({exc.details}): reset to "
                                 "lease a container anew")
        return pool_error(what, exc)

    def _lost(self) -> None:
        self.phase = advance(self.phase, "lost")
        self.handle = None

    # ------------------------------------------------------------ state

    async def state(self) -> dict[str, Any]:
        """OpenEnv's State (episode_id, step_count) and ours: the scenario, done, the reward, the canonical state."""
        advance(self.phase, "look")
        body: dict[str, Any] = {"episode_id": self.episode_id, "step_count": self.step_count,
                                "env_id": self.env.env_id, "scenario_id": self.scenario_id,
                                "done": self.phase == "done", "reward": self.reward}
        if self.handle is None:
            return body
        try:
            snapshot = await self.handle.session.state()
        except EnvClientError as exc:
            raise self._pool_trouble("GetState", exc) from None
        return {**body, "state": snapshot.state, "state_sha256": snapshot.sha256,
                **({"state_error": f"{snapshot.error_kind}: {snapshot.error_message}"} if snapshot.error_kind else {})}

    # ------------------------------------------------------------ lease upkeep

    async def renew(self) -> None:
        """Keep the lease while the session lives (the pool's TTL may be shorter than the idle timeout)."""
        if self.handle is None:
            return
        try:
            await self.handle.renew()
        except LeaseGone:
            self._lost()
        except EnvClientError as exc:
            log.warning("openenv: renewing the lease of session %s failed: %s", self.id[:8], exc)

    async def release(self) -> None:
        handle, self.handle = self.handle, None
        if self.phase != "closed":
            self.phase = advance(self.phase, "close")
        if handle is not None:
            await handle.release()


class Sessions:
    """Every session of this front door: WebSocket ones and HTTP ones (MCP's openenv/session/create), capped, with
    the idle ones ended by `reap`."""

    def __init__(self, pool: PoolLink, max_sessions: int, idle_timeout: float) -> None:
        self.pool = pool
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout
        self.open: dict[str, Session] = {}

    def start(self, env: EnvEntry, on_end: Callable[[str], Awaitable[None]] | None = None) -> Session:
        if len(self.open) >= self.max_sessions:
            raise AtCapacity(f"this front door holds its cap of {self.max_sessions} sessions: close one first")
        session = Session(env=env, pool=self.pool, on_end=on_end)
        self.open[session.id] = session
        return session

    def find(self, env_id: str, session_id: str) -> Session:
        session = self.open.get(session_id)
        if session is None or session.env.env_id != env_id:
            raise SessionFailed(f"unknown session_id {session_id[:64]!r} of {env_id}: never created here, closed, "
                                f"or idle past {self.idle_timeout:g} s")
        return session

    async def end(self, session: Session, why: str, *, notify: bool = False) -> None:
        """Release the session's lease and forget it; `notify` closes its transport too (the reaper, shutdown)."""
        if self.open.pop(session.id, None) is None:
            return
        try:
            with contextlib.suppress(EnvClientError):
                await session.release()
        finally:
            if notify and session.on_end is not None:
                with contextlib.suppress(Exception):
                    await session.on_end(why)

    async def reap(self, interval: float = 1.0) -> None:
        """End the sessions idle past the timeout; renew the leases of the others. Busy ones are not idle."""
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for session in list(self.open.values()):
                if session.lock.locked():
                    continue
                if now - session.last_active > self.idle_timeout:
                    log.info("openenv: session %s idle for %g s: released", session.id[:8], self.idle_timeout)
                    await self.end(session, f"idle for more than {self.idle_timeout:g} s", notify=True)
                else:
                    async with session.lock:
                        await session.renew()

    async def close(self) -> None:
        for session in list(self.open.values()):
            await self.end(session, "the front door is shutting down", notify=True)
