"""Benchmark envscaler.ray on this machine: several Ray nodes on one host against one pool, in one run.

    .venv/bin/python -m bench.ray [--nodes 2] [--size-per-node 8] [--episodes 256] [--concurrency 16] [--n 200]

Measures: the time from nothing to every node's pool ready (and to one pool of the same total size); warm Acquire
p50/p99 through RayPool and through a plain Pool on the same node's pool, interleaved; the throughput of an
N-episode rollout (the bundled reference solutions replayed, then evaluated) through RayPool and through one pool
of the same total size; idle memory and the CPU per busy session from the containers' cgroups; and from those a
paper projection of the nodes needed for 4,096 concurrent sessions. Writes bench/results/ray.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import docker
import ray
from ray.cluster_utils import Cluster

from bench.machine import machine
from envscaler.client.pool_client import AsyncPool, Pool
from envscaler.containers.hardening import Hardening
from envscaler.containers.owners import POOL_LABEL, listed
from envscaler.ray import RayPool

RESULTS = Path(__file__).resolve().parent / "results"
SOLUTIONS = Path(__file__).resolve().parent.parent / "envscaler" / "examples" / "solutions"
ENV = "env_4"
TARGET_SESSIONS = 4096
LIMIT_MIB = Hardening().memory_bytes >> 20
NODE_ARGS = {"num_cpus": 1, "object_store_memory": 80 << 20}
# Example node shapes for the projection (cores, GiB); a quarter of each is left to the OS, Ray and the pool.
SHAPES = [("this machine", None, None), ("32 cores, 128 GiB", 32, 128), ("64 cores, 256 GiB", 64, 256)]


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": statistics.median(ordered) * 1e3,
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3, "n": len(ordered)}


def _cgroup(container_id: str, v1: str, v2: str) -> Path | None:
    for path in (Path(f"/sys/fs/cgroup/{v1}".format(id=container_id)),
                 Path(f"/sys/fs/cgroup/{v2}".format(id=container_id))):
        if path.exists():
            return path
    return None


def memory_mib(container_id: str) -> float:
    path = _cgroup(container_id, "memory/docker/{id}/memory.usage_in_bytes",
                   "system.slice/docker-{id}.scope/memory.current")
    return int(path.read_text()) / 2**20 if path else float("nan")


def cpu_seconds(container_id: str) -> float:
    path = _cgroup(container_id, "cpuacct/docker/{id}/cpuacct.usage", "system.slice/docker-{id}.scope/cpu.stat")
    if path is None:
        return float("nan")
    text = path.read_text()
    if path.name == "cpu.stat":
        return int(next(line.split()[1] for line in text.splitlines() if line.startswith("usage_usec"))) / 1e6
    return int(text) / 1e9


class CpuMeter:
    """CPU seconds used by the containers of some pools over a run, sampled as they come and go (a container
    started during the run counts from zero; one removed counts up to its last sample)."""

    def __init__(self, engine: docker.DockerClient, prefixes: list[str]) -> None:
        self.engine, self.prefixes = engine, prefixes
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.stop = threading.Event()
        self.sample(baseline=True)
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def sample(self, baseline: bool = False) -> None:
        for prefix in self.prefixes:
            for container_id in containers(self.engine, prefix):
                used = cpu_seconds(container_id)
                if math.isnan(used):
                    continue
                self.first.setdefault(container_id, used if baseline else 0.0)
                self.last[container_id] = used

    def loop(self) -> None:
        while not self.stop.wait(0.5):
            self.sample()

    def total(self) -> float:
        self.stop.set()
        self.thread.join()
        self.sample()
        return sum(self.last[c] - self.first[c] for c in self.last)


def containers(engine: docker.DockerClient, prefix: str) -> list[str]:
    return [c.id for c in listed(engine, {"label": POOL_LABEL, "status": "running"})
            if c.labels[POOL_LABEL].startswith(prefix)]


def work(episodes: int) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """`episodes` episodes cycling through the bundled reference solutions."""
    paths = sorted(SOLUTIONS.glob("*.jsonl"))
    return [(*paths[i % len(paths)].stem.split("__"), [json.loads(line) for line in
                                                      paths[i % len(paths)].read_text().splitlines()])
            for i in range(episodes)]


async def rollout(session: Callable[..., AbstractAsyncContextManager[Any]], episodes: int,
                  concurrency: int) -> dict[str, Any]:
    """Replay the solutions through `session(env_id, scenario=...)`, `concurrency` at once."""
    gate = asyncio.Semaphore(concurrency)
    rewards: list[float] = []
    busy: list[float] = []

    async def one(env_id: str, task_id: str, calls: list[dict[str, Any]]) -> None:
        async with gate, session(env_id, scenario=task_id, wait=300) as env:
            leased = time.perf_counter()  # the session's time on its container, not its wait for one
            for call in calls:
                await env.call(call["name"], call["arguments"])
            rewards.append((await env.evaluate()).reward)
            busy.append(time.perf_counter() - leased)

    started = time.perf_counter()
    await asyncio.gather(*(one(*item) for item in work(episodes)))
    wall = time.perf_counter() - started
    return {"episodes": episodes, "wall_s": wall, "episodes_per_s": episodes / wall,
            "mean_reward": sum(rewards) / len(rewards), "session_seconds": sum(busy)}


def one_pool(size: int, episodes: int, concurrency: int, engine: docker.DockerClient) -> dict[str, Any]:
    """The baseline: `envscaler-runtime pool` of the same total size, on TCP like the nodes' pools."""
    tmp = Path(tempfile.mkdtemp(prefix="envscaler-bench-ray-"))
    port = 50000 + (int(time.time()) % 5000)
    address = f"tcp:127.0.0.1:{port}"
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "envscaler.cli", "pool", "--size", str(size), "--listen",
                                address, "--metrics-listen", "", "--acquire-wait", "300"],
                               stdout=subprocess.DEVNULL, stderr=(tmp / "pool.log").open("wb"))
    try:
        pool = Pool(address, timeout=5)
        while True:
            try:
                stats = pool.stats()
                if sum(e.idle for e in stats.envs) >= size:
                    break
            except Exception:  # not listening yet
                pass
            if process.poll() is not None:
                raise RuntimeError(f"the baseline pool exited: {(tmp / 'pool.log').read_text()[-2000:]}")
            time.sleep(0.1)
        ready = time.perf_counter() - started
        pool.close()

        async def run() -> dict[str, Any]:
            async with AsyncPool(address, timeout=60) as client:
                return await rollout(client.session, episodes, concurrency)

        result = asyncio.run(run())
        return {"time_to_ready_s": ready, "rollout": result}
    finally:
        process.terminate()
        process.wait(timeout=120)


