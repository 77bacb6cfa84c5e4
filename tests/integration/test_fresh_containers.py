"""A fresh container per lease, the default (issue 26): through a real pool, every lease's container is one no lease
used before, as the engine sees it, and the pool keeps one warm ahead so the next Acquire does not wait for a start."""

from __future__ import annotations

import docker

from envscaler.pool.liveness import POOL_LABEL
from envscaler.pool.runner import LocalPool, PoolOptions


def test_every_lease_gets_a_container_no_one_used(engine: docker.DockerClient, example_images: dict[str, str]) -> None:
    with LocalPool(options=PoolOptions(size=2, only=["env_1"], acquire_wait=120)) as local:
        assert local.manager is not None
        used: list[str] = []
        for _ in range(3):
            with local.pool.session("env_1", "0115-091204", wait=120) as session:
                assert session.call("find_member_by_name", {"name": "Ana Ruiz"}).ok
                running = {c.name for c in engine.containers.list(ignore_removed=True,
                    filters={"label": f"{POOL_LABEL}={local.manager.pool_id}"})}
                leased = [slot.env.name for slot in list(local.manager.slots.values())
                          if slot.state.value == "leased"]
                assert len(leased) == 1
                assert leased[0] not in used
                used.append(leased[0])
                assert leased[0] in running  # as the engine sees it
        assert local.manager.totals["retired_after_lease"] == 3
        assert local.manager.stats()["replaced"] == 0
