"""PoolManager's leases, taints, deaths and replacements over the backend interface, without Docker: the backend is
tests/unit/fake_backend.py (real gRPC and session sockets served in this process). Docker's own behaviour is
covered by tests/integration/test_pool.py, test_faults.py and test_capacity.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from envscaler.containers import owners
from envscaler.pool import liveness
from envscaler.pool.backend import StartFailed
from envscaler.pool.failures import StartFailure
from envscaler.pool.lifecycle import SlotState
from envscaler.pool.manager import PoolConfig, PoolError, PoolManager, Slot
from envscaler.pool.routing import Upstream
from envscaler.v1 import env_pb2 as pb
from tests.unit.fake_backend import FakeBackend

CRASH = pb.CallToolResponse(episode_broken=True, error=pb.ToolError(kind=pb.WORKER_CRASHED, message="worker died"))


@pytest.fixture(autouse=True)
def private_locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locks = tmp_path / "locks"
    monkeypatch.setattr(owners, "LOCK_DIR", locks)
    monkeypatch.setattr(liveness, "LOCK_DIR", locks)


@pytest.fixture
def backend(tmp_path: Path) -> FakeBackend:
    root = tmp_path / "sandboxes"
    root.mkdir()
    return FakeBackend(root)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(scenario(), timeout=60)

    asyncio.run(bounded())


@asynccontextmanager
async def running_pool(backend: FakeBackend, size: int = 2, envs: tuple[str, ...] = ("a",),
                       **config: Any) -> AsyncIterator[PoolManager]:
    config.setdefault("fresh_per_lease", False)  # most of these tests follow a container from lease to lease
    manager = PoolManager(backend, PoolConfig(size=size, images={e: f"image-{e}" for e in envs}, **config))
    await manager.start()
    try:
        yield manager
    finally:
        await manager.shutdown()


async def until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.01)


def sandbox_of(backend: FakeBackend, slot: Slot) -> Any:
    return backend.sandboxes[slot.env.name]


def test_warm_slots_are_leased_exclusively_and_come_back_after_release(backend: FakeBackend) -> None:
    async def scenario() -> None:
        async with running_pool(backend, size=2) as manager:
            await until(lambda: manager.ready() == 2, "two warm sandboxes")
            assert {s.labels["envscaler.env-id"] for s in backend.sandboxes.values()} == {"a"}
            assert all(s.labels[liveness.POOL_LABEL] == manager.pool_id for s in backend.sandboxes.values())
            first, _ = await manager.acquire("a")
            second, _ = await manager.acquire("a")
            assert first.slot is not second.slot
            assert first.slot.state is SlotState.LEASED and second.slot.state is SlotState.LEASED
            assert manager.counts()["a"].leased == 2 and manager.counts()["a"].idle == 0
            with pytest.raises(PoolError) as refused:
                await manager.acquire("a", wait=0.2)
            assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "no container of a became free within 0.2 s" in refused.value.message
            # The direct route is the one the server named on its last EndEpisode, in its route directory.
            assert first.slot.route == f"{sandbox_of(backend, first.slot).directory}/route-1"
            await manager.release(first.lease_id)
            assert first.slot.state is SlotState.IDLE
            assert first.slot.route.endswith("/route-2")
            again, _ = await manager.acquire("a", wait=1.0)
            assert again.slot is first.slot
            assert manager.totals["acquired"] == 3 and manager.totals["replaced"] == 0
            assert backend.started == 2

    run(scenario)


def test_acquire_with_a_scenario_resets_it_and_unknown_names_are_refused(backend: FakeBackend) -> None:
    async def scenario() -> None:
        async with running_pool(backend, size=1) as manager:
            lease, reset = await manager.acquire("a", scenario_id="s-1", wait=10)
            assert reset is not None and reset.scenario_id == "s-1"
            with pytest.raises(PoolError) as unknown_env:
                await manager.acquire("nope")
            assert unknown_env.value.code == grpc.StatusCode.NOT_FOUND and "'nope'" in unknown_env.value.message
            await manager.release(lease.lease_id)
            for call in (manager.release(lease.lease_id), manager.renew(lease.lease_id),
                         manager.forward(lease.lease_id, "CallTool", pb.CallToolRequest(name="x"), None)):
                with pytest.raises(PoolError) as gone:
                    await call
                assert gone.value.code == grpc.StatusCode.NOT_FOUND and "unknown lease" in gone.value.message

    run(scenario)


@pytest.mark.parametrize("transport", ["grpc", "session"])
def test_a_crashed_worker_taints_its_sandbox_which_is_replaced_on_release(backend: FakeBackend,
                                                                          transport: str) -> None:
    async def scenario() -> None:
        async with running_pool(backend, size=1) as manager:
            lease, _ = await manager.acquire("a", wait=10)
            slot = lease.slot
            sandbox_of(backend, slot).service.tool_answer = CRASH
            if transport == "grpc":
                answer = await manager.forward(lease.lease_id, "CallTool", pb.CallToolRequest(name="x"), None)
            else:
                upstreams: dict[str, Upstream] = {}
                request = pb.SessionRequest(call_tool=pb.CallToolRequest(name="x"))
                answer = (await manager.forward_session(lease.lease_id, request, "call_tool", "CallTool",
                                                        upstreams)).call_tool
                assert set(upstreams) == {lease.lease_id}
            assert answer.episode_broken
            assert slot.state is SlotState.TAINTED  # still this lease's, until released
            name = slot.env.name
            await manager.release(lease.lease_id)
            assert slot.state in (SlotState.REMOVING, SlotState.GONE)
            await until(lambda: name in backend.removed and slot.id not in manager.slots, "the tainted one removed")
            await until(lambda: manager.ready() == 1, "a replacement")
            assert manager.totals["replaced"] == 1
            assert manager.metrics.replacements.labels(reason="tainted")._value.get() == 1
            again, _ = await manager.acquire("a", wait=10)
            assert again.slot is not slot

    run(scenario)


@pytest.mark.parametrize(("kind", "told"), [("die", "exited"), ("oom", "ran out of memory")])
def test_a_sandbox_that_dies_while_leased_tells_its_holder(backend: FakeBackend, kind: str, told: str) -> None:
    async def scenario() -> None:
        async with running_pool(backend, size=1) as manager:
            lease, _ = await manager.acquire("a", wait=10)
            slot = lease.slot
            backend.kill(slot.env.name, kind)
            await until(lambda: slot.state is SlotState.LOST, "its removal done, its lease kept")
            assert lease.lease_id in manager.leases
            with pytest.raises(PoolError) as dead:
                await manager.forward(lease.lease_id, "CallTool", pb.CallToolRequest(name="x"), None)
            assert dead.value.code == grpc.StatusCode.UNAVAILABLE
            assert dead.value.message == f"the sandbox container of this lease {told}; release this lease and " \
                                         "acquire a new one"
            assert manager.counts()["a"].total <= 1  # a lost slot no longer counts against the size
            await manager.release(lease.lease_id)
            assert slot.id not in manager.slots
            await until(lambda: manager.ready() == 1, "a replacement")
            assert manager.totals["replaced"] == 1
            assert manager.book.reasons[("a", "died_oom" if kind == "oom" else "died")] == 1

    run(scenario)


def test_a_call_in_flight_when_its_sandbox_dies_fails_unavailable_and_taints_nothing_else(
        backend: FakeBackend) -> None:
    async def scenario() -> None:
        async with running_pool(backend, size=1) as manager:
            lease, _ = await manager.acquire("a", wait=10)
            slot = lease.slot
            sandbox_of(backend, slot).service.hold_calls.set()
            call = asyncio.ensure_future(manager.forward(lease.lease_id, "CallTool", pb.CallToolRequest(name="x"),
                                                         None))
            await until(lambda: sandbox_of(backend, slot).service.calls == 1, "the call reached the sandbox")
            backend.kill(slot.env.name, announce=False)  # the call breaks before the engine's event arrives
            with pytest.raises(PoolError) as broken:
                await call
            assert broken.value.code == grpc.StatusCode.UNAVAILABLE
            assert slot.state is SlotState.TAINTED and slot.cause == "its server stopped answering"
            backend.announce(slot.env.name)
            await until(lambda: slot.state is SlotState.LOST, "dead, removed, its lease kept")
            assert slot.cause == "the sandbox container of this lease exited"
            await manager.release(lease.lease_id)
            assert manager.totals["replaced"] == 1

    run(scenario)


def test_an_idle_sandbox_that_dies_is_replaced(backend: FakeBackend) -> None:
    async def scenario() -> None:
        async with running_pool(backend, size=1) as manager:
            await until(lambda: manager.ready() == 1, "warm")
            (slot,) = manager.slots.values()
            backend.kill(slot.env.name)
            await until(lambda: slot.id not in manager.slots, "the dead one dropped")
            await until(lambda: manager.ready() == 1, "a replacement")
            assert backend.started == 2 and manager.totals["replaced"] == 1

    run(scenario)


def test_deaths_missed_while_events_were_down_are_found_by_listing(backend: FakeBackend) -> None:
    async def scenario() -> None:
        async with running_pool(backend, size=1) as manager:
            await until(lambda: manager.ready() == 1, "warm")
            (slot,) = manager.slots.values()
            backend._stop(sandbox_of(backend, slot))  # dies without an event
            for stream in backend.streams:  # the stream breaks; the pool reconnects and lists what runs
                stream.lose()
            await until(lambda: slot.id not in manager.slots, "the silent death found")
            assert manager.totals["replaced"] == 1
            assert manager.metrics.errors.labels(kind="engine_events")._value.get() == 1

    run(scenario)


@pytest.mark.parametrize(("fault", "reason"), [("dirty", "tainted"), ("refuse_end", "unclean_release")])
def test_a_release_the_server_does_not_end_cleanly_replaces_the_sandbox(backend: FakeBackend, fault: str,
                                                                        reason: str) -> None:
    async def scenario() -> None:
        async with running_pool(backend, size=1) as manager:
            lease, _ = await manager.acquire("a", wait=10)
            setattr(sandbox_of(backend, lease.slot).service, fault, True)
            await manager.release(lease.lease_id)
            assert lease.slot.state in (SlotState.REMOVING, SlotState.GONE)
            assert manager.metrics.replacements.labels(reason=reason)._value.get() == 1
            await until(lambda: manager.ready() == 1 and backend.started == 2, "a replacement")

    run(scenario)


def test_a_release_waits_for_a_call_in_flight_and_replaces_a_sandbox_that_never_answers(
        backend: FakeBackend) -> None:
    async def scenario() -> None:
        async with running_pool(backend, size=1, call_timeout=1.0) as manager:
            lease, _ = await manager.acquire("a", wait=10)
            slot = lease.slot
            sandbox_of(backend, slot).service.hold_calls.set()
            call = asyncio.ensure_future(manager.forward(lease.lease_id, "CallTool", pb.CallToolRequest(name="x"),
                                                         None))
            await until(lambda: slot.inflight == 1, "the call in flight")
            await manager.release(lease.lease_id)
            assert slot.state in (SlotState.REMOVING, SlotState.GONE)
            assert slot.cause == "it left a call unanswered past the call's own deadline"
            # Its sandbox is removed under it: the call fails, or is cancelled when the pool closes its channel.
            with pytest.raises((PoolError, asyncio.CancelledError)):
                await call
            assert manager.metrics.replacements.labels(reason="tainted")._value.get() == 1

    run(scenario)


def test_failing_starts_back_off_and_refuse_acquire_with_the_cause(backend: FakeBackend) -> None:
    backend.start_failure = StartFailed("killed", StartFailure("oom", exit_code=137, memory_bytes=64 << 20))

    async def scenario() -> None:
        async with running_pool(backend, size=2) as manager:
            with pytest.raises(PoolError) as refused:
                await manager.acquire("a", wait=10)
            assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
            assert "a: containers are killed for memory (64 MiB): raise --memory-mb" in refused.value.message
            assert manager.book.reasons[("a", "oom")] >= 2 and not manager.slots
            assert manager.stats()["envs"]["a"]["failing"]
            backend.start_failure = None  # the next start (after its backoff) works, and the pool recovers
            await until(lambda: manager.ready() >= 1, "a start after the backoff", timeout=30)
            assert not manager.stats()["envs"]["a"]["failing"]
            lease, _ = await manager.acquire("a", wait=10)
            await manager.release(lease.lease_id)

    run(scenario)


def test_a_death_reported_while_starting_fails_the_start_with_why(backend: FakeBackend) -> None:
    backend.die_while_starting = 1

    async def scenario() -> None:
        async with running_pool(backend, size=1) as manager:
            await until(lambda: manager.book.total("a") == 1, "the failed start recorded")
            assert manager.book.reasons[("a", "exited")] == 1
            assert "exited with status 3 before serving" in manager.last_error["a"]
            await until(lambda: manager.ready() == 1, "a start after the backoff", timeout=20)

    run(scenario)


def test_an_expired_lease_is_reclaimed_and_its_sandbox_reused(backend: FakeBackend) -> None:
    async def scenario() -> None:
        async with running_pool(backend, size=1) as manager:
            lease, _ = await manager.acquire("a", ttl=0.2, wait=10)
            await until(lambda: lease.lease_id not in manager.leases and lease.slot.state is SlotState.IDLE,
                        "reclaimed")
            assert manager.totals["expired"] == 1 and manager.totals["replaced"] == 0

    run(scenario)


def test_an_idle_sandbox_is_evicted_for_a_waiting_environment(backend: FakeBackend) -> None:
    async def scenario() -> None:
        async with running_pool(backend, size=2, envs=("a", "b"), min_idle=0) as manager:
            await until(lambda: manager.ready() == 2, "warm")
            held = [await manager.acquire("a", wait=10) for _ in range(manager.counts()["a"].idle)]
            lease, _ = await manager.acquire("a", wait=10)  # only b's are idle: one is evicted for a
            assert lease.slot.env_id == "a"
            assert manager.totals["replaced"] == 0  # an eviction is not a replacement
            for other, _ in held:
                await manager.release(other.lease_id)

    run(scenario)


def test_shutdown_removes_every_sandbox_even_leased_ones(backend: FakeBackend, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_pool(backend, size=3) as manager:
            await until(lambda: manager.ready() == 3, "warm")
            lease, _ = await manager.acquire("a")
            pool_id = manager.pool_id
            assert (tmp_path / "locks" / f"{pool_id}.lock").exists()
        assert backend.sandboxes == {} and len(backend.removed) == 3
        assert backend.reaped == [liveness.pool_labels(pool_id)]
        assert not (tmp_path / "locks" / f"{pool_id}.lock").exists()
        with pytest.raises(PoolError) as stopping:
            await manager.acquire("a")
        assert stopping.value.code == grpc.StatusCode.UNAVAILABLE
        assert lease.slot.state is SlotState.GONE  # its holder's release changes nothing
        await manager.release(lease.lease_id)

    run(scenario)
