"""Faults: containers killed mid-call again and again, containers that stop
answering, and the engine itself going away. No call hangs past its deadline, no
lease leaks, and the pool returns to its size.

The kill loop runs ENVSCALER_FAULT_KILLS times (25 in the suite); the soak is
`ENVSCALER_FAULT_KILLS=200 ./dev test tests/integration/test_faults.py`.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from envscaler.client import EnvClientError
from envscaler.client.models import ToolResult
from envscaler.client.pool_client import PoolSession
from envscaler.pool.runner import LocalPool, PoolOptions
from tests.integration.conftest import hostile_corpus
from tests.integration.engine_proxy import EngineProxy

pytestmark = pytest.mark.integration
KILLS = int(os.environ.get("ENVSCALER_FAULT_KILLS", "25"))
KILL_TIMEOUT = max(300.0, 12.0 * KILLS)  # the suite's 300 s fits 25 kills; a soak gets as long in proportion


def write_hostile_corpus(folder: Path) -> tuple[Path, Path]:
    corpus = hostile_corpus()
    (folder / "envs.json").write_text(json.dumps({"env_hostile": corpus.envs["env_hostile"].model_dump(mode="json")}))
    (folder / "scenarios.json").write_text(json.dumps(
        [s.model_dump(mode="json") for s in corpus.scenarios["env_hostile"].values()]))
    return folder / "envs.json", folder / "scenarios.json"


@pytest.fixture(scope="module")
def fault_pool(engine: docker.DockerClient, hostile_image: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPool]:
    envs, scenarios = write_hostile_corpus(tmp_path_factory.mktemp("faults"))
    with LocalPool(envs=envs, scenarios=scenarios, options=PoolOptions(size=2, acquire_wait=60)) as local:
        yield local


def wait_for_size(local: LocalPool, size: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if local.manager.ready() == size and local.pool.stats().containers == size:
            return
        time.sleep(0.1)
    raise AssertionError(f"the pool did not return to {size} ready containers: {local.manager.stats()}")


def timed_spin(session: PoolSession, outcome: dict[str, object]) -> None:
    started = time.monotonic()
    try:
        outcome["result"] = session.call("spin", timeout=5.0)
    except EnvClientError as exc:
        outcome["error"] = exc
    outcome["seconds"] = time.monotonic() - started


@pytest.mark.timeout(KILL_TIMEOUT)
def test_containers_killed_mid_call(fault_pool: LocalPool, engine: docker.DockerClient) -> None:
    pool = fault_pool.pool
    replaced = pool.stats().replaced
    for _ in range(KILLS):
        session = pool.acquire("env_hostile", "t1", wait=60)
        slot = fault_pool.manager.leases[session.lease_id].slot
        outcome: dict[str, object] = {}
        call = functools.partial(timed_spin, session, outcome)
        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(0.1)
        engine.containers.get(slot.env.container.id).kill()
        caller.join(timeout=10)
        assert not caller.is_alive(), "a call hung past its deadline"
        assert outcome["seconds"] < 6.0
        error = outcome.get("error")
        result = outcome.get("result")
        assert (isinstance(error, EnvClientError) and error.code == "UNAVAILABLE") or \
            (isinstance(result, ToolResult) and result.episode_broken), outcome
        session.release()
    wait_for_size(fault_pool, 2)
    stats = pool.stats()
    assert stats.replaced >= replaced + KILLS
    assert sum(e.leased for e in stats.envs) == 0 and not fault_pool.manager.leases


def test_a_frozen_container_times_out_and_is_replaced(fault_pool: LocalPool, engine: docker.DockerClient) -> None:
    pool = fault_pool.pool
    replaced = pool.stats().replaced
    session = pool.acquire("env_hostile", "t1", wait=60)
    container = engine.containers.get(fault_pool.manager.leases[session.lease_id].slot.env.container.id)
    container.pause()
    try:
        session.timeout = 2.0
        started = time.monotonic()
        with pytest.raises(EnvClientError) as err:
            session.call("note", {"text": "x"})
        assert time.monotonic() - started < 3.0
        assert err.value.code == "DEADLINE_EXCEEDED"
        time.sleep(1.5)  # still frozen past the deadline and the pool's grace: it stopped answering
    finally:
        container.unpause()
        session.timeout = 30.0
        session.release()
    wait_for_size(fault_pool, 2)
    assert pool.stats().replaced == replaced + 1


def test_losing_the_engine(engine: docker.DockerClient, hostile_image: str, tmp_path_factory: pytest.TempPathFactory,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Sessions go on without the engine; deaths it could not report are found when it is back."""
    folder = tmp_path_factory.mktemp("engine")
    proxy = EngineProxy(folder / "docker.sock")
    envs, scenarios = write_hostile_corpus(folder)
    monkeypatch.setenv("DOCKER_HOST", proxy.base_url)
    try:
        with LocalPool(envs=envs, scenarios=scenarios, options=PoolOptions(size=2, acquire_wait=60)) as local:
            monkeypatch.delenv("DOCKER_HOST")
            with local.pool.session("env_hostile", "t1") as session:
                victim = local.pool.acquire("env_hostile", "t1", wait=30)
                victim_id = local.manager.leases[victim.lease_id].slot.env.container.id
                proxy.sever()
                assert session.call("note", {"text": "during the outage"}).ok
                engine.containers.get(victim_id).kill()  # a death the pool cannot hear about
                with pytest.raises(EnvClientError, match="UNAVAILABLE"):
                    victim.call("note", {"text": "x"})
                victim.release()
                time.sleep(2.0)
                assert session.call("note", {"text": "still going"}).ok
                proxy.restore()
            wait_for_size(local, 2, timeout=90)
            assert local.manager.metrics.errors.labels(kind="engine_events")._value.get() >= 1
            assert local.manager.totals["replaced"] >= 1
    finally:
        proxy.restore()  # let the pool's own shutdown reach the engine
        proxy.close()
