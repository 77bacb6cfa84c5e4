"""What a lessee can and cannot make the pool do with its lease (issue 26 and 27): fresh containers per lease, TTLs
capped at the pool's, a release that waits for an honest call's own deadline, and an Acquire whose caller gives up
before its Reset ends leaving no lease behind. Against the real PoolManager and PoolServicer over real gRPC, on the
in-memory backend (tests/unit/fake_backend.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import grpc.aio
import pytest

from envscaler.pool.lifecycle import SlotState
from envscaler.pool.service import PoolServicer
from envscaler.spec.loader import load_corpus
from envscaler.v1 import env_pb2 as pb
from envscaler.v1 import pool_pb2 as ppb
from envscaler.v1 import pool_pb2_grpc as ppb_grpc
from tests.unit.fake_backend import FakeBackend
from tests.unit.test_pool_manager import run, running_pool, sandbox_of, until


@pytest.fixture
def backend(tmp_path: Path) -> FakeBackend:
    return FakeBackend(tmp_path)


def test_fresh_per_lease_gives_every_lease_a_container_no_one_used_and_warms_the_next(backend: FakeBackend) -> None:
    async def scenario() -> None:
        async with running_pool(backend, size=2, fresh_per_lease=True) as manager:
            seen: list[str] = []
            for _ in range(4):
                lease, _ = await manager.acquire("a", wait=10)
                name = lease.slot.env.name
                assert name not in seen
                seen.append(name)
                await manager.release(lease.lease_id)
                assert lease.slot.state in (SlotState.REMOVING, SlotState.GONE)
            await until(lambda: set(seen) <= set(backend.removed), "every used container removed")
            await until(lambda: manager.ready() == 2, "two fresh ones warm again")
            assert manager.stats()["replaced"] == 0  # a policy, not a failure
            assert manager.totals["retired_after_lease"] == 4

    run(scenario)


def test_a_lease_ttl_asked_for_is_capped_at_the_pools(backend: FakeBackend) -> None:
    async def scenario() -> None:
        async with running_pool(backend, size=1, lease_ttl=60.0) as manager:
            lease, _ = await manager.acquire("a", ttl=46 * 86400.0, wait=10)
            assert lease.ttl == 60.0
            await manager.release(lease.lease_id)
            shorter, _ = await manager.acquire("a", ttl=5.0, wait=10)
            assert shorter.ttl == 5.0

    run(scenario)


def test_a_release_during_an_honest_slow_call_waits_for_it_and_keeps_the_container(backend: FakeBackend) -> None:
    async def scenario() -> None:
        async with running_pool(backend, size=1) as manager:  # recycling: the container must come back
            lease, _ = await manager.acquire("a", wait=10)
            slot = lease.slot
            sandbox_of(backend, slot).service.call_delay = 3.0  # longer than the old 2 s grace, within its deadline
            call = asyncio.ensure_future(manager.forward(lease.lease_id, "CallTool", pb.CallToolRequest(name="x"),
                                                         timeout=8.0))
            await until(lambda: slot.inflight == 1, "the call in flight")
            await manager.release(lease.lease_id)
            assert (await call).observation == "ok"
            assert slot.state is SlotState.IDLE and not slot.cause
            assert manager.stats()["replaced"] == 0

    run(scenario)


def test_an_acquire_whose_reset_outlasts_the_callers_deadline_leaves_no_lease(backend: FakeBackend) -> None:
    """The reproduction from issue 27: a client of pool.proto with a 1 s deadline and a 3 s Reset."""
    backend.reset_delay = 3.0

    async def scenario() -> None:
        async with running_pool(backend, size=1, envs=("env_1",)) as manager:
            await until(lambda: manager.ready() == 1, "a warm container")
            server = grpc.aio.server()
            ppb_grpc.add_PoolServiceServicer_to_server(PoolServicer(manager, load_corpus(None, None)), server)
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    stub = ppb_grpc.PoolServiceStub(channel)
                    with pytest.raises(grpc.aio.AioRpcError) as late:
                        await stub.Acquire(ppb.AcquireRequest(env_id="env_1", scenario_id="0115-091204"), timeout=1.0)
                    assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                # Released as soon as the Reset returns (3 s), not after the lease's TTL (600 s).
                await until(lambda: not manager.leases and manager.totals["acquired"] == 1, "the grant released",
                            timeout=10.0)
            finally:
                await server.stop(None)

    run(scenario)
