"""Load: 64 concurrent sessions doing mixed calls for a fixed time against a pool of
64 run as its own process. Zero errors, flat memory; throughput is reported."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import docker
import grpc
import pytest

from envscaler.client import EnvClientError
from envscaler.client.pool_client import AsyncPool, Pool
from envscaler.pool.liveness import POOL_LABEL
from tests.conftest import SOLUTIONS

pytestmark = pytest.mark.integration
SESSIONS = 64
SECONDS = float(os.environ.get("ENVSCALER_LOAD_SECONDS", "15"))
# The test's own deadline follows the run it is asked for: warm-up (up to 240 s) + the run + drain and checks.
TIMEOUT = max(300.0, SECONDS + 420.0)


def memory_of(containers: list) -> list[int]:
    """Each container's memory use from its cgroup (v1 or v2)."""
    usage = []
    for container in containers:
        for path in (Path(f"/sys/fs/cgroup/memory/docker/{container.id}/memory.usage_in_bytes"),
                     Path(f"/sys/fs/cgroup/system.slice/docker-{container.id}.scope/memory.current")):
            with contextlib.suppress(OSError):
                usage.append(int(path.read_text()))
                break
    return usage


def wait_until_warm(address: str, size: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(EnvClientError, grpc.RpcError), Pool(address, timeout=5) as pool:
            stats = pool.stats()
            if sum(e.idle for e in stats.envs) == size:
                return
        time.sleep(1)
    raise AssertionError(f"the pool did not warm {size} containers in {timeout:g} s")


async def worker(pool: AsyncPool, solution: Path, until: float, counts: dict[str, int]) -> None:
    env_id, task_id = solution.stem.split("__")
    calls = [json.loads(line) for line in solution.read_text().splitlines()]
    async with pool.session(env_id, wait=120) as session:
        while time.monotonic() < until:
            await session.reset(task_id)
            for call in calls:
                result = await session.call(call["name"], call["arguments"])
                counts["calls"] += 1
                counts["errors"] += not result.ok
            await session.state()
            evaluation = await session.evaluate()
            counts["episodes"] += 1
            counts["errors"] += evaluation.reward != 1.0


async def drive(address: str, seconds: float) -> dict[str, int]:
    counts = {"calls": 0, "episodes": 0, "errors": 0}
    solutions = sorted(SOLUTIONS.glob("*.jsonl"))
    async with AsyncPool(address) as pool:
        until = time.monotonic() + seconds
        await asyncio.gather(*(worker(pool, solutions[i % len(solutions)], until, counts) for i in range(SESSIONS)))
    return counts


@pytest.mark.timeout(TIMEOUT)
def test_64_concurrent_sessions(engine: docker.DockerClient, example_images: dict[str, str],
                                tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]) -> None:
    sock = tmp_path_factory.mktemp("load") / "pool.sock"
    process = subprocess.Popen([sys.executable, "-m", "envscaler.cli", "pool", "--size", str(SESSIONS), "--listen",
                                f"unix:{sock}", "--metrics-listen", ""], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    pool_id = ""
    try:
        wait_until_warm(f"unix:{sock}", SESSIONS, timeout=240)
        containers = engine.containers.list(ignore_removed=True, filters={"label": POOL_LABEL})
        pool_id = containers[0].labels[POOL_LABEL]
        before = memory_of(containers)
        started = time.monotonic()
        counts = asyncio.run(drive(f"unix:{sock}", SECONDS))
        elapsed = time.monotonic() - started
        after = memory_of(engine.containers.list(ignore_removed=True, filters={"label": POOL_LABEL}))
        with capsys.disabled():
            print(f"\nload: {SESSIONS} sessions for {elapsed:.1f} s: {counts['calls']} calls "
                  f"({counts['calls'] / elapsed:.0f}/s), {counts['episodes']} episodes, {counts['errors']} errors; "
                  f"container memory median {statistics.median(before) / 2**20:.1f} -> "
                  f"{statistics.median(after) / 2**20:.1f} MiB")
        assert counts["errors"] == 0
        assert counts["episodes"] >= SESSIONS
        assert statistics.median(after) < statistics.median(before) * 1.25 + (4 << 20)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    assert engine.containers.list(ignore_removed=True, all=True, filters={"label": f"{POOL_LABEL}={pool_id}"}) == []
