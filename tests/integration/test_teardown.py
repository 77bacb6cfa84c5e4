"""Teardown between leases, attacked through a real pool that recycles its containers (`pool --recycle`), one
container per environment so that every lease lands on the same one: processes that hide from a /proc parser (a
leader thread that exited, a name that is not UTF-8), a fork bomb whose pids move faster than a sweep reads them, a
lessee's own check that leaves a daemon, and workers renamed after the zygote's readiness check. Each would
outlive its lease, plant files in the next lessee's /tmp and burn its CPU; the next lease finds none of them.
SECURITY.md lists them."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from envscaler.client.errors import EnvClientError
from envscaler.containers.hardening import Hardening
from envscaler.pool.runner import LocalPool, PoolOptions
from envscaler.protocol import episode_channel, framing
from envscaler.v1 import env_pb2 as pb

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


# Lessees that would retire healthy containers (a denial of service against the pool): each container stays in the
# pool, recycled, and serves the next lease.

def _replaced(pool: LocalPool) -> int:
    return pool.pool.stats().replaced


def test_a_release_during_a_long_honest_direct_call_keeps_the_container(recycled: LocalPool) -> None:
    """A 7 s honest call on the lessee's direct route (unseen by the pool) while the lease is released: EndEpisode
    does not wait for it past the pool's limit (5 s), so the container is not retired; the call fails at once."""
    replaced = _replaced(recycled)
    session = recycled.pool.acquire("env_survivor", "t1", wait=120, direct=True)
    slot = _slot(recycled, session)
    assert session.direct is not None
    failed: list[BaseException] = []

    def long_call() -> None:
        try:
            session.call("work", {"seconds": 7.0})
        except BaseException as exc:  # cut short by the release: any failure is fine, a hang is not
            failed.append(exc)

    caller = threading.Thread(target=long_call)
    caller.start()
    time.sleep(1.0)
    direct = session.direct
    session.direct = None  # release through the pool while the direct call runs
    session.release()
    caller.join(30)
    assert not caller.is_alive()
    direct.close()
    assert _replaced(recycled) == replaced
    _next_lease_finds_nothing(recycled, "env_survivor", slot)


def _channel_call_with_a_report(route: str, episode_id: str, tool: str, arguments: str) -> None:
    """On the lessee's own route: open an episode channel, start `tool` on it, then claim on the session's own
    connection that the call overran a deadline as long as the server's own (the server answers)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as chan, \
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as own:
        chan.connect(route)
        chan.sendall(episode_channel.open_request(episode_id))
        opened = episode_channel.opened(framing.FrameReader(chan).read())
        assert isinstance(opened, episode_channel.Opened), opened
        request = pb.CallToolRequest(episode_id=episode_id, name=tool, arguments_json=arguments)
        chan.sendall(framing.frame(pb.SessionRequest(call_tool=request)))
        time.sleep(0.5)
        own.connect(route)
        own.sendall(framing.frame(episode_channel.failure_report(request, pb.DEADLINE_EXCEEDED,
                                                                 opened.call_timeout + 1)))
        framing.set_timeouts(own, 30)
        answer = pb.SessionResponse.FromString(bytes(framing.FrameReader(own).read()))
    assert answer.WhichOneof("response") == "episode_channel", answer


def test_a_false_deadline_report_on_a_busy_honest_worker_retires_nothing(recycled: LocalPool) -> None:
    """A lessee claims that its channel call overran the server's own deadline while the worker is busy in an
    honest 4 s call: the server asks the worker itself, under its own call deadline, and the worker answers once
    the call ends. The episode ends (as the caller asked), the container is not retired."""
    replaced = _replaced(recycled)
    session = recycled.pool.acquire("env_survivor", "t1", wait=120, direct=True)
    slot = _slot(recycled, session)
    try:
        _channel_call_with_a_report(session.direct_session_socket, session.episode_id, "work", '{"seconds": 4}')
        with pytest.raises(EnvClientError, match="broken"):
            session.call("note", {"text": "x"})
        session.reset("t1")
        assert session.call("note", {"text": "x"}).ok
    finally:
        session.release()
    assert _replaced(recycled) == replaced
    _next_lease_finds_nothing(recycled, "env_survivor", slot)


def test_a_worker_stuck_past_the_servers_own_deadline_is_still_judged(recycled: LocalPool) -> None:
    """The same report on a worker that is really stuck: it does not answer by the server's own call deadline,
    counted by the server's clock from the call's arrival (so the report's answer waits that long), and the release
    says the sandbox is dirty: the pool replaces the container (the check is not toothless)."""
    session = recycled.pool.acquire("env_survivor", "t1", wait=120, direct=True)
    slot_id = _slot(recycled, session)
    try:
        _channel_call_with_a_report(session.direct_session_socket, session.episode_id, "hang", "{}")
    finally:
        session.release()
    assert recycled.manager is not None
    slot = recycled.manager.slots.get(slot_id)
    assert slot is None or slot.state == "removing"
