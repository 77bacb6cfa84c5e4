"""Teardown between leases, attacked through a real pool that recycles its containers (`pool --recycle`), one
container per environment so that every lease lands on the same one: processes that hide from a /proc parser (a
leader thread that exited, a name that is not UTF-8), a fork bomb whose pids move faster than a sweep reads them, a
lessee's own check that leaves a daemon, and workers renamed after the zygote's readiness check. Each would
outlive its lease, plant files in the next lessee's /tmp and burn its CPU; the next lease finds none of them.
SECURITY.md lists them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from envscaler.containers.hardening import Hardening
from envscaler.pool.runner import LocalPool, PoolOptions

pytestmark = pytest.mark.integration

SURVIVOR_CODE = (Path(__file__).parent / "survivor_env.py").read_text()
RENAMING_CODE = SURVIVOR_CODE.replace("RENAME_WORKERS = False", "RENAME_WORKERS = True")
NOTED = "def check_func(final_state):\n    return final_state['notes'] == ['done']\n"
# A lessee's own check (client checks on) that leaves a daemon: in its own session, holding no descriptor (so its
# check still answers PASS), burning CPU under a marked name.
PLANTING_CHECK = ("import ctypes, os, time\n"
                  "def check_func(final_state):\n"
                  "    if os.fork() == 0:\n"
                  "        try:\n"
                  "            os.setsid()\n"
                  "            if os.fork() == 0:\n"
                  "                os.closerange(0, 4096)\n"
                  "                ctypes.CDLL(None).prctl(15, b'surv-check', 0, 0, 0)\n"
                  "                end = time.monotonic() + 120\n"
                  "                while time.monotonic() < end:\n"
                  "                    pass\n"
                  "        finally:\n"
                  "            os._exit(0)\n"
                  "    return True\n")


@pytest.fixture(scope="module")
def recycled(engine: docker.DockerClient, runtime_image: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPool]:
    folder = tmp_path_factory.mktemp("teardown")
    envs = {env_id: {"env_id": env_id, "env_class_name": "Survivor", "env_class_code": code,
                     "environment_summary": "processes that try to outlive their lease"}
            for env_id, code in (("env_survivor", SURVIVOR_CODE), ("env_renaming", RENAMING_CODE))}
    scenarios = [{"env_id": env_id, "task_id": "t1", "init_config": {"notes": []},
                  "checklist_with_func": [{"check_item": "noted", "check_func": NOTED}]} for env_id in envs]
    (folder / "envs.json").write_text(json.dumps(envs))
    (folder / "scenarios.json").write_text(json.dumps(scenarios))
    options = PoolOptions(size=2, listen=f"unix:/tmp/teardown-pool-{uuid.uuid4().hex[:8]}.sock", acquire_wait=120,
                          lease_ttl=120, fresh_per_lease=False, hardening=Hardening(client_checks=True))
    with LocalPool(envs=folder / "envs.json", scenarios=folder / "scenarios.json", options=options) as local:
        yield local


def _slot(pool: LocalPool, session) -> str:
    assert pool.manager is not None
    return pool.manager.leases[session.lease_id].slot.id


def _next_lease_finds_nothing(pool: LocalPool, env_id: str, slot: str) -> None:
    session = pool.pool.acquire(env_id, "t1", wait=120)
    try:
        assert _slot(pool, session) == slot  # the same container, recycled
        found = session.call("survivors").result
        print("next lease found", found)
        assert found == {"marked": [], "foreign": [], "planted": []}
    finally:
        session.release()


@pytest.mark.parametrize("kind", ["leader_exits", "bad_name", "hydra"])
def test_no_process_of_a_lease_outlives_it(recycled: LocalPool, kind: str) -> None:
    """Left at release: a process whose leader thread exited by the raw exit system call (shown as a zombie while
    its other thread runs), one named with bytes that are not UTF-8, four fork bombs whose pids move on faster than
    a sweep reads them. The kernel ends every process of the sandbox uid, whatever /proc says of it; the server
    verifies that the uid owns nothing before the container is leased again."""
    session = recycled.pool.acquire("env_survivor", "t1", wait=120)
    slot = _slot(recycled, session)
    assert session.call("leave", {"kind": kind, "copies": 4 if kind == "hydra" else 1}).result == kind
    left = session.call("survivors", {"wait": 0.5}).result
    assert left["marked"], left  # the attack runs (the probe would see a survivor)
    session.release()
    _next_lease_finds_nothing(recycled, "env_survivor", slot)


def test_no_process_of_an_episode_outlives_it(recycled: LocalPool) -> None:
    """Between two episodes of one lease the zygote ends what the last one left, hidden the same ways."""
    session = recycled.pool.acquire("env_survivor", "t1", wait=120)
    try:
        for kind in ("leader_exits", "bad_name", "hydra"):
            assert session.call("leave", {"kind": kind}).result == kind
        session.reset("t1")
        found = session.call("survivors").result
        print("next episode found", found)
        assert found == {"marked": [], "foreign": [], "planted": []}
    finally:
        session.release()


def test_a_lessees_own_check_leaves_no_process(recycled: LocalPool) -> None:
    """With client checks on, a lessee's own check leaves a daemon in a session of its own (out of the check's process
    group) in an honest environment: it ends with the lease."""
    session = recycled.pool.acquire("env_survivor", "t1", wait=120)
    slot = _slot(recycled, session)
    evaluation = session.evaluate(checks=[("plants", PLANTING_CHECK)])
    assert [c.outcome for c in evaluation.checks] == ["PASS"], evaluation
    assert session.call("survivors", {"wait": 0.3}).result["marked"]  # it runs
    session.release()
    _next_lease_finds_nothing(recycled, "env_survivor", slot)


def _server_descriptors(engine: docker.DockerClient, pool: LocalPool, slot_id: str) -> int:
    assert pool.manager is not None
    slot = next(s for s in pool.manager.slots.values() if s.id == slot_id)
    script = ("import os\n"
              "for p in os.listdir('/proc'):\n"
              "    if p.isdigit() and b'serve_bundle' in open(f'/proc/{p}/cmdline', 'rb').read():\n"
              "        print(len(os.listdir(f'/proc/{p}/fd')))\n")
    container = engine.containers.get(slot.env.name)
    output = container.exec_run(["/opt/envscaler/bin/python3", "-c", script], user="0").output
    return int(output.split()[0])


def test_workers_renamed_after_the_readiness_check(engine: docker.DockerClient, recycled: LocalPool) -> None:
    """Every worker after the first renames itself, in the zygote's fork hook, with a name that is not UTF-8: each
    Reset still checks the hand-over against the kernel (no INTERNAL, no descriptor kept), and none of them outlives
    the lease."""
    session = recycled.pool.acquire("env_renaming", "t1", wait=120)
    slot = _slot(recycled, session)
    try:
        session.reset("t1")
        before = _server_descriptors(engine, recycled, slot)
        for _ in range(4):
            session.reset("t1")
            assert session.call("note", {"text": "x"}).ok
        after = _server_descriptors(engine, recycled, slot)
        assert after <= before, (before, after)
    finally:
        session.release()
    _next_lease_finds_nothing(recycled, "env_renaming", slot)
