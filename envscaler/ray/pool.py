"""`RayPool`: one pool per Ray node, one client API.

    import ray
    from envscaler.ray import RayPool

    ray.init(address="auto")
    pool = RayPool.start(size_per_node=8)          # or RayPool.connect() from any driver or worker
    with pool.session("env_1", scenario="0115-091204") as env:
        env.call("search_books", {"query": "Dune"})
        print(env.evaluate().reward)
    pool.shutdown()

Ray places the pools (one actor per node, hard node affinity), finds them (named actors) and restarts them; the
sessions themselves talk gRPC straight to the chosen node's pool, never through an actor call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from envscaler.client.env_client import AsyncEnvMethods, EnvMethods
from envscaler.client.errors import EnvClientError
from envscaler.client.pool_client import AsyncPool, AsyncPoolSession, Pool, PoolSession
from envscaler.ray.actor import NAME_PREFIX, NAMESPACE, NodeInfo, NodePoolActor, actor_name
from envscaler.ray.routing import choose_node, serving_nodes, wait_node
from envscaler.v1 import pool_pb2 as ppb

STATS_TIMEOUT = 2.0
WAIT_SLICE = 0.1  # while no node has an idle container: wait this long at one pool, then look at all again
LOST_CODES = frozenset({"UNAVAILABLE", "CANCELLED", "UNKNOWN", "DEADLINE_EXCEEDED", "INTERNAL"})


def eligible_nodes(nodes: list[dict[str, Any]], resources: Mapping[str, float] | None) -> list[dict[str, Any]]:
    """The alive nodes that offer every requested resource (in their totals), sorted by node id."""
    wanted = dict(resources or {})
    return sorted((n for n in nodes if n.get("Alive") and
                   all(n.get("Resources", {}).get(k, 0) >= v for k, v in wanted.items())),
                  key=lambda n: n["NodeID"])


def _alive_nodes() -> set[str]:
    return {n["NodeID"] for n in ray.nodes() if n.get("Alive")}


def _security(info: NodeInfo) -> dict[str, Any]:
    """A node pool's token, and its own certificate as the only one trusted (never the environment's defaults)."""
    return {"token": info.token, "root_certificates": info.certificate.encode() if info.certificate else None,
            "ca_file": ""}


@dataclass
class _Node:
    info: NodeInfo
    actor: Any
    pool: Pool
    aio: dict[int, AsyncPool] = field(default_factory=dict)  # per event loop: grpc.aio channels belong to one

    def async_pool(self, timeout: float) -> AsyncPool:
        loop = id(asyncio.get_running_loop())
        if loop not in self.aio:
            self.aio[loop] = AsyncPool(self.info.address, timeout=timeout, **_security(self.info))
        return self.aio[loop]


def _counts(stats: ppb.StatsResponse) -> dict[str, dict[str, int]]:
    return {e.env_id: {"ready": e.idle, "leased": e.leased, "starting": e.starting, "failed": e.failed}
            for e in stats.envs}


class RayPool:
    def __init__(self, nodes: list[tuple[NodeInfo, Any]], *, timeout: float = 30.0, acquire_wait: float = 30.0,
                 owned: bool = False) -> None:
        self.timeout = timeout
        self.acquire_wait = acquire_wait
        self.owned = owned  # started by this handle: shutdown() stops the pools
        self.nodes = {info.node_id: _Node(info, actor, Pool(info.address, timeout=timeout, **_security(info)))
                      for info, actor in nodes}
        self.caller_node = ray.get_runtime_context().get_node_id()

    # ------------------------------------------------------------ placing and finding the pools

    @classmethod
    def start(cls, size_per_node: int = 4, envs: Path | str | None = None, scenarios: Path | str | None = None,
              only: list[str] | None = None, resources: Mapping[str, float] | None = None, *,
              hardening: Mapping[str, Any] | None = None, lease_ttl: float = 600.0, acquire_wait: float = 30.0,
              max_restarts: int = 3, detached: bool = False, ready_timeout: float = 900.0,
              timeout: float = 30.0, tool_schemas: str = "derived") -> RayPool:
        """One pool actor on every alive node that offers `resources` (each actor reserves them). Each node builds
        the images it lacks, then serves; this returns once every pool serves (warm-up goes on in the background:
        see `wait_ready`). `hardening` overrides fields of containers.hardening.Hardening, e.g. {"runtime": "runsc"}."""
        if size_per_node < 1:
            raise ValueError("size_per_node must be at least 1")
        nodes = eligible_nodes(ray.nodes(), resources)
        if not nodes:
            raise RuntimeError(f"no alive Ray node offers {dict(resources or {})}: nowhere to place a pool")
        taken = [n["NodeID"] for n in nodes if actor_name(n["NodeID"]) in _named_pools()]
        if taken:
            raise RuntimeError(f"a pool already runs on node(s) {', '.join(taken)}: use RayPool.connect(), or shut "
                               "it down first")
        config: dict[str, Any] = {
            "size": size_per_node, "only": only, "lease_ttl": lease_ttl, "acquire_wait": acquire_wait,
            "hardening": dict(hardening or {}), "tool_schemas": tool_schemas,
            "envs_json": Path(envs).read_text(encoding="utf-8") if envs else None,
            "scenarios_json": Path(scenarios).read_text(encoding="utf-8") if scenarios else None,
        }
        remote = ray.remote(NodePoolActor)
        actors = [remote.options(  # type: ignore[attr-defined]
            name=actor_name(n["NodeID"]), namespace=NAMESPACE, num_cpus=0, resources=dict(resources or {}),
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False),
            max_restarts=max_restarts, max_task_retries=0, lifetime="detached" if detached else None,
        ).remote(config, ready_timeout) for n in nodes]
        try:
            infos = ray.get([a.info.remote() for a in actors], timeout=ready_timeout + 30)
        except Exception:
            for actor in actors:
                with contextlib.suppress(Exception):
                    ray.get(actor.shutdown.remote(), timeout=60)
                ray.kill(actor, no_restart=True)
            raise
        return cls(list(zip(infos, actors, strict=True)), timeout=timeout, acquire_wait=acquire_wait, owned=True)

    @classmethod
    def connect(cls, *, timeout: float = 30.0, acquire_wait: float = 30.0, info_timeout: float = 60.0) -> RayPool:
        """The pools that are running in this Ray cluster (started by any driver), found by name."""
        names = sorted(_named_pools())
        if not names:
            raise RuntimeError("no envscaler pool runs in this Ray cluster: start one with RayPool.start()")
        actors = [ray.get_actor(name, namespace=NAMESPACE) for name in names]
        infos = ray.get([a.info.remote() for a in actors], timeout=info_timeout)
        return cls(list(zip(infos, actors, strict=True)), timeout=timeout, acquire_wait=acquire_wait)

    def __reduce__(self) -> tuple[Any, ...]:
        """Sent to a task or actor, a RayPool reopens its channels there (and routes from that worker's node)."""
        nodes = [(n.info, n.actor) for n in self.nodes.values()]
        return (_rebuild, (nodes, self.timeout, self.acquire_wait))

    # ------------------------------------------------------------ routing

    def _stats(self, only: list[str] | None = None) -> dict[str, ppb.StatsResponse]:
        """Every reachable node's Stats (or those of `only`), asked in parallel; a node that does not answer is left
        out."""
        futures = {node_id: node.pool.stub.Stats.future(ppb.StatsRequest(), timeout=STATS_TIMEOUT)
                   for node_id, node in self.nodes.items() if only is None or node_id in only}
        answers: dict[str, ppb.StatsResponse] = {}
        for node_id, future in futures.items():
            with contextlib.suppress(grpc.RpcError):
                answers[node_id] = future.result()
        return answers

    async def _stats_async(self, only: list[str] | None = None) -> dict[str, ppb.StatsResponse]:
        """As `_stats`, on this event loop's channels (no thread per look: many sessions look at once)."""
        node_ids = [n for n in self.nodes if only is None or n in only]
        answers = await asyncio.gather(*(self.nodes[n].async_pool(self.timeout).stub.Stats(
            ppb.StatsRequest(), timeout=STATS_TIMEOUT) for n in node_ids), return_exceptions=True)
        return {n: a for n, a in zip(node_ids, answers, strict=True) if isinstance(a, ppb.StatsResponse)}

    def _local_idle(self, env_id: str, stats: dict[str, ppb.StatsResponse]) -> bool:
        """Whether the caller's own node has an idle container of `env_id` (then no other node is asked: on a large
        cluster a look at every pool per lease would cost each pool a Stats call per lease anywhere)."""
        own = stats.get(self.caller_node)
        return own is not None and any(e.env_id == env_id and e.idle > 0 for e in own.envs)

    def _route(self, env_id: str, stats: dict[str, ppb.StatsResponse]) -> tuple[str, bool]:
        """The node to acquire on, and whether it has an idle container now (else the acquire waits there)."""
        if not stats:
            raise EnvClientError("Acquire", "UNAVAILABLE",
                                 f"no pool answers on any of the {len(self.nodes)} Ray node(s) "
                                 f"({', '.join(self.nodes)})")
        served = {node: {e.env_id for e in s.envs} for node, s in stats.items()}
        if not serving_nodes(env_id, served):
            known = sorted(set().union(*served.values()))
            raise EnvClientError("Acquire", "NOT_FOUND",
                                 f"no pool in the Ray cluster serves {env_id!r} (served: {', '.join(known[:10])}"
                                 f"{' …' if len(known) > 10 else ''})")
        idle = {node: {e.env_id: e.idle for e in s.envs} for node, s in stats.items()}
        chosen = choose_node(env_id, self.caller_node, idle)
        if chosen is not None:
            return chosen, True
        waiting = wait_node(env_id, self.caller_node, {node: _counts(s) for node, s in stats.items()})
        assert waiting is not None  # some node serves it (checked above)
        return waiting, False

    def _exhausted(self, env_id: str, wait: float, stats: dict[str, ppb.StatsResponse]) -> EnvClientError:
        def where(node_id: str) -> str:
            counts = _counts(stats[node_id]).get(env_id) if node_id in stats else None
            if counts is None:
                return f"{node_id[:12]}: {'serves no ' + env_id if node_id in stats else 'pool unreachable'}"
            return f"{node_id[:12]}: " + ", ".join(f"{v} {k}" for k, v in counts.items())

        return EnvClientError("Acquire", "RESOURCE_EXHAUSTED",
                              f"no idle {env_id} container on any of {len(self.nodes)} Ray node(s) within {wait:g} s "
                              f"({'; '.join(where(n) for n in sorted(self.nodes))})")

    def acquire(self, env_id: str, scenario: str | None = None, *, ttl: float | None = None,
                wait: float | None = None, seed: int = 0, direct: bool = False) -> RaySession:
        """A lease on the caller's node if it has an idle container (only that node's pool is asked), else on the
        node with the most idle ones; waits (within `wait`) while no node has one. Call `release()` when done, or
        use `session`."""
        wait = self.acquire_wait if wait is None else wait
        deadline = time.monotonic() + wait
        while True:
            own = self._stats([self.caller_node]) if self.caller_node in self.nodes else {}
            stats = own if self._local_idle(env_id, own) else self._stats()
            node_id, idle = self._route(env_id, stats)
            remaining = deadline - time.monotonic()
            if remaining <= 0 and not idle:
                raise self._exhausted(env_id, wait, stats)
            node = self.nodes[node_id]
            try:
                inner = node.pool.acquire(env_id, scenario, ttl=ttl, wait=_slice(remaining, idle), seed=seed,
                                          direct=direct and node_id == self.caller_node)
            except EnvClientError as exc:
                # taken by another caller meanwhile, none freed within the slice, or the node went away: look at
                # every node again while time is left
                if exc.code in ("RESOURCE_EXHAUSTED", *LOST_CODES) and deadline - time.monotonic() > 0:
                    continue
                raise
            return RaySession(self, node, inner)

    async def acquire_async(self, env_id: str, scenario: str | None = None, *, ttl: float | None = None,
                            wait: float | None = None, seed: int = 0, direct: bool = False) -> AsyncRaySession:
        wait = self.acquire_wait if wait is None else wait
        deadline = time.monotonic() + wait
        while True:
            own = await self._stats_async([self.caller_node]) if self.caller_node in self.nodes else {}
            stats = own if self._local_idle(env_id, own) else await self._stats_async()
            node_id, idle = self._route(env_id, stats)
            remaining = deadline - time.monotonic()
            if remaining <= 0 and not idle:
                raise self._exhausted(env_id, wait, stats)
            node = self.nodes[node_id]
            try:
                inner = await node.async_pool(self.timeout).acquire(
                    env_id, scenario, ttl=ttl, wait=_slice(remaining, idle), seed=seed,
                    direct=direct and node_id == self.caller_node)
            except EnvClientError as exc:
                if exc.code in ("RESOURCE_EXHAUSTED", *LOST_CODES) and deadline - time.monotonic() > 0:
                    continue
                raise
            return AsyncRaySession(self, node, inner)

    def session(self, env_id: str, scenario: str | None = None, *, ttl: float | None = None,
                wait: float | None = None, seed: int = 0, direct: bool = False) -> SessionContext:
        """`with pool.session(...) as env` or `async with pool.session(...) as env`: the lease is released on
        leaving the block."""
        return SessionContext(self, env_id, scenario, {"ttl": ttl, "wait": wait, "seed": seed, "direct": direct})

    @property
    def aio(self) -> AsyncRayPool:
        """The AsyncPool-shaped view (acquire / session / list_envs / stats as coroutines), for asyncio code."""
        return AsyncRayPool(self)

    # ------------------------------------------------------------ failures

    def lost(self, node: _Node, method: str, exc: EnvClientError, lease_id: str) -> EnvClientError:
        """The error a session raises: UNAVAILABLE naming the node when its node or pool is gone, else `exc`."""
        if exc.code not in LOST_CODES:
            return exc
        if node.info.node_id not in _alive_nodes():
            why = "left the Ray cluster (node lost)"
        else:
            try:
                node.pool.stub.Stats(ppb.StatsRequest(), timeout=STATS_TIMEOUT)
                return exc  # the pool answers: this is the session's own failure, not the node's
            except grpc.RpcError:
                why = "is in the cluster but its pool does not answer (pool actor lost or restarting)"
        return EnvClientError(method, "UNAVAILABLE",
                              f"Ray node {node.info.node_id} ({node.info.ip}, pool {node.info.pool_id}) {why}: "
                              f"lease {lease_id} held there is lost; sessions on other nodes go on "
                              f"[{exc.code}: {exc.details[:200]}]")

    # ------------------------------------------------------------ what runs where

    def stats(self) -> dict[str, Any]:
        """{"nodes": {node_id: {ip, address, pool_id, reachable, size, containers, envs: {env: counts}}},
        "envs": {env: counts summed over the reachable nodes}}; counts are ready, leased, starting, failed."""
        answers = self._stats()
        nodes: dict[str, Any] = {}
        total: dict[str, dict[str, int]] = {}
        for node_id, node in self.nodes.items():
            s = answers.get(node_id)
            envs = _counts(s) if s is not None else {}
            nodes[node_id] = {"ip": node.info.ip, "address": node.info.address, "pool_id": node.info.pool_id,
                              "reachable": s is not None, "size": s.size if s else 0,
                              "containers": s.containers if s else 0, "envs": envs}
            for env, counts in envs.items():
                summed = total.setdefault(env, dict.fromkeys(counts, 0))
                for key, value in counts.items():
                    summed[key] += value
        return {"nodes": nodes, "envs": total}

    def list_envs(self) -> ppb.ListEnvsResponse:
        """What the cluster serves: each environment once (from the first node that serves it)."""
        seen: dict[str, ppb.EnvSummary] = {}
        for node in self.nodes.values():
            with contextlib.suppress(EnvClientError):
                for env in node.pool.list_envs().envs:
                    seen.setdefault(env.env_id, env)
        return ppb.ListEnvsResponse(envs=list(seen.values()))

    def wait_ready(self, per_node: int | None = None, timeout: float = 300.0) -> None:
        """Until every node's pool answers and has `per_node` ready containers (default: its size)."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()["nodes"]
            short = {n: s for n, s in stats.items() if not s["reachable"] or
                     sum(c["ready"] for c in s["envs"].values()) < (per_node or s["size"])}
            if not short:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"pools not ready after {timeout:g} s on node(s) {', '.join(short)}")
            time.sleep(0.2)

    def refresh(self, info_timeout: float = 30.0) -> None:
        """Ask the actors again where their pools listen (after a restart the address changes); nodes that left
        the cluster are dropped."""
        for node_id, node in list(self.nodes.items()):
            try:
                info = ray.get(node.actor.info.remote(), timeout=info_timeout)
            except Exception:  # dying or restarting (ask again later), or gone for good with its node
                if node_id not in _alive_nodes():
                    node.pool.close()
                    del self.nodes[node_id]
                continue
            if info.address != node.info.address:
                node.pool.close()
                self.nodes[node_id] = _Node(info, node.actor,
                                            Pool(info.address, timeout=self.timeout, **_security(info)))

    def shutdown(self) -> None:
        """Stop every pool (each drains and removes its containers), then remove what pools that were lost on these
        engines left behind, and the actors."""
        survivors = []
        for node in self.nodes.values():
            node.pool.close()
            survivors.append(node.actor)
        stopping = [a.shutdown.remote() for a in survivors]
        for ref in stopping:
            with contextlib.suppress(Exception):
                ray.get(ref, timeout=120)
        reaping = [a.reap_dead.remote() for a in survivors]
        for ref in reaping:
            with contextlib.suppress(Exception):
                ray.get(ref, timeout=120)
        for actor in survivors:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
        self.nodes.clear()

    def close(self) -> None:
        """Close this handle's channels (the pools go on; `shutdown` stops them)."""
        for node in self.nodes.values():
            node.pool.close()

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.owned:
            self.shutdown()
        else:
            self.close()


def _slice(remaining: float, idle: bool) -> float:
    """How long an Acquire may wait at the chosen pool: the whole remaining time where a container is idle (it is
    ours unless another caller takes it first), else one slice, so that a container freed elsewhere is not
    missed."""
    return max(remaining if idle else min(remaining, WAIT_SLICE), 0.05)


def _rebuild(nodes: list[tuple[NodeInfo, Any]], timeout: float, acquire_wait: float) -> RayPool:
    return RayPool(nodes, timeout=timeout, acquire_wait=acquire_wait)


def _named_pools() -> set[str]:
    return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a.get("namespace") == NAMESPACE and a["name"].startswith(NAME_PREFIX)}


