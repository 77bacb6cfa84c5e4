"""The pool manager: keeps warm containers per environment, leases them
exclusively, routes calls by lease, and replaces any container that breaks.

All state lives on one asyncio loop (no locks); Docker calls run in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import docker
import docker.errors
import grpc
import grpc.aio
from google.protobuf.message import DecodeError

from envscaler.containers import launch
from envscaler.containers.hardening import Hardening
from envscaler.pool import liveness
from envscaler.pool.failures import FailureBook, classify
from envscaler.pool.metrics import PoolMetrics
from envscaler.pool.policy import EnvCounts, plan
from envscaler.protocol import framing
from envscaler.protocol.sessions import RequestError
from envscaler.v1 import env_pb2 as pb
from envscaler.v1 import env_pb2_grpc as pb_grpc

log = logging.getLogger("envscaler.pool")

State = Literal["starting", "idle", "leased", "releasing", "dead", "removing"]
# A deadline overrun is not among them: the server says on release (EndEpisode.dirty) whether it overran its own
# deadline (the sandbox's fault) or the caller's shorter one (the caller's choice; the container is healthy).
TAINTING_ERRORS = {pb.WORKER_CRASHED, pb.PROTOCOL_ERROR}
HOP_GRACE = 1.0  # past a caller's deadline, for the server's answer (it answers before it) to reach us
SESSIONS_FULL = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
Upstream = tuple[asyncio.StreamReader, asyncio.StreamWriter]  # a connection to a container's session socket


def clip(text: str, limit: int = 80) -> str:
    """Caller-supplied text quoted in an error, kept short."""
    return text if len(text) <= limit else text[:limit] + "…"


class PoolError(RequestError):
    """A refusal with its gRPC status."""


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

    @property
    def idle_floor(self) -> int:
        return self.min_idle if self.min_idle is not None else self.size // max(1, len(self.images))


@dataclass(eq=False)
class Slot:
    env_id: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: State = "starting"
    env: launch.EnvContainer | None = None
    channel: grpc.aio.Channel | None = None
    stub: pb_grpc.EnvServiceStub | None = None
    lease_id: str = ""
    tainted: str = ""  # why this container must not be leased again
    dead: str = ""  # why its container is gone
    disposed: bool = False  # its container is removed: it no longer counts against --size
    # Open connections to its session socket; closed on release, so a lease that ends while a client
    # still holds its session does not keep one of the container's few session slots.
    upstreams: set[asyncio.StreamWriter] = field(default_factory=set)
    route: str = ""  # the host path of the session socket the container opened for the next (or current) lease only
    # Calls sent to the container and not yet answered; a release waits (briefly) for them to settle.
    inflight: int = 0
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    def begin_call(self) -> None:
        self.inflight += 1
        self.settled.clear()

    def end_call(self) -> None:
        self.inflight -= 1
        if not self.inflight:
            self.settled.set()


@dataclass
class LeaseInfo:
    lease_id: str
    slot: Slot
    ttl: float
    expires: float  # loop time

    def expires_unix_ms(self, loop_now: float) -> int:
        return int((time.time() + (self.expires - loop_now)) * 1000)


class PoolManager:
    def __init__(self, client: docker.DockerClient, config: PoolConfig, pool_id: str | None = None,
                 metrics: PoolMetrics | None = None) -> None:
        self.client = client
        self.config = config
        self.pool_id = pool_id or uuid.uuid4().hex[:12]
        self.metrics = metrics or PoolMetrics()
        self.slots: dict[str, Slot] = {}
        self.by_container: dict[str, Slot] = {}
        self.leases: dict[str, LeaseInfo] = {}
        self.waiting: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()  # consecutive failed starts per environment
        self.retry_at: dict[str, float] = {}
        self.totals: Counter[str] = Counter()  # acquired, replaced, expired
        self.last_error: dict[str, str] = {}
        self.book = FailureBook()  # why starts fail, the backoff, and which environments are failing
        self._died_starting: dict[str, str] = {}  # container name -> event, for containers not yet serving
        self.stopping = False
        self._changed = asyncio.Event()
        self._kick = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._lock_fd = -1
        self._events: Any = None
        self._start_gate: asyncio.Semaphore | None = None
        self._last_start = 0.0

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> int:
        """Reap containers of dead pools, take this pool's lock, start warming. Returns how many were reaped."""
        reaped = await asyncio.to_thread(liveness.reap_dead_pools, self.client)
        self._lock_fd = liveness.hold(self.pool_id)
        self._start_gate = asyncio.Semaphore(self.config.start_concurrency)
        loop = asyncio.get_running_loop()
        self._tasks = [self._spawn(self._refill_loop()), self._spawn(self._expiry_loop())]
        threading.Thread(target=self._watch_events, args=(loop,), daemon=True, name="pool-events").start()
        self.kick()
        return reaped

    async def shutdown(self) -> None:
        """Drain: refuse new work, remove every container of this pool, drop the lock."""
        self.stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._events is not None:
            with contextlib.suppress(Exception):
                self._events.close()
        tasks = [self._retire(slot, "shutdown", replace=False) for slot in list(self.slots.values())]
        await asyncio.gather(*(t for t in tasks if t is not None))
        # A start still in its engine call removes what it made once that returns: wait for it (bounded), or the
        # container would appear after the loop is gone.
        pending = [t for t in self._background if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=30)
        await asyncio.to_thread(launch.reap, self.client, f"pool-{self.pool_id}")  # anything still left
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

    # ------------------------------------------------------------ warm containers

    def counts(self) -> dict[str, EnvCounts]:
        """Per environment; removing containers still count against --size until they are gone."""
        tally: dict[str, Counter[str]] = {env: Counter() for env in self.config.images}
        for slot in self.slots.values():
            if slot.disposed:
                continue
            state = {"releasing": "leased", "dead": "removing"}.get(slot.state, slot.state)
            tally.setdefault(slot.env_id, Counter())[state] += 1
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
            idle = [s for s in self.slots.values() if s.env_id == env and s.state == "idle"]
            if idle:
                self._retire(idle[0], "evicted", replace=False)
        now = asyncio.get_running_loop().time()
        for env in decided.start:
            if self.retry_at.get(env, 0.0) > now:
                continue
            slot = Slot(env_id=env)
            self.slots[slot.id] = slot
            self._spawn(self._create(slot))

    async def _create(self, slot: Slot) -> None:
        assert self._start_gate is not None
        started = time.perf_counter()
        async with self._start_gate:
            await self._pace()
            if slot.state != "starting":  # retired while queued (shutdown)
                return
            try:
                env = await asyncio.to_thread(
                    launch.start, self.client, self.config.images[slot.env_id], f"pool-{self.pool_id}",
                    self.config.hardening, liveness.pool_labels(self.pool_id) | {"envscaler.env-id": slot.env_id})
                if slot.state != "starting":
                    await asyncio.to_thread(launch.remove, env)
                    return
                slot.env = env
                self.by_container[env.container.name] = slot
                await asyncio.to_thread(launch.wait_ready, env, self.config.ready_timeout)
                if self._died_starting.pop(env.container.name, None) is not None:  # died just as it served
                    await asyncio.to_thread(env.container.reload)
                    raise launch.died_before_serving(env)
            except Exception as exc:  # a broken image or engine: count it, back off, try again later
                if slot.env is not None:
                    self._died_starting.pop(slot.env.container.name, None)
                if slot.state == "starting":
                    self._start_failed(slot, exc)
                return
        if slot.state != "starting":  # died or retired while starting
            return
        self.metrics.starts.observe(time.perf_counter() - started)
        self.failures[slot.env_id] = 0
        self.book.started(slot.env_id)
        self.retry_at.pop(slot.env_id, None)
        # A state the caller asked for (Reset, GetState) may be tens of MiB: the same cap as the session socket's.
        slot.channel = grpc.aio.insecure_channel(env.address, options=[
            ("grpc.max_receive_message_length", framing.MAX_FRAME),
            ("grpc.max_send_message_length", framing.MAX_FRAME)])
        slot.stub = pb_grpc.EnvServiceStub(slot.channel)
        try:  # the first lease's route (and proof that the zygote and its first worker are ready)
            ended = await slot.stub.EndEpisode(pb.EndEpisodeRequest(), timeout=self.config.release_timeout)
        except grpc.aio.AioRpcError as exc:
            if slot.state == "starting":
                self._start_failed(slot, RuntimeError(f"its server did not end its first episode: {exc.details()}"))
            return
        if slot.state != "starting":
            return
        slot.route = str(env.socket_dir / ended.route) if ended.route else ""
        slot.state = "idle"
        self._notify()
        self.kick()

    def _start_failed(self, slot: Slot, exc: Exception) -> None:
        failure = exc.failure if isinstance(exc, launch.StartError) else classify(None, detail=str(exc))
        now = asyncio.get_running_loop().time()
        backoff = self.book.failed(slot.env_id, failure, now)
        self.failures[slot.env_id] = self.book.envs[slot.env_id].consecutive
        self.retry_at[slot.env_id] = self.book.envs[slot.env_id].retry_at
        self.last_error[slot.env_id] = str(exc)[:300]
        self.metrics.errors.labels(kind="container_start").inc()
        self.metrics.start_failures.labels(env=slot.env_id, reason=failure.reason).inc()
        log.warning("starting a container of %s failed (%s); retrying in %.1f s", slot.env_id, exc, backoff)
        self._retire(slot, "start_failed", replace=False)
        self._notify()  # an Acquire waiting for this environment may now be refused with the cause

    async def _pace(self) -> None:
        """Rate-bound container creation: at most starts_per_second."""
        gap = 1.0 / self.config.starts_per_second
        now = time.monotonic()
        wait = self._last_start + gap - now
        self._last_start = max(now, self._last_start + gap)
        if wait > 0:
            await asyncio.sleep(wait)

    def _retire(self, slot: Slot, reason: str, replace: bool = True) -> asyncio.Task[None] | None:
        """Take a container out of service now (never leased again); its removal runs in the background."""
        if slot.state == "removing":
            return None
        slot.state = "removing"
        if replace:
            self.totals["replaced"] += 1
            self.metrics.replacements.labels(reason=reason).inc()
        return self._spawn(self._dispose(slot))

    async def _dispose(self, slot: Slot) -> None:
        if slot.channel is not None:
            await slot.channel.close()
        if slot.env is not None:
            self.by_container.pop(slot.env.container.name, None)
            delay = 0.5
            # Until the engine confirms, the container still counts against --size.
            while not await asyncio.to_thread(launch.remove, slot.env) and not self.stopping:
                self.metrics.errors.labels(kind="engine_unreachable").inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        slot.disposed = True
        if slot.state == "removing":
            self.slots.pop(slot.id, None)
        self._notify()
        self.kick()

    def _watch_events(self, loop: asyncio.AbstractEventLoop) -> None:
        """Docker's event stream: a container of ours that dies is replaced at once."""
        filters = {"type": "container", "event": ["die", "oom"], "label": f"{liveness.POOL_LABEL}={self.pool_id}"}
        outage = False
        while not self.stopping:
            try:
                self._events = self.client.events(decode=True, filters=filters)
                self._reconcile(loop)  # deaths missed while the stream was down
                if outage:
                    log.warning("the engine's event stream is back")
                    outage = False
                for event in self._events:
                    name = event.get("Actor", {}).get("Attributes", {}).get("name", "")
                    loop.call_soon_threadsafe(self._on_container_died, name, event.get("status", "die"))
            except Exception as exc:  # the engine went away: say so once, and keep trying
                if self.stopping:
                    return
                if not outage:
                    log.warning("lost the engine's event stream (%s); reconnecting", exc)
                    self.metrics.errors.labels(kind="engine_events").inc()
                    outage = True
                time.sleep(1.0)

    def _reconcile(self, loop: asyncio.AbstractEventLoop) -> None:
        running = {c.name for c in self.client.containers.list(
            filters={"label": f"{liveness.POOL_LABEL}={self.pool_id}", "status": "running"})}
        for name, slot in list(self.by_container.items()):
            if name not in running and slot.state in ("idle", "leased", "releasing"):
                loop.call_soon_threadsafe(self._on_container_died, name, "die")

    def _on_container_died(self, name: str, status: str) -> None:
        slot = self.by_container.get(name)
        if slot is None or slot.state in ("removing", "dead"):
            return
        if slot.state == "starting":
            # Not serving yet: its start fails, and _create records why (OOM, exit status, logs) and backs off.
            self._died_starting.setdefault(name, status)
            return
        reason = "ran out of memory" if status == "oom" else "exited"
        self.metrics.errors.labels(kind="container_died_oom" if status == "oom" else "container_died").inc()
        self.book.reasons[(slot.env_id, "died_oom" if status == "oom" else "died")] += 1  # after serving
        if slot.state in ("leased", "releasing") and slot.lease_id:
            # Keep the lease, to tell its holder; the container goes now.
            slot.dead = f"the sandbox container of this lease {reason}"
            slot.state = "dead"
            self.totals["replaced"] += 1
            self.metrics.replacements.labels(reason="died").inc()
            self._spawn(self._dispose(slot))
        else:
            self._retire(slot, "died")

    # ------------------------------------------------------------ leases

    async def acquire(self, env_id: str, scenario_id: str = "", ttl: float = 0.0, wait: float = 0.0,
                      seed: int = 0) -> tuple[LeaseInfo, pb.ResetResponse | None]:
        if self.stopping:
            raise PoolError(grpc.StatusCode.UNAVAILABLE, "the pool is shutting down")
        if env_id not in self.config.images:
            known = ", ".join(sorted(self.config.images)[:20])
            raise PoolError(grpc.StatusCode.NOT_FOUND, f"unknown env_id {clip(env_id)!r} (served: {known})")
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + (wait or self.config.acquire_wait)
        slot = self._take_idle(env_id)
        if slot is None:
            self._refuse_if_failing(env_id)
            self.waiting[env_id] += 1
            self.kick()
            try:
                while slot is None:
                    remaining = deadline - loop.time()
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
        ttl = ttl or self.config.lease_ttl
        lease = LeaseInfo(lease_id=uuid.uuid4().hex, slot=slot, ttl=ttl, expires=loop.time() + ttl)
        slot.lease_id = lease.lease_id
        self.leases[lease.lease_id] = lease
        self.totals["acquired"] += 1
        self.kick()
        if not scenario_id:
            return lease, None
        try:
            reset = await self.forward(lease.lease_id, "Reset", pb.ResetRequest(scenario_id=scenario_id, seed=seed),
                                       timeout=30.0)
        except PoolError:
            await self.release(lease.lease_id)
            raise
        return lease, reset

    def _take_idle(self, env_id: str) -> Slot | None:
        for slot in self.slots.values():
            if slot.env_id == env_id and slot.state == "idle":
                slot.state = "leased"
                return slot
        return None

    def _refuse_if_failing(self, env_id: str) -> None:
        """An environment whose containers keep failing to start: say why now, rather than wait for none."""
        cause = self.book.failing(env_id)
        if cause:
            self.metrics.errors.labels(kind="env_failing").inc()
            raise PoolError(grpc.StatusCode.FAILED_PRECONDITION, cause)

    def _exhausted_message(self, env_id: str, wait: float) -> str:
        counts = self.counts()
        mine = counts.get(env_id, EnvCounts())
        busy = sum(c.leased for c in counts.values())
        waited = (f"no container of {env_id} became free within {wait or self.config.acquire_wait:g} s "
                  f"(pool size {self.config.size}: {busy} leased; {env_id}: {mine.leased} leased, {mine.starting} "
                  f"starting)")
        cause = self.book.last_cause(env_id)
        if cause:  # more containers would fail the same way: no advice to raise --size
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
        slot.lease_id = ""
        if slot.inflight:  # a call still waits for the container: it answers, or misses its deadline and taints it
            try:
                await asyncio.wait_for(slot.settled.wait(), timeout=HOP_GRACE + 1.0)
            except TimeoutError:
                slot.tainted = slot.tainted or "it left a call unanswered"
        for writer in slot.upstreams:
            writer.close()
        slot.upstreams.clear()
        if slot.state == "dead":
            if slot.disposed:
                self.slots.pop(slot.id, None)
            else:
                slot.state = "removing"  # _dispose, still running, drops it
            self._notify()
            return
        if slot.state == "removing":
            return
        if slot.tainted:
            self._retire(slot, "tainted")  # removal runs in the background; Release does not wait for the engine
            return
        slot.state = "releasing"
        try:
            assert slot.stub is not None
            ended = await slot.stub.EndEpisode(pb.EndEpisodeRequest(), timeout=self.config.release_timeout)
        except grpc.aio.AioRpcError as exc:
            log.warning("clean release of %s failed (%s); replacing it", slot.id, exc.details())
            self._retire(slot, "unclean_release")
            return
        if ended.dirty:  # broken through a direct route, out of the pool's sight
            self._retire(slot, "tainted")
            return
        if slot.env is not None:
            slot.route = str(slot.env.socket_dir / ended.route) if ended.route else ""
        if slot.state == "releasing":  # not died meanwhile
            slot.state = "idle"
            self._notify()
        self.kick()

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

    # ------------------------------------------------------------ routing

    def _routable(self, lease_id: str) -> Slot:
        slot = self.lease(lease_id).slot
        if slot.state == "dead":
            raise PoolError(grpc.StatusCode.UNAVAILABLE, f"{slot.dead}; release this lease and acquire a new one")
        assert slot.stub is not None
        return slot

    def _hop_failed(self, slot: Slot, method: str, code: grpc.StatusCode, details: str,
                    callers_deadline: bool = False) -> PoolError:
        self.metrics.errors.labels(kind=f"rpc_{code.name.lower()}").inc()
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
            slot.tainted = slot.tainted or "its server stopped answering"
            return PoolError(grpc.StatusCode.UNAVAILABLE, "the sandbox container of this lease stopped answering; "
                                                          "release this lease and acquire a new one")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            # A container that misses the pool's own bound is not trusted; one that misses a caller's deadline is
            # only checked on release (EndEpisode must answer, or it is replaced).
            if not callers_deadline:
                slot.tainted = slot.tainted or "it overran a deadline"
            return PoolError(grpc.StatusCode.DEADLINE_EXCEEDED, f"{method} got no answer from the sandbox "
                                                                "container within the deadline")
        return PoolError(code, details or code.name)

    @staticmethod
    def _check_taint(slot: Slot, response: pb.CallToolResponse) -> None:
        if response.episode_broken and response.error.kind in TAINTING_ERRORS:
            slot.tainted = response.error.message  # replaced on release, never leased again

    async def forward(self, lease_id: str, method: str, request: Any, timeout: float | None) -> Any:
        """Send one EnvService call to the lease's container."""
        slot = self._routable(lease_id)
        started = time.perf_counter()
        slot.begin_call()
        try:
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
        """How long to wait for the container: the caller's deadline, or a bound past the server's own."""
        if request.deadline_ms:
            return request.deadline_ms / 1000 + HOP_GRACE
        if kind == "evaluate":
            return self.config.evaluate_timeout
        if kind == "call_tool" and request.call_tool.timeout_ms:
            return request.call_tool.timeout_ms / 1000 + 5.0
        return self.config.call_timeout

    async def forward_session(self, lease_id: str, request: pb.SessionRequest, kind: str, method: str,
                              upstreams: dict[str, Upstream]) -> pb.SessionResponse:
        """One message of a client's session, on this session's own connection to the container's session socket."""
        slot = self._routable(lease_id)
        timeout = self.hop_timeout(request, kind)
        started = time.perf_counter()
        slot.begin_call()
        try:
            async with asyncio.timeout(timeout):
                upstream = upstreams.get(lease_id)
                if upstream is None:
                    for gone in [known for known in upstreams if known not in self.leases]:
                        upstreams.pop(gone)[1].close()
                    assert slot.env is not None
                    upstream = upstreams[lease_id] = await asyncio.open_unix_connection(
                        slot.env.session_socket, limit=framing.MAX_FRAME)
                    slot.upstreams.add(upstream[1])
                upstream[1].write(framing.frame(request))
                response = pb.SessionResponse.FromString(await framing.read_frame(upstream[0]))
        except TimeoutError:
            self._drop(upstreams, lease_id)
            raise self._hop_failed(slot, method, grpc.StatusCode.DEADLINE_EXCEEDED, "") from None
        except (OSError, framing.FrameError, DecodeError) as exc:
            self._drop(upstreams, lease_id)
            raise self._hop_failed(slot, method, grpc.StatusCode.UNAVAILABLE, str(exc)) from None
        finally:
            slot.end_call()
            self.metrics.latency.labels(method=method).observe(time.perf_counter() - started)
        if kind == "call_tool":
            self._check_taint(slot, response.call_tool)
        elif response.WhichOneof("response") == "error" and response.error.code == SESSIONS_FULL:
            self._drop(upstreams, lease_id)  # the server closed this connection
        return response

    @staticmethod
    def _drop(upstreams: dict[str, Upstream], lease_id: str) -> None:
        upstream = upstreams.pop(lease_id, None)
        if upstream is not None:
            upstream[1].close()

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
            "expired": self.totals["expired"],
        }

    def _export_gauges(self) -> None:
        for env, c in self.counts().items():
            for state, value in (("idle", c.idle), ("leased", c.leased), ("starting", c.starting)):
                self.metrics.containers.labels(env=env, state=state).set(value)

    def ready(self) -> int:
        return sum(1 for s in self.slots.values() if s.state in ("idle", "leased", "releasing"))