def acquire_latency(pool: RayPool, n: int) -> dict[str, Any]:
    """Warm Acquire (no scenario) through RayPool and through a Pool on the same (the driver's own) node's pool,
    interleaved so that both see the same machine."""
    direct = Pool(pool.nodes[pool.caller_node].info.address)
    through_ray: list[float] = []
    through_pool: list[float] = []
    for _ in range(n):
        for samples, acquire in ((through_ray, pool.acquire), (through_pool, direct.acquire)):
            started = time.perf_counter()
            session = acquire(ENV, wait=60)
            samples.append(time.perf_counter() - started)
            session.release()
    direct.close()
    return {"raypool": percentiles(through_ray), "pool": percentiles(through_pool)}


def projection(memory: float, cpu_per_episode: float, episode_seconds: float) -> list[dict[str, Any]]:
    """Sessions per node and nodes for 4,096 concurrent sessions, on paper: bounded by memory (warm containers)
    and by CPU (each session running one episode every `episode_seconds`, most of it the model's time)."""
    rows = []
    for name, cores, gib in SHAPES:
        cores = cores or os.cpu_count() or 1
        gib = gib or int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                              if line.startswith("MemTotal"))) / 2**20
        by_memory = int(gib * 0.75 * 1024 / memory)
        by_cpu = int(cores * 0.75 * episode_seconds / cpu_per_episode) if cpu_per_episode > 0 else by_memory
        rows.append({"node": name, "by_memory": by_memory, "by_cpu": by_cpu,
                     "nodes_for_4096": math.ceil(TARGET_SESSIONS / max(min(by_memory, by_cpu), 1))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--size-per-node", type=int, default=8)
    parser.add_argument("--episodes", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--n", type=int, default=200, help="acquires per path")
    parser.add_argument("--episode-seconds", type=float, default=60.0,
                        help="projection: one episode per session every this many seconds (60)")
    parser.add_argument("--render", action="store_true", help="only rewrite ray.md (and the projection) from ray.json")
    args = parser.parse_args()
    if args.render:
        report = json.loads((RESULTS / "ray.json").read_text())
        finish(report, args.episode_seconds)
        return
    engine = docker.from_env()
    total = args.nodes * args.size_per_node
    load_before = os.getloadavg()[0]

    print(f"baseline: one pool of {total}", flush=True)
    baseline = one_pool(total, args.episodes, args.concurrency, engine)

    print(f"{args.nodes} Ray nodes of {args.size_per_node}", flush=True)
    started = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args=NODE_ARGS)
    for _ in range(args.nodes - 1):
        cluster.add_node(**NODE_ARGS)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    cluster_up = time.perf_counter() - started
    try:
        started = time.perf_counter()
        pool = RayPool.start(size_per_node=args.size_per_node, acquire_wait=300, timeout=60)
        serving = time.perf_counter() - started
        pool.wait_ready(timeout=600)
        ready = time.perf_counter() - started
        ids = [c for node in pool.nodes.values() for c in containers(engine, node.info.pool_id)]
        idle_memory = [memory_mib(c) for c in ids]
        print("acquire latency", flush=True)
        acquire = acquire_latency(pool, args.n)
        pool.wait_ready(timeout=300)
        print("rollout through RayPool", flush=True)
        meter = CpuMeter(engine, [node.info.pool_id for node in pool.nodes.values()])
        result = asyncio.run(rollout(pool.session, args.episodes, args.concurrency))
        cpu_used = meter.total()
        stats = pool.stats()
        pool.shutdown()
    finally:
        ray.shutdown()
        cluster.shutdown()

    memory = statistics.median(idle_memory)
    report = {
        "machine": machine(), "load_average_1m": [load_before, os.getloadavg()[0]],
        "nodes": args.nodes, "size_per_node": args.size_per_node,
        "episodes": args.episodes, "concurrency": args.concurrency,
        "cluster_up_s": cluster_up, "raypool_serving_s": serving, "raypool_ready_s": ready,
        "one_pool_ready_s": baseline["time_to_ready_s"],
        "acquire": acquire, "rollout_raypool": result, "rollout_one_pool": baseline["rollout"],
        "idle_memory_mib": {"median": memory, "max": max(idle_memory), "n": len(idle_memory)},
        "container_cpu_seconds": cpu_used,
        "per_node_containers": {n[:12]: s["containers"] for n, s in stats["nodes"].items()},
    }
    finish(report, args.episode_seconds)


def finish(report: dict[str, Any], episode_seconds: float) -> None:
    """The per-episode CPU and the projection from the measurements; writes ray.json and ray.md."""
    report["cpu_seconds_per_episode"] = report["container_cpu_seconds"] / report["rollout_raypool"]["episodes"]
    report["episode_seconds_assumed"] = episode_seconds
    report["projection"] = projection(report["idle_memory_mib"]["median"], report["cpu_seconds_per_episode"],
                                      episode_seconds)
    for stale in ("cpu_per_busy_session",):
        report.pop(stale, None)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ray.json").write_text(json.dumps(report, indent=1) + "\n")
    (RESULTS / "ray.md").write_text(markdown(report))
    print((RESULTS / "ray.md").read_text())


def markdown(r: dict[str, Any]) -> str:
    a, ray_run, one = r["acquire"], r["rollout_raypool"], r["rollout_one_pool"]
    total = r["nodes"] * r["size_per_node"]
    lines = [
        f"# envscaler.ray: {r['nodes']} Ray nodes on one host vs one pool",
        "",
        f"Machine: {r['machine']}; 1-minute load average {r['load_average_1m'][0]:.1f} at the start and "
        f"{r['load_average_1m'][1]:.1f} at the end (the machine is shared: absolute times are noisy, compare the "
        "ratios, each measured in the same run).",
        "",
        f"`python -m bench.ray --nodes {r['nodes']} --size-per-node {r['size_per_node']} --episodes {r['episodes']} "
        f"--concurrency {r['concurrency']}`. All Ray nodes share this host and its one Docker engine, so this "
        "measures the cost of the Ray layer, not a gain from more machines.",
        "",
        "### Time to ready",
        "",
        "| what | seconds |",
        "|---|---:|",
        f"| Ray cluster of {r['nodes']} nodes up (ray.cluster_utils) | {r['cluster_up_s']:.1f} |",
        f"| RayPool.start until every node's pool serves | {r['raypool_serving_s']:.1f} |",
        f"| RayPool.start until all {total} containers are ready | {r['raypool_ready_s']:.1f} |",
        f"| one pool of {total} (`envscaler-runtime pool`) until ready | {r['one_pool_ready_s']:.1f} |",
        "",
        f"RayPool is ready in {r['raypool_ready_s'] / r['one_pool_ready_s']:.2f}x the time of one pool "
        "(images already built).",
        "",
        "### Warm Acquire (interleaved, same node's pool, TCP)",
        "",
        "| path | p50 | p99 |",
        "|---|---:|---:|",
        f"| RayPool.acquire (the own node's Stats, then Acquire there) | {a['raypool']['p50_ms']:.2f} ms | "
        f"{a['raypool']['p99_ms']:.2f} ms |",
        f"| Pool.acquire on the same pool | {a['pool']['p50_ms']:.2f} ms | {a['pool']['p99_ms']:.2f} ms |",
        "",
        f"RayPool's acquire takes {a['raypool']['p50_ms'] / a['pool']['p50_ms']:.2f}x a plain Pool's at p50 "
        f"({a['raypool']['p99_ms'] / a['pool']['p99_ms']:.2f}x at p99); n = {a['pool']['n']} each.",
        "",
        f"### Rollout: {r['episodes']} episodes (reference solutions replayed, then evaluated), "
        f"{r['concurrency']} at once",
        "",
        "| through | episodes/s | wall | mean reward |",
        "|---|---:|---:|---:|",
        f"| RayPool, {r['nodes']} nodes x {r['size_per_node']} | {ray_run['episodes_per_s']:.1f} | "
        f"{ray_run['wall_s']:.1f} s | {ray_run['mean_reward']:.3f} |",
        f"| one pool of {total} | {one['episodes_per_s']:.1f} | {one['wall_s']:.1f} s | {one['mean_reward']:.3f} |",
        "",
        f"RayPool's throughput is {ray_run['episodes_per_s'] / one['episodes_per_s']:.2f}x one pool's.",
        "",
        "### Projection for 4,096 concurrent sessions (on paper)",
        "",
        f"Measured: idle memory per container (cgroup) median {r['idle_memory_mib']['median']:.1f} MiB "
        f"(max {r['idle_memory_mib']['max']:.1f}, n = {r['idle_memory_mib']['n']}); "
        f"{r['cpu_seconds_per_episode']:.2f} CPU-seconds per episode (every container's CPU during the rollout "
        "divided by the episodes: resets to a fresh worker, containers started when the pools rebalanced, and "
        "idle time included, on a loaded machine: a pessimistic figure). Assumed: three quarters of a node go to "
        f"sandboxes, and each session runs one episode every {r['episode_seconds_assumed']:g} s (in training most "
        "of an episode is the model's time, during which its sandbox idles).",
        "",
        "| node | sessions by memory | sessions by CPU | nodes for 4,096 concurrent sessions |",
        "|---|---:|---:|---:|",
        *[f"| {p['node']} | {p['by_memory']} | {p['by_cpu']} | {p['nodes_for_4096']} |" for p in r["projection"]],
        "",
        f"Sized by the containers' memory limit instead ({LIMIT_MIB} MiB, the worst case: every environment at its "
        f"cap), a 128 GiB node holds {int(128 * 1024 * 0.75 / LIMIT_MIB)} sessions and 4,096 need "
        f"{math.ceil(TARGET_SESSIONS / int(128 * 1024 * 0.75 / LIMIT_MIB))} such nodes.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
