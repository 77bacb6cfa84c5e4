"""Hand-played episodes: each is one lease from the pool, held while its page sends heartbeats.

Every call goes to the leased sandbox through the pool; the console only keeps what the page shows (the log
of calls, observations and state diffs). A page that stops beating (a closed tab) loses its lease after
`ttl` seconds: the reaper releases it, and the pool's own lease TTL is the backstop should the console die.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import grpc
import grpc.aio

from envscaler.client.errors import EnvClientError
from envscaler.client.models import Evaluation, ToolResult
from envscaler.client.pool_client import AsyncPool, AsyncPoolSession
from envscaler.console.diff import DiffRow, state_diff
from envscaler.v1 import pool_pb2 as ppb


class PlayState(Enum):
    LEASED = "leased"
    RELEASED = "released"  # by the page, or by the reaper after missed heartbeats


@dataclass
class Step:
    number: int
    tool: str
    arguments: dict[str, Any]
    result: ToolResult
    diff: list[DiffRow]
    state_note: str = ""  # why there is no diff (e.g. the state has no canonical JSON)


@dataclass
class Play:
    play_id: str
    env_id: str
    scenario_id: str
    session: AsyncPoolSession
    task: str
    state: Any
    last_beat: float
    status: PlayState = PlayState.LEASED
    steps: list[Step] = field(default_factory=list)
    evaluation: Evaluation | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one action at a time per episode

    @property
    def lease_id(self) -> str:
        return self.session.lease_id


class PlayError(Exception):
    """A play that does not exist or was released; the message is for the page."""


class Plays:
    def __init__(self, pool: AsyncPool, ttl: float) -> None:
        self.pool, self.ttl = pool, ttl
        self.plays: dict[str, Play] = {}

    async def start(self, env_id: str, scenario_id: str) -> Play:
        # The pool's TTL is a little longer than the console's: the console releases first, the pool catches up
        # only when the console itself is gone.
        session = await self.pool.acquire(env_id, scenario_id, ttl=self.ttl * 2, wait=60.0)
        initial = session.initial if session.initial is not None else await session.reset(scenario_id)
        play = Play(play_id=secrets.token_urlsafe(12), env_id=env_id, scenario_id=scenario_id, session=session,
                    task=initial.task, state=initial.state, last_beat=time.monotonic())
        self.plays[play.play_id] = play
        return play

    def get(self, play_id: str) -> Play:
        play = self.plays.get(play_id)
        if play is None or play.status is not PlayState.LEASED:
            raise PlayError("this episode's lease was released (closed page or missed heartbeats); start a new one")
        return play

    async def beat(self, play_id: str) -> None:
        play = self.get(play_id)
        play.last_beat = time.monotonic()
        try:
            await play.session.pool_stub.Renew(ppb.RenewRequest(lease_id=play.lease_id), timeout=10.0)
        except grpc.RpcError as exc:  # NOT_FOUND: the pool reclaimed it
            await self.release(play_id)
            details = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
            raise PlayError(f"the pool no longer holds this lease: {details}") from None

    async def call(self, play: Play, tool: str, arguments: dict[str, Any]) -> Step:
        async with play.lock:
            result = await play.session.call(tool, arguments)
            snapshot = await play.session.state()
            note = ""
            if snapshot.state is None:
                note, diff = f"no state diff: {snapshot.error_kind} {snapshot.error_message}".strip(), []
            else:
                diff = state_diff(play.state, snapshot.state) if play.state is not None else []
                play.state = snapshot.state
            step = Step(number=len(play.steps) + 1, tool=tool, arguments=arguments, result=result, diff=diff,
                        state_note=note)
            play.steps.append(step)
            play.last_beat = time.monotonic()
            return step

    async def evaluate(self, play: Play) -> Evaluation:
        async with play.lock:
            play.evaluation = await play.session.evaluate(play.scenario_id)
            return play.evaluation

    async def reset(self, play: Play) -> None:
        async with play.lock:
            initial = await play.session.reset(play.scenario_id)
            play.task, play.state, play.steps, play.evaluation = initial.task, initial.state, [], None

    async def release(self, play_id: str) -> None:
        play = self.plays.pop(play_id, None)
        if play is None or play.status is PlayState.RELEASED:
            return
        play.status = PlayState.RELEASED
        with contextlib.suppress(EnvClientError):  # an expired lease is already back in the pool
            await play.session.release()

    async def reap(self) -> None:
        """Release the plays whose page stopped beating."""
        now = time.monotonic()
        for play_id in [p.play_id for p in self.plays.values() if now - p.last_beat > self.ttl]:
            await self.release(play_id)

    async def reaper(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reap()
            except Exception as exc:  # one lease that fails to release must not stop the releasing of the others
                print(f"console: releasing a quiet lease failed: {exc}", file=sys.stderr, flush=True)

    async def close(self) -> None:
        for play_id in list(self.plays):
            await self.release(play_id)
