"""The awkward-state corpus through a real pool of hardened containers: identical to EnvScaler's own run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from envscaler.pool.runner import LocalPool, PoolOptions
from tests.fidelity.replay import HERE, corpus, in_process, sandboxed, solutions

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local_pool() -> Iterator[LocalPool]:
    options = PoolOptions(size=3, lease_ttl=120, acquire_wait=120)
    with LocalPool(envs=HERE / "env_metadata.json", scenarios=HERE / "scenarios.json", options=options) as local:
        yield local


def test_every_scenario_replays_identically_through_a_pool(local_pool: LocalPool) -> None:
    fidelity = corpus()
    compared = 0
    for env_id, task_id, calls in solutions():
        expected = in_process(fidelity, env_id, task_id, calls)
        with local_pool.pool.session(env_id, scenario=task_id, wait=120) as session:
            assert session.initial is not None and not session.initial.state_error_kind
            assert sandboxed(session, session.initial.state_sha256, calls) == expected, f"{env_id}/{task_id}"
        assert expected.reward == 1.0
        compared += 1
    assert compared == 6
