"""Benchmark the pool against its floors, in one run.

    .venv/bin/python -m bench.pool [--sizes 8 32 64] [--n 1000]

Measures: a bare grpcio echo over UDS (the gRPC floor); CallTool straight to one
container's EnvService and through the pool; Reset and warm Acquire through the
pool; a fresh hardened `docker run` of the same image until it serves; the time
from nothing to N ready containers; idle memory per container from its cgroup.
Writes bench/results/pool.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from bench.env_server import in_process_env
from bench.floor import aio_throughput, echo_server, stream_echo, unary_echo
from bench.machine import machine
from bench.openenv.serve import OpenEnvCaller, build_image, serving
from bench.round_trip import Block, interleaved, raw_echo, timed, uds_echo_container
from bench.workload import ARGS, ENV, SCENARIO, TOOL
from envscaler.client import EnvClient, EnvClientError
from envscaler.client.env_client import call_request
from envscaler.client.models import ToolResult
from envscaler.client.pool_client import Pool
from envscaler.client.session_stream import SessionStream
from envscaler.containers import launch, owners
from envscaler.images.base import ensure_base
from envscaler.images.engine import connect
from envscaler.pool.runner import PoolOptions, build_images
from envscaler.spec import load_corpus
from envscaler.v1 import pool_pb2 as ppb

RESULTS = Path(__file__).resolve().parent / "results"
SOLUTIONS = Path(__file__).resolve().parent.parent / "envscaler" / "examples" / "solutions"


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": statistics.median(ordered) * 1e3,
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3, "n": len(ordered)}


def container_memory_mib(container_id: str) -> float:
    for path in (f"/sys/fs/cgroup/memory/docker/{container_id}/memory.usage_in_bytes",
                 f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/memory.current"):
        if Path(path).exists():
            return int(Path(path).read_text()) / 2**20
    return float("nan")


class RunningPool:
    """`envscaler-runtime pool` in its own process, as users run it: the benchmark's clients never share its
    event loop or its GIL."""

    def __init__(self, size: int) -> None:
        self.tmp = tempfile.mkdtemp(prefix="envscaler-bench-")
        self.listen = f"unix:{self.tmp}/pool.sock"
        self.size = size

    async def __aenter__(self) -> RunningPool:
        self.started = time.perf_counter()
        self.log = (Path(self.tmp) / "pool.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "envscaler.cli", "pool", "--size", str(self.size), "--listen", self.listen,
             "--metrics-listen", "", "--acquire-wait", "120"], stdout=subprocess.DEVNULL, stderr=self.log)
        return self

    def ready(self) -> int:
        try:
            with Pool(self.listen, timeout=5) as pool:
                stats = pool.stats()
        except EnvClientError:
            return 0
        except grpc.RpcError:
            return 0
        return sum(env.idle + env.leased for env in stats.envs)

    async def wait_ready(self, count: int) -> float:
        """Seconds from the pool's process start until `count` containers are ready."""
        while await asyncio.to_thread(self.ready) < count:
            if self.process.poll() is not None:
                raise RuntimeError(f"the pool exited; see {self.log.name}")
            await asyncio.sleep(0.05)
        return time.perf_counter() - self.started

    def pool_id(self) -> str:
        """Our pool's id: the name of the lock file its process holds (other pools share the engine)."""
        for fd in os.listdir(f"/proc/{self.process.pid}/fd"):
            with contextlib.suppress(OSError):
                target = Path(os.readlink(f"/proc/{self.process.pid}/fd/{fd}"))
                if target.suffix == ".lock" and target.parent == owners.LOCK_DIR:
                    return target.stem
        return ""

    def containers(self, client: Any) -> list[Any]:
        # Filtered by the engine: listing others' containers races with their removal (the client inspects each).
        return client.containers.list(filters={"label": f"{launch.OWNER_LABEL}=pool-{self.pool_id()}"})

    async def __aexit__(self, *exc: object) -> None:
        self.process.send_signal(signal.SIGINT)  # drains and removes its containers
        await asyncio.to_thread(self.process.wait, 120)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    client = connect()
    corpus = load_corpus()
    images, _ = build_images(client, corpus, PoolOptions(), Path(tempfile.gettempdir()) / "bench-images.log")
    result: dict[str, Any] = {"machine": machine(), "env": ENV, "tool": TOOL}
    result["aio_echo_throughput_64"] = await asyncio.to_thread(aio_throughput, 64, args.seconds)

    cold = []
    for _ in range(5):
        started = time.perf_counter()
        with launch.running(client, images[ENV], owner="bench"):
            cold.append(time.perf_counter() - started)
    result["docker_run_until_serving"] = stats(cold)
    openenv_image = None
    if not args.no_openenv:
        print("building the openenv-core image (once; pip install from PyPI)", flush=True)
        base = ensure_base(client, args.base, Path(tempfile.gettempdir()) / "bench-base.log")
        openenv_image = build_image(client, base, corpus.env(ENV), corpus.scenarios_of(ENV)[SCENARIO],
                                    Path(tempfile.gettempdir()) / "bench-openenv.log")

    result["time_to_ready_s"] = {}
    for size in args.sizes:
        async with RunningPool(size) as pool:
            result["time_to_ready_s"][str(size)] = await pool.wait_ready(size)
            if size == max(args.sizes):
                await asyncio.sleep(3)
                memory = [container_memory_mib(c.id) for c in pool.containers(client)]
                result["idle_memory_mib"] = {"median": statistics.median(memory), "max": max(memory)}
                result["throughput_calls_per_s"] = {
                    str(n): await session_throughput(pool.listen, corpus, n, args.seconds)
                    for n in (1, 8, size)}
                result["throughput_direct_calls_per_s"] = {
                    str(n): await session_throughput(pool.listen, corpus, n, args.seconds, direct=True)
                    for n in (1, 8, size)}
            if size == min(args.sizes):
                result.update(await asyncio.to_thread(lease_latencies, pool))
            if size != max(args.sizes):  # the call paths need two leases of one environment
                continue
            with contextlib.ExitStack() as stack:
                socket = stack.enter_context(serving(client, openenv_image)) if openenv_image else None
                result.update(await asyncio.to_thread(call_paths, pool, client, corpus, images, args.n, socket))
    return result


