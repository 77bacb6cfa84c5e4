"""The pool's peer check covers every lease's route (issue 26, item 4): a container whose next route is not its
server's is never handed out. The real PoolManager on the in-memory backend (tests/unit/fake_backend.py)."""

from __future__ import annotations

from pathlib import Path

from envscaler.pool.lifecycle import SlotState
from tests.unit.fake_backend import FakeBackend
from tests.unit.test_pool_manager import run, running_pool, until


def test_a_container_whose_next_route_fails_the_peer_check_is_retired(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)

    async def scenario() -> None:
        async with running_pool(backend, size=1) as manager:
            lease, _ = await manager.acquire("a", wait=10)
            first = lease.slot
            assert Path(first.route).parent == backend.sandboxes[first.env.name].directory
            backend.untrusted_routes = True
            await manager.release(lease.lease_id)
            assert first.state in (SlotState.REMOVING, SlotState.GONE)
            assert "failed the peer check" in first.cause and "not the server's uid" in first.cause
            backend.untrusted_routes = False
            await until(lambda: manager.ready() == 1, "a new container warm")
            again, _ = await manager.acquire("a", wait=10)
            assert again.slot is not first

    run(scenario)


def test_a_container_whose_first_route_fails_the_peer_check_never_serves(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    backend.untrusted_routes = True

    async def scenario() -> None:
        async with running_pool(backend, size=1) as manager:
            await until(lambda: backend.started >= 1 and manager.failures.get("a", 0) >= 1, "a failed start")
            assert manager.ready() == 0
            assert "route is not its server's" in manager.last_error["a"]

    run(scenario)
