"""Clients retry an overloaded pool's refusal within their own deadline (issue 29, backpressure): RESOURCE_EXHAUSTED
with `grpc-retry-pushback-ms` is asked again after that long; without the hint, or when the hint would outlast the
caller's deadline, the refusal is the caller's at once. The Acquire carries the caller's own deadline (no padding,
issue 27). The real clients (Python blocking and asyncio, Node.js) against a real gRPC server on a real socket that
refuses twice and then grants."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from envscaler.client.errors import EnvClientError
from envscaler.client.pool_client import AsyncPool, Pool
from envscaler.v1 import pool_pb2 as ppb
from envscaler.v1 import pool_pb2_grpc as ppb_grpc
from tests.conftest import ROOT


@dataclass
class Attempt:
    at: float
    time_remaining: float | None
    wait_ms: int


@dataclass
class Overloaded(ppb_grpc.PoolServiceServicer):
    """Refuses the first `refusals` Acquires as the pool's Reset admission does, then grants."""

    refusals: int = 2
    pushback_ms: str | None = "100"
    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def Acquire(self, request: ppb.AcquireRequest, context: Any) -> ppb.Lease:
        with self.lock:
            self.attempts.append(Attempt(time.monotonic(), context.time_remaining(), request.wait_ms))
            refused = len(self.attempts) <= self.refusals
        if refused:
            if self.pushback_ms is not None:
                context.set_trailing_metadata((("grpc-retry-pushback-ms", self.pushback_ms),))
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "the pool is overloaded: 1 Resets run at once and 3 "
                                                              "more wait; retry in 0.1 s")
        return ppb.Lease(lease_id="granted", env_id=request.env_id)


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[grpc.Server] = []

    def start(servicer: Overloaded) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        ppb_grpc.add_PoolServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"tcp:127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(None)


def gaps(attempts: list[Attempt]) -> list[float]:
    return [b.at - a.at for a, b in itertools.pairwise(attempts)]


def test_the_blocking_client_retries_twice_after_the_pushback_and_is_granted(serve: Any) -> None:
    servicer = Overloaded()
    with Pool(serve(servicer), transport="stream") as pool:
        session = pool.acquire("env_1", wait=5.0)
    assert session.lease_id == "granted" and len(servicer.attempts) == 3
    assert all(gap >= 0.1 for gap in gaps(servicer.attempts))  # the pool's hint is honoured
    first, *later = servicer.attempts
    # The caller's wait is the deadline carried: no padding; each retry carries what is left of it.
    assert first.time_remaining is not None and 4.0 < first.time_remaining <= 5.0
    assert first.wait_ms <= 5000
    assert all(a.time_remaining is not None and a.time_remaining <= 5.0 for a in later)
    assert first.wait_ms > later[0].wait_ms > later[1].wait_ms  # what is left of the wait, not the wait again


def test_the_asyncio_client_retries_twice_after_the_pushback_and_is_granted(serve: Any) -> None:
    servicer = Overloaded()
    address = serve(servicer)

    async def acquire() -> str:
        async with AsyncPool(address, transport="stream") as pool:
            return (await pool.acquire("env_1", wait=5.0)).lease_id

    assert asyncio.run(acquire()) == "granted" and len(servicer.attempts) == 3
    assert all(gap >= 0.1 for gap in gaps(servicer.attempts))
    assert servicer.attempts[0].time_remaining is not None and servicer.attempts[0].time_remaining <= 5.0


def test_without_a_wait_the_clients_timeout_is_the_deadline(serve: Any) -> None:
    servicer = Overloaded(refusals=0)
    with Pool(serve(servicer), timeout=7.0, transport="stream") as pool:
        pool.acquire("env_1")
    (attempt,) = servicer.attempts
    assert attempt.time_remaining is not None and 6.0 < attempt.time_remaining <= 7.0
    assert attempt.wait_ms == 0  # the pool's own default wait, bounded by that deadline


def test_a_refusal_without_a_pushback_is_not_retried(serve: Any) -> None:
    """The pool's "no container became free within your wait": the caller's wait is spent; nothing to retry."""
    servicer = Overloaded(pushback_ms=None)
    with Pool(serve(servicer), transport="stream") as pool, pytest.raises(EnvClientError) as refused:
        pool.acquire("env_1", wait=5.0)
    assert refused.value.code == "RESOURCE_EXHAUSTED" and len(servicer.attempts) == 1


def test_a_pushback_longer_than_the_deadline_left_is_the_callers_at_once(serve: Any) -> None:
    servicer = Overloaded(pushback_ms="10000")
    started = time.monotonic()
    with Pool(serve(servicer), transport="stream") as pool, pytest.raises(EnvClientError) as refused:
        pool.acquire("env_1", wait=2.0)
    assert refused.value.code == "RESOURCE_EXHAUSTED" and "retry in" in refused.value.details
    assert len(servicer.attempts) == 1 and time.monotonic() - started < 2.0


def test_the_node_client_retries_twice_after_the_pushback_and_is_granted(serve: Any) -> None:
    node_client = ROOT / "client" / "node"
    if shutil.which("node") is None or not (node_client / "node_modules" / "@grpc" / "grpc-js").exists():
        pytest.skip("needs node and client/node's packages (./dev setup installs them)")
    servicer = Overloaded()
    address = serve(servicer)
    script = (f"const {{ Pool }} = require({json.dumps(str(node_client / 'pool_client.js'))});\n"
              f"const pool = new Pool({json.dumps(address)});\n"
              "pool.acquire('env_1', { waitSeconds: 5 }).then((s) => { console.log(s.leaseId); pool.close(); },\n"
              "  (e) => { console.error(e.message); process.exit(1); });\n")
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "granted" and len(servicer.attempts) == 3
    assert all(gap >= 0.1 for gap in gaps(servicer.attempts))
    first = servicer.attempts[0]
    assert first.time_remaining is not None and 4.0 < first.time_remaining <= 5.0  # no padding


def test_the_node_client_does_not_retry_a_refusal_without_a_pushback(serve: Any) -> None:
    node_client = ROOT / "client" / "node"
    if shutil.which("node") is None or not (node_client / "node_modules" / "@grpc" / "grpc-js").exists():
        pytest.skip("needs node and client/node's packages (./dev setup installs them)")
    servicer = Overloaded(pushback_ms=None)
    script = (f"const {{ Pool }} = require({json.dumps(str(node_client / 'pool_client.js'))});\n"
              f"const pool = new Pool({json.dumps(serve(servicer))});\n"
              "pool.acquire('env_1', { waitSeconds: 5 }).then(() => process.exit(0),\n"
              "  (e) => { console.error(e.message); process.exit(1); });\n")
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and done.stderr.startswith("Acquire: RESOURCE_EXHAUSTED: the pool is overloaded")
    assert len(servicer.attempts) == 1
