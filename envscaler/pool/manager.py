"""The pool manager: keeps warm sandboxes per environment, leases them exclusively, routes calls by lease, and
replaces any sandbox that breaks. It orchestrates: a slot's life is lifecycle.py's state machine, what runs the
sandboxes is a SandboxBackend (backend.py; Docker today), where calls go is routing.py, which to start is policy.py.

All state lives on one asyncio loop (no locks); backend calls run in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
from google.protobuf.message import DecodeError

from envscaler.containers.hardening import Hardening
from envscaler.pool import liveness, routing
from envscaler.pool.backend import SandboxAddress, SandboxBackend, StartFailed
from envscaler.pool.failures import FailureBook, classify
from envscaler.pool.lifecycle import (
    OUT_OF_SERVICE,
    POLICY_BUCKET,
    SERVING,
    SlotEvent,
    SlotState,
    starts_removal,
    transition,
)
from envscaler.pool.metrics import PoolMetrics
from envscaler.pool.policy import EnvCounts, plan
from envscaler.pool.routing import Upstream
from envscaler.pool.watch import DeathWatch
from envscaler.protocol import episode_channel, framing
from envscaler.protocol.deadlines import Deadline, Margin
from envscaler.protocol.sessions import RequestError
from envscaler.v1 import env_pb2 as pb
from envscaler.v1 import env_pb2_grpc as pb_grpc

__all__ = ["LeaseInfo", "PoolConfig", "PoolError", "PoolManager", "Slot", "Upstream"]

log = logging.getLogger("envscaler.pool")
# A release waits for a call still in flight until that call's own deadline, plus this, but never longer than
# SETTLE_CAP: past its own deadline a call has overrun, and the server, not the lessee, says so.
SETTLE_GRACE = Margin.SETTLE.value
SETTLE_CAP = 330.0  # the longest hop a lessee may ask for (an Evaluate's 300 s, and then some)
RESET_TIMEOUT = 30.0  # an Acquire's Reset, when the caller set no deadline


def clip(text: str, limit: int = 80) -> str:
    """Caller-supplied text quoted in an error, kept short."""
    return text if len(text) <= limit else text[:limit] + "…"


class PoolError(RequestError):
    """A refusal with its gRPC status; `retry_after` (seconds, 0 for none) when trying again later will do."""

    def __init__(self, code: grpc.StatusCode, message: str, retry_after: float = 0.0) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


@dataclass
class PoolConfig:
    size: int
    images: dict[str, str]  # env_id -> image tag
    min_idle: int | None = None  # None: size // number of environments
    lease_ttl: float = 600.0
    acquire_wait: float = 30.0
    hardening: Hardening = field(default_factory=Hardening)
    start_concurrency: int = 4
    starts_per_second: float = 16.0
    ready_timeout: float = 60.0
    release_timeout: float = 5.0
    # How long the pool waits for a container's answer on a session stream before it gives up on it;
    # longer than the server's own deadlines (10 s per call, per check), which answer first.
    call_timeout: float = 30.0
    evaluate_timeout: float = 300.0
    # True: every lease gets a container no one used; a released one is removed and a new one warmed ahead of demand
    # (nothing of a lease can reach the next, counters included). False: a released container is recycled after the
    # server's verified teardown (faster; the channels that remain are listed in SECURITY.md).
    fresh_per_lease: bool = True
    # Resets (a new episode: a fork, a state to build) the pool lets run at once; the rest queue within their
    # callers' deadlines instead of starving each other (0: two per core).
    reset_concurrency: int = 0

    @property
    def resets_at_once(self) -> int:
        return self.reset_concurrency or 2 * (os.cpu_count() or 1)

    @property
    def idle_floor(self) -> int:
        return self.min_idle if self.min_idle is not None else self.size // max(1, len(self.images))


@dataclass(eq=False)
class Slot:
    env_id: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: SlotState = SlotState.STARTING  # changed only by PoolManager._fire, through lifecycle.transition
    env: Any = None  # the backend's handle on its sandbox (Docker: containers.launch.EnvContainer)
    address: SandboxAddress | None = None
    channel: grpc.aio.Channel | None = None
    stub: pb_grpc.EnvServiceAsyncStub | None = None
    cause: str = ""  # why it left service (tainted, died): what its lease's holder is told
    removal: asyncio.Task[None] | None = None
    # Open connections to its session socket; closed on release, so a lease that ends while a client
    # still holds its session does not keep one of the container's few session slots.
    upstreams: set[asyncio.StreamWriter] = field(default_factory=set)
    route: str = ""  # the host path of the session socket the container opened for the next (or current) lease only
    # Calls sent to the container and not yet answered; a release waits for them to settle, up to the latest of
    # their own deadlines (loop time).
    inflight: int = 0
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    inflight_until: float = 0.0

    def at(self, *states: SlotState) -> bool:
        """Whether it is in one of `states` now (after an await, it may have moved on)."""
        return self.state in states

    def begin_call(self, timeout: float) -> None:
        self.inflight += 1
        self.settled.clear()
        self.inflight_until = max(self.inflight_until, asyncio.get_running_loop().time() + timeout)

    def end_call(self) -> None:
        self.inflight -= 1
        if not self.inflight:
            self.settled.set()
            self.inflight_until = 0.0


@dataclass
class LeaseInfo:
    lease_id: str
    slot: Slot
    ttl: float
    expires: float  # loop time

    def expires_unix_ms(self, loop_now: float) -> int:
        return int((time.time() + (self.expires - loop_now)) * 1000)


class PoolManager:
    def __init__(self, backend: SandboxBackend[Any], config: PoolConfig, pool_id: str | None = None,
                 metrics: PoolMetrics | None = None) -> None:
        self.backend = backend
        self.config = config
        self.pool_id = pool_id or uuid.uuid4().hex[:12]
        self.metrics = metrics or PoolMetrics()
        self.slots: dict[str, Slot] = {}
        self.by_name: dict[str, Slot] = {}  # the backend's name of each slot's sandbox
        self.leases: dict[str, LeaseInfo] = {}
        self.waiting: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()  # consecutive failed starts per environment
        self.retry_at: dict[str, float] = {}
        self.totals: Counter[str] = Counter()  # acquired, replaced, expired
        self.last_error: dict[str, str] = {}
        self.book = FailureBook()  # why starts fail, the backoff, and which environments are failing
        self.stopping = False
        self._changed = asyncio.Event()
        self._kick = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._lock_fd = -1
        self._watch: DeathWatch | None = None
        self._start_gate: asyncio.Semaphore | None = None
        self._last_start = 0.0
        self._reset_gate: asyncio.Semaphore | None = None
        self._resets_waiting = 0
        self._reset_seconds = 0.05  # a moving average of how long a Reset takes: the retry hint

    @property
    def labels(self) -> dict[str, str]:
        """What every sandbox of this pool carries (its owner, for reaping)."""
        return liveness.pool_labels(self.pool_id)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> int:
        """Reap sandboxes of dead pools, take this pool's lock, start warming. Returns how many were reaped."""
        reaped = await asyncio.to_thread(self.backend.reap_orphans)
        self._lock_fd = liveness.hold(self.pool_id)
        self._start_gate = asyncio.Semaphore(self.config.start_concurrency)
        self._reset_gate = asyncio.Semaphore(self.config.resets_at_once)
        loop = asyncio.get_running_loop()
        self._tasks = [self._spawn(self._refill_loop()), self._spawn(self._expiry_loop())]
        self._watch = DeathWatch(self.backend, {liveness.POOL_LABEL: self.pool_id}, self._on_sandbox_died,
                                 self._serving_names, self.metrics.errors.labels(kind="engine_events").inc)
        self._watch.start(loop)
        self.kick()
        return reaped

    async def shutdown(self) -> None:
        """Drain: refuse new work, remove every sandbox of this pool, drop the lock."""
        self.stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._watch is not None:
            self._watch.stop()
        for slot in list(self.slots.values()):
            self._fire(slot, SlotEvent.RETIRE)
        await asyncio.gather(*(s.removal for s in list(self.slots.values()) if s.removal is not None))
        # A start still in its engine call removes what it made once that returns: wait for it (bounded), or the
        # sandbox would appear after the loop is gone.
        pending = [t for t in self._background if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=30)
        await asyncio.to_thread(self.backend.reap, self.labels)  # anything still left
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            with contextlib.suppress(OSError):
                (liveness.LOCK_DIR / f"{self.pool_id}.lock").unlink()

    def kick(self) -> None:
        self._kick.set()

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        """A background task, referenced until done (the loop itself keeps only weak references)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _fire(self, slot: Slot, event: SlotEvent, replaced: str = "") -> SlotState:
        """The one place a slot changes state. A change that takes its sandbox out of service starts its removal
        (counted as a replacement, by `replaced`, when given); a slot that is gone leaves the table."""
        before = slot.state
        after = slot.state = transition(before, event)
        if starts_removal(before, after):
            if replaced:
                self.totals["replaced"] += 1
                self.metrics.replacements.labels(reason=replaced).inc()
            slot.removal = self._spawn(self._dispose(slot))
        if after is SlotState.GONE:
            self.slots.pop(slot.id, None)
        return after

    def _taint(self, slot: Slot, cause: str) -> None:
        """It must not be leased again; replaced on release."""
        if slot.state is SlotState.LEASED:
            slot.cause = cause
        self._fire(slot, SlotEvent.TAINT)

    # ------------------------------------------------------------ warm sandboxes

    def counts(self) -> dict[str, EnvCounts]:
        """Per environment; sandboxes being removed still count against --size until they are gone."""
        tally: dict[str, Counter[str]] = {env: Counter() for env in self.config.images}
        for slot in self.slots.values():
            bucket = POLICY_BUCKET.get(slot.state)
            if bucket is not None:
                tally.setdefault(slot.env_id, Counter())[bucket] += 1
        return {env: EnvCounts(idle=c["idle"], leased=c["leased"], starting=c["starting"], removing=c["removing"])
                for env, c in tally.items()}

    async def _refill_loop(self) -> None:
        while not self.stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=1.0)
            self._kick.clear()
            self._refill()
            self._export_gauges()

    def _refill(self) -> None:
        env_ids = list(self.config.images)
        decided = plan(self.config.size, env_ids, self.counts(), dict(self.waiting), self.config.idle_floor)
        for env in decided.evict:
            idle = [s for s in self.slots.values() if s.env_id == env and s.state is SlotState.IDLE]
            if idle:
                self._fire(idle[0], SlotEvent.RETIRE)
        now = asyncio.get_running_loop().time()
        for env in decided.start:
            if self.retry_at.get(env, 0.0) > now:
                continue
            slot = Slot(env_id=env)
            self.slots[slot.id] = slot
            self._spawn(self._create(slot))

    async def _create(self, slot: Slot) -> None:
        """Start `slot`'s sandbox and bring it to IDLE; a failed start is counted and backed off."""
        assert self._start_gate is not None
        started = time.perf_counter()
        async with self._start_gate:
            await self._pace()
            sandbox = await self._launch(slot)
        if sandbox is None:
            return
        self.metrics.starts.observe(time.perf_counter() - started)
        self.failures[slot.env_id] = 0
        self.book.started(slot.env_id)
        self.retry_at.pop(slot.env_id, None)
        await self._first_episode(slot, sandbox)

    async def _launch(self, slot: Slot) -> Any:
        """Its sandbox, serving; None when its start failed (recorded) or it was retired meanwhile."""
        if not slot.at(SlotState.STARTING):  # retired while queued (shutdown)
            return None
        try:
            sandbox = await asyncio.to_thread(self.backend.start, self.config.images[slot.env_id],
                                              self.labels | {"envscaler.env-id": slot.env_id}, self.config.hardening)
            if not slot.at(SlotState.STARTING):
                await asyncio.to_thread(self.backend.remove, sandbox)
                return None
            slot.env = sandbox
            self.by_name[sandbox.name] = slot
            await asyncio.to_thread(self.backend.wait_ready, sandbox, self.config.ready_timeout)
            if slot.at(SlotState.DIED_STARTING):  # died just as it served
                raise await asyncio.to_thread(self.backend.died_before_serving, sandbox)
        except Exception as exc:  # a broken image or engine: count it, back off, try again later
            if slot.at(SlotState.STARTING, SlotState.DIED_STARTING):
                self._start_failed(slot, exc)
            return None
        return sandbox if slot.at(SlotState.STARTING) else None  # else died or retired while starting

    async def _first_episode(self, slot: Slot, sandbox: Any) -> None:
        """Connect, and end its first episode: the first lease's route, and proof that the zygote and its first
        worker are ready. Then it is IDLE."""
        slot.address = address = self.backend.address(sandbox)
        # A state the caller asked for (Reset, GetState) may be tens of MiB: the same cap as the session socket's.
        slot.channel = grpc.aio.insecure_channel(address.grpc, options=[
            ("grpc.max_receive_message_length", framing.MAX_FRAME),
            ("grpc.max_send_message_length", framing.MAX_FRAME)])
        slot.stub = pb_grpc.EnvServiceStub(slot.channel)
        try:
            ended = await slot.stub.EndEpisode(pb.EndEpisodeRequest(), timeout=self.config.release_timeout)
        except grpc.aio.AioRpcError as exc:
            if slot.at(SlotState.STARTING, SlotState.DIED_STARTING):
                self._start_failed(slot, RuntimeError(f"its server did not end its first episode: {exc.details()}"))
            return
        if slot.at(SlotState.DIED_STARTING):  # died after it served: its start failed all the same
            try:
                cause: Exception = await asyncio.to_thread(self.backend.died_before_serving, sandbox)
            except Exception as exc:
                cause = exc
            if slot.at(SlotState.DIED_STARTING):
                self._start_failed(slot, cause)
            return
        if not slot.at(SlotState.STARTING):
            return
        slot.route = routing.direct_route(address, ended.route)
        if not await self._route_trusted(slot):
            self._start_failed(slot, RuntimeError(f"its first lease's route is not its server's: {slot.cause}"))
            return
        self._fire(slot, SlotEvent.READY)
        self._notify()
        self.kick()

    def _start_failed(self, slot: Slot, exc: Exception) -> None:
        failure = exc.failure if isinstance(exc, StartFailed) else classify(None, detail=str(exc))
        now = asyncio.get_running_loop().time()
        backoff = self.book.failed(slot.env_id, failure, now)
        self.failures[slot.env_id] = self.book.envs[slot.env_id].consecutive
        self.retry_at[slot.env_id] = self.book.envs[slot.env_id].retry_at
        self.last_error[slot.env_id] = str(exc)[:300]
        self.metrics.errors.labels(kind="container_start").inc()
        self.metrics.start_failures.labels(env=slot.env_id, reason=failure.reason).inc()
        log.warning("starting a container of %s failed (%s); retrying in %.1f s", slot.env_id, exc, backoff)
        self._fire(slot, SlotEvent.RETIRE)
        self._notify()  # an Acquire waiting for this environment may now be refused with the cause

    async def _pace(self) -> None:
        """Rate-bound sandbox creation: at most starts_per_second."""
        gap = 1.0 / self.config.starts_per_second
        now = time.monotonic()
        wait = self._last_start + gap - now
        self._last_start = max(now, self._last_start + gap)
        if wait > 0:
            await asyncio.sleep(wait)

    async def _dispose(self, slot: Slot) -> None:
        if slot.channel is not None:
            await slot.channel.close()
        if slot.env is not None:
            self.by_name.pop(slot.env.name, None)
            delay = 0.5
            # Until the engine confirms, the sandbox still counts against --size.
            while not await asyncio.to_thread(self.backend.remove, slot.env) and not self.stopping:
                self.metrics.errors.labels(kind="engine_unreachable").inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        self._fire(slot, SlotEvent.REMOVED)
        self._notify()
        self.kick()

    def _serving_names(self) -> list[str]:
        return [name for name, slot in list(self.by_name.items()) if slot.state in SERVING]

    def _on_sandbox_died(self, name: str, kind: str) -> None:
        slot = self.by_name.get(name)
        if slot is None or slot.state in OUT_OF_SERVICE:
            return
        if slot.state in (SlotState.STARTING, SlotState.DIED_STARTING):
            # Not serving yet: its start fails, and _create records why (OOM, exit status, logs) and backs off.
            self._fire(slot, SlotEvent.DIED)
            return
        oom = kind == "oom"
        self.metrics.errors.labels(kind="container_died_oom" if oom else "container_died").inc()
        self.book.reasons[(slot.env_id, "died_oom" if oom else "died")] += 1  # after serving
        # A leased one keeps its lease, to tell its holder; the sandbox goes now.
        slot.cause = f"the sandbox container of this lease {'ran out of memory' if oom else 'exited'}"
        self._fire(slot, SlotEvent.DIED, replaced="died")

    # ------------------------------------------------------------ leases

    async def acquire(self, env_id: str, scenario_id: str = "", ttl: float = 0.0, wait: float = 0.0,
                      seed: int = 0, deadline: Deadline | None = None) -> tuple[LeaseInfo, pb.ResetResponse | None]:
        """A lease (and its first episode's Reset, given a scenario), within the caller's `deadline`: a lease granted
        but not handed over (the caller's deadline passed, or it cancelled) is released, never left to its TTL.
        `ttl` is capped at the pool's lease TTL."""
        deadline = deadline or Deadline.none()
        if self.stopping:
            raise PoolError(grpc.StatusCode.UNAVAILABLE, "the pool is shutting down")
        if env_id not in self.config.images:
            known = ", ".join(sorted(self.config.images)[:20])
            raise PoolError(grpc.StatusCode.NOT_FOUND, f"unknown env_id {clip(env_id)!r} (served: {known})")
        loop = asyncio.get_running_loop()
        started = loop.time()
        wait_until = started + deadline.shrink(Margin.ANSWER_FIRST).bound(wait or self.config.acquire_wait)
        slot = self._take_idle(env_id)
        if slot is None:
            self._refuse_if_failing(env_id)
            self.waiting[env_id] += 1
            self.kick()
            try:
                while slot is None:
                    remaining = wait_until - loop.time()
                    if remaining <= 0:
                        self.metrics.errors.labels(kind="exhausted").inc()
                        raise PoolError(grpc.StatusCode.RESOURCE_EXHAUSTED, self._exhausted_message(env_id, wait))
                    changed = self._changed
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), timeout=remaining)
                    slot = self._take_idle(env_id)
                    if slot is None:
                        self._refuse_if_failing(env_id)
            finally:
                self.waiting[env_id] -= 1
        self.metrics.acquire_wait.observe(loop.time() - started)
        ttl = min(ttl, self.config.lease_ttl) if ttl > 0 else self.config.lease_ttl
        lease = LeaseInfo(lease_id=uuid.uuid4().hex, slot=slot, ttl=ttl, expires=loop.time() + ttl)
        self.leases[lease.lease_id] = lease
        self.totals["acquired"] += 1
        self.kick()
        try:
            reset = None
            if scenario_id:
                timeout = deadline.shrink(Margin.ANSWER_FIRST).bound(RESET_TIMEOUT)
                reset = await self.forward(lease.lease_id, "Reset",
                                           pb.ResetRequest(scenario_id=scenario_id, seed=seed), timeout=timeout)
            if deadline.expired():
                raise PoolError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                f"the lease of {env_id} was ready after the caller's deadline; it was released")
        except BaseException:  # refused, late, or cancelled with the caller: the grant goes back, shielded
            self.release_soon(lease.lease_id)
            raise
        return lease, reset

    def release_soon(self, lease_id: str) -> None:
        """Release in the background (a task of its own: it outlives a cancelled caller)."""
        if lease_id in self.leases:
            self._spawn(self.release(lease_id))

    def _take_idle(self, env_id: str) -> Slot | None:
        for slot in self.slots.values():
            if slot.env_id == env_id and slot.state is SlotState.IDLE:
                self._fire(slot, SlotEvent.ACQUIRE)
                return slot
        return None

    def _refuse_if_failing(self, env_id: str) -> None:
        """An environment whose sandboxes keep failing to start: say why now, rather than wait for none."""
        cause = self.book.failing(env_id)
        if cause:
            self.metrics.errors.labels(kind="env_failing").inc()
            raise PoolError(grpc.StatusCode.FAILED_PRECONDITION, cause)

    def _exhausted_message(self, env_id: str, wait: float) -> str:
        counts = self.counts()
        mine = counts.get(env_id, EnvCounts())
        busy = sum(c.leased for c in counts.values())
        waited = (f"no container of {env_id} became free within {round(wait or self.config.acquire_wait, 1):g} s "
                  f"(pool size {self.config.size}: {busy} leased; {env_id}: {mine.leased} leased, {mine.starting} "
                  f"starting)")
        cause = self.book.last_cause(env_id)
        if cause:  # more sandboxes would fail the same way: no advice to raise --size
            return f"{waited}; its last start failed: {cause}"
        return f"{waited}. Release leases, wait longer or raise --size."

    def lease(self, lease_id: str) -> LeaseInfo:
        lease = self.leases.get(lease_id)
        if lease is None:
            raise PoolError(grpc.StatusCode.NOT_FOUND, f"unknown lease {clip(lease_id)!r}: never granted, released, "
                                                       "or reclaimed after its TTL")
        return lease

    async def renew(self, lease_id: str) -> LeaseInfo:
        lease = self.lease(lease_id)
        lease.expires = asyncio.get_running_loop().time() + lease.ttl
        return lease

    async def release(self, lease_id: str, reason: str = "released") -> None:
        lease = self.lease(lease_id)
        del self.leases[lease_id]
        slot = lease.slot
        if self.config.fresh_per_lease and slot.state in (SlotState.LEASED, SlotState.TAINTED):
            # No one leases it again: it goes, whatever its calls are doing, and a fresh one is warmed.
            self._close_upstreams(slot)
            self.totals["retired_after_lease"] += 1
            self._fire(slot, SlotEvent.RETIRE, replaced="tainted" if slot.state is SlotState.TAINTED else "")
            self._notify()
            self.kick()
            return
        if slot.inflight:  # a call still runs: it answers within its own deadline, or it overran it
            grace = min(slot.inflight_until - asyncio.get_running_loop().time(), SETTLE_CAP) + SETTLE_GRACE
            try:
                await asyncio.wait_for(slot.settled.wait(), timeout=max(grace, SETTLE_GRACE))
            except TimeoutError:
                self._taint(slot, "it left a call unanswered past the call's own deadline")
        self._close_upstreams(slot)
        before = slot.state
        # Tainted: removed in the background (Release does not wait for the engine); dead: its removal runs already.
        if self._fire(slot, SlotEvent.RELEASE, replaced="tainted") is not SlotState.RELEASING:
            if before in (SlotState.DEAD, SlotState.LOST):
                self._notify()
            return
        try:
            assert slot.stub is not None
            ended = await slot.stub.EndEpisode(pb.EndEpisodeRequest(), timeout=self.config.release_timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("clean release of %s failed (%s); replacing it", slot.id, exc.details())
            self._fire(slot, SlotEvent.RETIRE, replaced="unclean_release")
            return
        if ended.dirty:  # broken through a direct route, out of the pool's sight
            self._fire(slot, SlotEvent.RETIRE, replaced="tainted")
            return
        if slot.address is not None:
            slot.route = routing.direct_route(slot.address, ended.route)
        if not await self._route_trusted(slot):
            self._fire(slot, SlotEvent.RETIRE, replaced="tainted")
            return
        if slot.at(SlotState.RELEASING):  # not died meanwhile
            self._fire(slot, SlotEvent.RELEASED)
            self._notify()
        self.kick()

    async def _route_trusted(self, slot: Slot) -> bool:
        """The next lease's route is its sandbox's server's (a peer check), or there is none; else `slot.cause`."""
        if not slot.route:
            return True
        try:
            await asyncio.to_thread(self.backend.verify_route, slot.env, slot.route)
        except Exception as exc:  # a listener of another uid, or none: never handed to a lessee
            slot.cause = f"its next lease's route failed the peer check: {exc}"
            log.warning("%s: %s", slot.id, slot.cause)
            return False
        return True

    @staticmethod
    def _close_upstreams(slot: Slot) -> None:
        for writer in slot.upstreams:
            writer.close()
        slot.upstreams.clear()

    async def _expiry_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.stopping:
            await asyncio.sleep(0.25)
            now = loop.time()
            for lease_id in [k for k, lease in self.leases.items() if lease.expires <= now]:
                if lease_id in self.leases:
                    self.leases[lease_id].expires = float("inf")  # reclaimed once
                    self.totals["expired"] += 1
                    self.metrics.expired.inc()
                    self._spawn(self.release(lease_id, reason="expired"))

    # ------------------------------------------------------------ admission

    @contextlib.asynccontextmanager
    async def admitted_reset(self, timeout: float | None) -> AsyncIterator[float | None]:
        """A place among the Resets that run at once, waited for within `timeout`; yields what is left of it. When
        the wait runs out: RESOURCE_EXHAUSTED with how long to wait (the load will pass; nothing failed)."""
        assert self._reset_gate is not None
        loop = asyncio.get_running_loop()
        queued = loop.time()
        self._resets_waiting += 1
        try:
            await asyncio.wait_for(self._reset_gate.acquire(), timeout)
        except TimeoutError:
            self.metrics.errors.labels(kind="overloaded").inc()
            hint = max(0.1, self._reset_seconds * (self._resets_waiting / self.config.resets_at_once + 1))
            raise PoolError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"the pool is overloaded: {self.config.resets_at_once} Resets run at once and "
                            f"{self._resets_waiting - 1} more wait; retry in {hint:.1f} s", retry_after=hint) from None
        finally:
            self._resets_waiting -= 1
        started = loop.time()
        try:
            yield None if timeout is None else max(timeout - (started - queued), 0.001)
        finally:
            self._reset_seconds = 0.9 * self._reset_seconds + 0.1 * (loop.time() - started)
            self._reset_gate.release()

    # ------------------------------------------------------------ routing

    def _routable(self, lease_id: str) -> Slot:
        slot = self.lease(lease_id).slot
        if slot.state in (SlotState.DEAD, SlotState.LOST):
            raise PoolError(grpc.StatusCode.UNAVAILABLE, f"{slot.cause}; release this lease and acquire a new one")
        assert slot.stub is not None and slot.address is not None
        return slot

    def _hop_failed(self, slot: Slot, method: str, code: grpc.StatusCode, details: str,
                    callers_deadline: bool = False) -> PoolError:
        self.metrics.errors.labels(kind=f"rpc_{code.name.lower()}").inc()
        failure = routing.hop_failure(method, code, details, callers_deadline)
        if failure.taint:
            self._taint(slot, failure.taint)
        return PoolError(failure.code, failure.message)

    def _check_taint(self, slot: Slot, response: pb.CallToolResponse) -> None:
        cause = routing.taint_of(response)
        if cause:
            self._taint(slot, cause)  # replaced on release, never leased again

    async def forward(self, lease_id: str, method: str, request: Any, timeout: float | None) -> Any:
        """Send one EnvService call to the lease's sandbox."""
        slot = self._routable(lease_id)
        started = time.perf_counter()
        # No caller deadline: the server answers within its own call deadline, which call_timeout outlasts.
        slot.begin_call(timeout if timeout is not None else self.config.call_timeout)
        try:
            response: Any
            if method == "Reset":
                async with self.admitted_reset(timeout) as left:
                    response = await getattr(slot.stub, method)(request, timeout=left)
            else:
                response = await getattr(slot.stub, method)(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._hop_failed(slot, method, exc.code(), exc.details() or "", timeout is not None) from None
        finally:
            slot.end_call()
            self.metrics.latency.labels(method=method).observe(time.perf_counter() - started)
        if method == "CallTool":
            self._check_taint(slot, response)
        return response

    def hop_timeout(self, request: pb.SessionRequest, kind: str) -> float:
        return routing.hop_timeout(request, kind, self.config.call_timeout, self.config.evaluate_timeout)

    async def forward_session(self, lease_id: str, request: pb.SessionRequest, kind: str, method: str,
                              upstreams: dict[str, Upstream]) -> pb.SessionResponse:
        """One message of a client's session, on this session's own connection to the sandbox's session socket."""
        slot = self._routable(lease_id)
        assert slot.address is not None
        timeout = self.hop_timeout(request, kind)
        started = time.perf_counter()
        slot.begin_call(timeout)
        try:
            async with asyncio.timeout(timeout):
                upstream, opened = await routing.connect(upstreams, lease_id, slot.address.session_socket,
                                                         self.leases)
                if opened:
                    slot.upstreams.add(upstream.writer)
                response, served = await self._on_channel(slot, upstream, request) if kind == "call_tool" \
                    else (None, "")
                if response is None:  # not on a channel, or the channel broke: the server answers
                    if served:  # for the episode the channel served
                        request = pb.SessionRequest(call_tool=episode_channel.for_episode(request.call_tool, served),
                                                    deadline_ms=request.deadline_ms)
                    if kind == "reset":
                        async with self.admitted_reset(None):  # within this hop's own timeout, above
                            response = await routing.exchange(upstream, request)
                    else:
                        response = await routing.exchange(upstream, request)
                if kind == "reset" and response.WhichOneof("response") != "error":
                    upstream.drop_channel()  # it ended with its episode
                    upstream.refused = False
        except TimeoutError:
            routing.drop(upstreams, lease_id)
            raise self._hop_failed(slot, method, grpc.StatusCode.DEADLINE_EXCEEDED, "") from None
        except (OSError, framing.FrameError, DecodeError) as exc:
            routing.drop(upstreams, lease_id)
            raise self._hop_failed(slot, method, grpc.StatusCode.UNAVAILABLE, str(exc)) from None
        finally:
            slot.end_call()
            self.metrics.latency.labels(method=method).observe(time.perf_counter() - started)
        if kind == "call_tool":
            self._check_taint(slot, response.call_tool)
        elif routing.sessions_full(response):
            routing.drop(upstreams, lease_id)  # the server closed this connection
        return response

    async def _on_channel(self, slot: Slot, upstream: Upstream,
                          request: pb.SessionRequest) -> tuple[pb.SessionResponse | None, str]:
        """A call on the episode's channel (the worker answers; the pool enforces the deadline), and the channel's
        episode; no answer: the server answers instead."""
        assert slot.address is not None
        fresh = upstream.channel is None
        channel = await routing.open_channel(upstream, slot.address.session_socket, request.call_tool.episode_id)
        if channel is None:
            return None, ""
        if fresh:
            slot.upstreams.add(channel.writer)  # closed on release, with the session's connections
        try:
            result = await routing.call_on_channel(channel, request)
        except BaseException:  # cancelled mid-call: its answer must not be read as the next call's
            upstream.drop_channel()
            raise
        if result.report is not None:  # the server ends the episode, and says on release what it means
            with contextlib.suppress(OSError, framing.FrameError, DecodeError):
                await routing.exchange(upstream, result.report)
        if not result.keep:
            upstream.drop_channel()  # closing it ends the episode: the server kills the worker
        return result.answer, channel.opened.episode_id

    # ------------------------------------------------------------ reporting

    def stats(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            "size": self.config.size,
            "containers": sum(c.total for c in counts.values()),
            # failed: every failed start so far; failing: the cause, while starts keep failing
            "envs": {env: {"idle": c.idle, "leased": c.leased, "starting": c.starting,
                           "failed": self.book.total(env), "failing": self.book.failing(env),
                           "reasons": {r: n for (e, r), n in self.book.reasons.items() if e == env}}
                     for env, c in counts.items()},
            "acquired": self.totals["acquired"], "replaced": self.totals["replaced"],
            "expired": self.totals["expired"], "fresh_per_lease": self.config.fresh_per_lease,
        }

    def _export_gauges(self) -> None:
        for env, c in self.counts().items():
            for state, value in (("idle", c.idle), ("leased", c.leased), ("starting", c.starting)):
                self.metrics.containers.labels(env=env, state=state).set(value)

    def ready(self) -> int:
        return sum(1 for s in self.slots.values() if s.state in SERVING)