class RaySession(EnvMethods):
    """A lease on one node's pool, with EnvClient's methods; calls go straight to that pool over gRPC."""

    def __init__(self, owner: RayPool, node: _Node, inner: PoolSession) -> None:
        self.owner, self.node, self.inner = owner, node, inner
        self.node_id = node.info.node_id
        self.lease_id, self.env_id, self.initial = inner.lease_id, inner.env_id, inner.initial
        self.episode_id, self.timeout = inner.episode_id, inner.timeout

    def _invoke(self, method: str, request: Any, timeout: float | None = None) -> Any:
        try:
            return self.inner._invoke(method, request, timeout)
        except EnvClientError as exc:
            raise self.owner.lost(self.node, method, exc, self.lease_id) from None

    def renew(self) -> None:
        try:
            self.inner.renew()
        except EnvClientError as exc:
            raise self.owner.lost(self.node, "Renew", exc, self.lease_id) from None

    def release(self) -> None:
        try:
            self.inner.release()
        except EnvClientError as exc:
            raise self.owner.lost(self.node, "Release", exc, self.lease_id) from None


class AsyncRaySession(AsyncEnvMethods):
    def __init__(self, owner: RayPool, node: _Node, inner: AsyncPoolSession) -> None:
        self.owner, self.node, self.inner = owner, node, inner
        self.node_id = node.info.node_id
        self.lease_id, self.env_id, self.initial = inner.lease_id, inner.env_id, inner.initial
        self.episode_id, self.timeout = inner.episode_id, inner.timeout

    async def _lost(self, method: str, exc: EnvClientError) -> EnvClientError:
        return await asyncio.to_thread(self.owner.lost, self.node, method, exc, self.lease_id)

    async def _invoke(self, method: str, request: Any, timeout: float | None = None) -> Any:
        try:
            return await self.inner._invoke(method, request, timeout)
        except EnvClientError as exc:
            raise await self._lost(method, exc) from None

    async def release(self) -> None:
        try:
            await self.inner.release()
        except EnvClientError as exc:
            raise await self._lost("Release", exc) from None