async def session_throughput(address: str, corpus: Any, sessions: int, seconds: float, direct: bool = False) -> float:
    """Aggregate CallTool rate of `sessions` concurrent sessions spread over the environments."""
    from envscaler.client.pool_client import AsyncPool

    plans = []
    for env_id, scenarios in corpus.scenarios.items():
        task_id = next(iter(scenarios))
        first = json.loads((SOLUTIONS / f"{env_id}__{task_id}.jsonl").read_text().splitlines()[0])
        plans.append((env_id, task_id, first["name"], first["arguments"]))
    counts = [0] * sessions
    async with AsyncPool(address, timeout=60) as pool:
        leased = [await pool.acquire(plans[i % len(plans)][0], plans[i % len(plans)][1], wait=120, direct=direct)
                  for i in range(sessions)]
        until = time.perf_counter() + seconds

        async def loop(i: int) -> None:
            _, _, name, arguments = plans[i % len(plans)]
            while time.perf_counter() < until:
                await leased[i].call(name, arguments)
                counts[i] += 1

        started = time.perf_counter()
        await asyncio.gather(*(loop(i) for i in range(sessions)))
        elapsed = time.perf_counter() - started
        for session in leased:
            await session.release()
    return sum(counts) / elapsed


def call_paths(pool: RunningPool, client: Any, corpus: Any, images: dict[str, str], n: int,
               openenv_socket: Path | None) -> dict[str, Any]:
    """Every round-trip path of bench.round_trip, interleaved, on the same container and call."""
    spec, scenario = corpus.env(ENV), corpus.scenarios_of(ENV)[SCENARIO]
    local = in_process_env(spec.env_class_code, spec.env_class_name, scenario.init_config)
    with contextlib.ExitStack() as stack:
        unary_address = stack.enter_context(echo_server("sync"))
        channel = stack.enter_context(grpc.insecure_channel(unary_address))
        stream_once, stream_close = stream_echo(channel)
        stack.callback(stream_close)
        echo_socket = stack.enter_context(uds_echo_container(client, images[ENV]))
        raw_once, raw_close = raw_echo(echo_socket)
        stack.callback(raw_close)
        pool_client = stack.enter_context(Pool(pool.listen))
        session = stack.enter_context(pool_client.session(ENV, SCENARIO))  # the pool's paths
        # The direct paths, on a lease of their own (an episode has one channel: the pool's route takes this one's):
        # the lease's route, and (as the trusted host process we are) the container's own gRPC socket beside it.
        leased = stack.enter_context(pool_client.session(ENV, SCENARIO))
        grpc_address = f"unix:{Path(leased.direct_session_socket).parent / 'env.sock'}"
        env = stack.enter_context(EnvClient(grpc_address, session_socket=leased.direct_session_socket))
        env_hop = stack.enter_context(EnvClient(grpc_address, session_socket=leased.direct_session_socket,
                                                episode_channel=False))
        env_stream = stack.enter_context(EnvClient(grpc_address))  # a gRPC session stream
        env.episode_id = env_hop.episode_id = env_stream.episode_id = ""  # the lease's episode: all act on it
        unary_request = call_request(leased.episode_id, TOOL, ARGS, None)
        pool_request = call_request(session.episode_id, TOOL, ARGS, None)
        leased_request = ppb.LeaseCallToolRequest(lease_id=session.lease_id, request=pool_request)
        pool_stream = SessionStream(session.pool_stub.Session,
                                    lambda r: ppb.LeaseSessionRequest(lease_id=session.lease_id, request=r))
        stack.callback(pool_stream.close)
        paths: dict[str, Block] = {
            "inproc_call": timed(lambda: str(getattr(local, TOOL)(**ARGS))),
            "uds_echo_container": timed(raw_once),
            "grpc_echo_floor": timed(unary_echo(channel)),
            "grpc_stream_floor": timed(stream_once),
            "call_direct_envservice": timed(lambda: env.call(TOOL, ARGS)),
            "call_direct_server_hop": timed(lambda: env_hop.call(TOOL, ARGS)),
            "call_direct_stream": timed(lambda: env_stream.call(TOOL, ARGS)),
            "call_direct_unary": timed(lambda: ToolResult.from_pb(TOOL, env.stub.CallTool(unary_request))),
            "call_through_pool": timed(lambda: session.call(TOOL, ARGS)),
            "call_through_pool_stream": timed(lambda: ToolResult.from_pb(
                TOOL, pool_stream.request("CallTool", pool_request, 30.0))),
            "call_through_pool_unary": timed(
                lambda: ToolResult.from_pb(TOOL, session.pool_stub.CallTool(leased_request))),
        }
        if openenv_socket is not None:
            caller = OpenEnvCaller(openenv_socket, TOOL, ARGS)
            stack.callback(caller.close)
            paths["openenv_ws"] = caller.samples
        samples = interleaved(paths, rounds=max(1, n // 50), per_round=50)
        out = {name: stats(values) for name, values in samples.items()}
        out["reset_through_pool"] = stats(timed(lambda: session.reset(SCENARIO))(200))
    return out


def lease_latencies(pool: RunningPool) -> dict[str, Any]:
    with Pool(pool.listen) as client:
        acquired, released = [], []
        for _ in range(200):  # acquire and release timed apart: the target is the acquire
            started = time.perf_counter()
            session = client.acquire(ENV)
            acquired.append(time.perf_counter() - started)
            started = time.perf_counter()
            session.release()
            released.append(time.perf_counter() - started)
    return {"warm_acquire": stats(acquired), "release": stats(released)}


ROUND_TRIPS = [
    ("tool call, in-process method (EnvScaler's way)", "inproc_call"),
    ("raw UDS echo into a `--network none` container (transport floor)", "uds_echo_container"),
    ("bare grpcio echo over UDS, unary (**the gRPC floor**)", "grpc_echo_floor"),
    ("bare grpcio echo over UDS, bidi-stream message", "grpc_stream_floor"),
    ("**CallTool direct to the container's EnvService, session socket** (episode channel: the worker answers)",
     "call_direct_envservice"),
    ("CallTool direct to the container's EnvService, session socket, through its server (no episode channel)",
     "call_direct_server_hop"),
    ("CallTool direct to the container's EnvService, gRPC session stream", "call_direct_stream"),
    ("CallTool direct to the container's EnvService, gRPC unary", "call_direct_unary"),
    ("**CallTool through the pool, session socket**", "call_through_pool"),
    ("CallTool through the pool, gRPC session stream", "call_through_pool_stream"),
    ("CallTool through the pool, gRPC unary", "call_through_pool_unary"),
    ("openenv-core 0.3.0, same environment and base image, WebSocket session", "openenv_ws"),
]


def report(result: dict[str, Any]) -> str:
    floor = result["grpc_echo_floor"]["p50_ms"]
    lines = [f"Machine: {result['machine']}", "", "### Tool-call round trip (interleaved, same call)", "",
             "| path | p50 | p99 | x gRPC floor p50 |", "|---|---:|---:|---:|"]
    for label, key in ROUND_TRIPS:
        if key in result:
            r = result[key]
            lines.append(f"| {label} | {r['p50_ms']:.3f} ms | {r['p99_ms']:.3f} ms | {r['p50_ms'] / floor:.2f} |")
    if "openenv_ws" in result:
        openenv = result["openenv_ws"]["p50_ms"]
        lines += ["", f"openenv-core takes {openenv / result['call_direct_envservice']['p50_ms']:.1f}x as long as "
                      f"a direct route and {openenv / result['call_through_pool']['p50_ms']:.1f}x as long as the pool."]
    rows = [
        ("Reset through the pool (fresh worker)", "reset_through_pool"),
        ("warm Acquire", "warm_acquire"),
        ("Release (clean reset to a fresh worker)", "release"),
        ("fresh hardened docker run until serving", "docker_run_until_serving"),
    ]
    lines += ["", "### Episodes and leases", "", "| path | p50 | p99 |", "|---|---:|---:|"]
    for label, key in rows:
        r = result[key]
        lines.append(f"| {label} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms |")
    reset, cold = result["reset_through_pool"]["p50_ms"], result["docker_run_until_serving"]["p50_ms"]
    lines += ["", f"Reset is {cold / reset:.0f}x faster than a fresh container.", "",
              "| containers | time to all ready |", "|---:|---:|"]
    lines += [f"| {size} | {seconds:.1f} s |" for size, seconds in result["time_to_ready_s"].items()]
    echo = result["aio_echo_throughput_64"]
    lines += ["", "### Throughput", "", "| concurrent sessions | CallTool/s through the pool | x echo "
              "| CallTool/s by direct route | x echo |", "|---:|---:|---:|---:|---:|"]
    direct = result["throughput_direct_calls_per_s"]
    lines += [f"| {n} | {rate:.0f} | {rate / echo:.2f} | {direct[n]:.0f} | {direct[n] / echo:.2f} |"
              for n, rate in result["throughput_calls_per_s"].items()]
    lines += [f"| grpc.aio echo server, 64 callers (x echo = 1) | {echo:.0f} | 1.00 | | |"]
    memory = result["idle_memory_mib"]
    lines += ["", f"Idle memory per container (cgroup): median {memory['median']:.1f} MiB, "
                  f"max {memory['max']:.1f} MiB."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput measurement")
    parser.add_argument("--base", help="base image of the openenv-core image (default: the bootstrapped one)")
    parser.add_argument("--no-openenv", action="store_true", help="skip the openenv-core comparison")
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pool.json").write_text(json.dumps(result, indent=2) + "\n")
    text = report(result)
    (RESULTS / "pool.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