class SessionContext:
    """What `RayPool.session` returns: usable with `with` and with `async with`."""

    def __init__(self, pool: RayPool, env_id: str, scenario: str | None, options: dict[str, Any]) -> None:
        self.pool, self.env_id, self.scenario, self.options = pool, env_id, scenario, options
        self.sync: RaySession | None = None
        self.async_: AsyncRaySession | None = None

    def __enter__(self) -> RaySession:
        self.sync = self.pool.acquire(self.env_id, self.scenario, **self.options)
        return self.sync

    def __exit__(self, *exc: object) -> None:
        if self.sync is not None:
            with contextlib.suppress(EnvClientError):  # an expired or lost lease is no longer ours to give back
                self.sync.release()

    async def __aenter__(self) -> AsyncRaySession:
        self.async_ = await self.pool.acquire_async(self.env_id, self.scenario, **self.options)
        return self.async_

    async def __aexit__(self, *exc: object) -> None:
        if self.async_ is not None:
            with contextlib.suppress(EnvClientError):
                await self.async_.release()


class AsyncRayPool:
    """AsyncPool's shape over a RayPool (what envscaler/rollout/runner.py drives)."""

    def __init__(self, pool: RayPool) -> None:
        self.pool = pool

    async def acquire(self, env_id: str, scenario: str | None = None, **options: Any) -> AsyncRaySession:
        return await self.pool.acquire_async(env_id, scenario, **options)

    @contextlib.asynccontextmanager
    async def session(self, env_id: str, scenario: str | None = None, **options: Any) -> AsyncIterator[Any]:
        async with self.pool.session(env_id, scenario, **options) as session:
            yield session

    async def list_envs(self) -> ppb.ListEnvsResponse:
        return await asyncio.to_thread(self.pool.list_envs)

    async def stats(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.pool.stats)

    async def close(self) -> None:
        loop = id(asyncio.get_running_loop())
        for node in self.pool.nodes.values():
            channel = node.aio.pop(loop, None)
            if channel is not None:
                await channel.close()

    async def __aenter__(self) -> AsyncRayPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

