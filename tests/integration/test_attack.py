"""Red-team probes through a real pool of ONE container, so every lease lands on the same one.

Each probe was first written to show a hole in the first isolation design (a zygote that served every lease and was
trusted to clean up and to hand over workers honestly, while it ran environment code); each now asserts the fence
that closed it: a fresh zygote per lease, cleanup before any environment code runs, and the zygote's word checked
against the kernel's. SECURITY.md lists them.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from envscaler.client import EnvClientError
from envscaler.containers.hardening import Hardening
from envscaler.pool.runner import LocalPool, PoolOptions

pytestmark = pytest.mark.integration

ATTACK_CODE = (Path(__file__).parent / "attack_env.py").read_text()
NOTED = "def check_func(final_state):\n    return final_state['notes'] == ['done']\n"
# A check that tries to change what the checks after it compute, then an honest one that must still FAIL.
MEDDLING = [
    ("meddles", "import builtins, os, sys, json\n"
                "def check_func(final_state):\n"
                "    builtins.len = lambda x: 1\n"
                "    final_state['notes'].append('done')\n"
                "    sys.modules['json'].loads = lambda *a, **k: {'outcome': 'PASS'}\n"
                "    if os.fork() == 0:\n"
                "        os.setsid()\n"
                "        import time\n"
                "        for _ in range(200):\n"
                "            for p in os.listdir('/proc'):\n"
                "                if p.isdigit():\n"
                "                    try:\n"
                "                        os.kill(int(p), 19)\n"
                "                    except OSError:\n"
                "                        pass\n"
                "            time.sleep(0.01)\n"
                "        os._exit(0)\n"
                "    return False\n"),
    ("honest fail", "def check_func(final_state):\n    return len(final_state['notes']) == 1 "
                    "and final_state['notes'] == ['done']\n"),
]


@pytest.fixture(scope="module")
def one_container(engine: docker.DockerClient, runtime_image: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPool]:
    folder = tmp_path_factory.mktemp("attack")
    envs = {"env_attack": {"env_id": "env_attack", "env_class_name": "Attack", "env_class_code": ATTACK_CODE,
                           "environment_summary": "red-team probes"}}
    scenarios = [{"env_id": "env_attack", "task_id": "t1", "init_config": {"notes": []},
                  "checklist_with_func": [{"check_item": "noted", "check_func": NOTED}]},
                 {"env_id": "env_attack", "task_id": "t_checks", "init_config": {"notes": []},
                  "checklist_with_func": [{"check_item": item, "check_func": func} for item, func in MEDDLING]}]
    (folder / "envs.json").write_text(json.dumps(envs))
    (folder / "scenarios.json").write_text(json.dumps(scenarios))
    options = PoolOptions(size=1, listen=f"unix:/tmp/attack-pool-{uuid.uuid4().hex[:8]}.sock", acquire_wait=120,
                          lease_ttl=120, fresh_per_lease=False, hardening=Hardening(client_checks=False))
    with LocalPool(envs=folder / "envs.json", scenarios=folder / "scenarios.json", options=options) as local:
        yield local


def _slot(pool: LocalPool, session) -> str:
    assert pool.manager is not None
    return pool.manager.leases[session.lease_id].slot.id


def test_a_fork_hooks_shared_page_dies_with_the_lease(one_container: LocalPool) -> None:
    """Module code registers os.register_at_fork(before=...): in the zygote, after the load-time checks, it maps a
    MAP_SHARED page that every worker of the lease inherits. Lease A writes its client's secret; lease B's zygote is
    a new one, whose page is its own."""
    first = one_container.pool.acquire("env_attack", "t1", wait=120)
    slot = _slot(one_container, first)
    assert first.call("stash", {"secret": "lease A's secret argument"}).result is True
    first.release()
    second = one_container.pool.acquire("env_attack", "t1", wait=120)
    try:
        assert _slot(one_container, second) == slot
        assert second.call("peek").result != "lease A's secret argument"
    finally:
        second.release()


def test_an_unlistable_directory_does_not_survive_the_lease(one_container: LocalPool) -> None:
    """A chmod-000 directory in /tmp and /dev/shm, holding a secret and 60 MiB: the next lease's zygote wipes it
    (chmod before listing) before it loads any environment code; lease B finds nothing, and all the space."""
    first = one_container.pool.acquire("env_attack", "t1", wait=120)
    slot = _slot(one_container, first)
    before = first.call("find_hidden").result
    planted = first.call("hide", {"secret": "from lease A", "fill_mb": 60})
    assert planted.result == {"/tmp": True, "/dev/shm": True}, planted
    first.release()
    second = one_container.pool.acquire("env_attack", "t1", wait=120)
    try:
        assert _slot(one_container, second) == slot
        found = second.call("find_hidden").result
        print("before", before, "after", found)
        assert found["/tmp"] is None and found["/dev/shm"] is None
        assert found["tmp_free_mb"] >= before["tmp_free_mb"] - 1
    finally:
        second.release()


def test_lease_A_cannot_forge_lease_Bs_reset_through_the_control_channel(one_container: LocalPool) -> None:
    """Lease A (a fork hook keeps a copy of the zygote's control socket in each worker) queues on the server's end of
    it a fake reply to the next request, handing over a socket of A's that already holds a reset reply. At the end of
    the lease that channel is closed with its zygote: lease B's Reset is its own."""
    first = one_container.pool.acquire("env_attack", "t1", wait=120)
    slot = _slot(one_container, first)
    forged = json.dumps({"notes": ["written by lease A"]})
    assert first.call("plant_control", {"state": forged}).result == "planted"
    first.release()
    second = one_container.pool.acquire("env_attack", "t1", wait=120)
    try:
        assert _slot(one_container, second) == slot
        assert second.initial is not None and second.initial.state == {"notes": []}
    finally:
        second.release()



def test_lease_A_cannot_answer_lease_Bs_episode_or_forge_its_reward(one_container: LocalPool) -> None:
    """The socket lease A tries to hand over holds replies that fit every request and a result pipe saying PASS:
    none of it reaches lease B, whose tool call and evaluation are its own (reward 0 for a task not done)."""
    first = one_container.pool.acquire("env_attack", "t1", wait=120)
    slot = _slot(one_container, first)
    assert first.call("plant_episode", {"state": json.dumps({"notes": []})}).result == "planted"
    first.release()
    second = one_container.pool.acquire("env_attack", "t1", wait=120)
    try:
        assert _slot(one_container, second) == slot
        called = second.call("note", {"text": "not what the check wants"})
        assert called.ok and called.observation != "forged by lease A"
        evaluation = second.evaluate()
        assert evaluation.reward == 0.0 and [c.outcome for c in evaluation.checks] == ["FAIL"]
    finally:
        with contextlib.suppress(Exception):
            second.release()


def test_a_forged_worker_pid_never_turns_the_servers_CAP_KILL_on_itself(one_container: LocalPool) -> None:
    """The same plant, naming the server's own pid as the 'worker', used within lease A itself (its next Reset) and
    left for lease B: the server checks a handed-over worker against the kernel (a pidfd of that very pid, a child of
    the zygote, of the sandbox's uid) before it would ever signal it. The Reset is refused, the server lives, and the
    container serves the next leases."""
    first = one_container.pool.acquire("env_attack", "t1", wait=120)
    slot = _slot(one_container, first)
    server = first.call("server_pid").result
    assert server > 1
    assert first.call("plant_control", {"state": json.dumps({"notes": []}), "pid": server}).result == "planted"
    with pytest.raises(EnvClientError) as err:
        first.reset("t1")  # the forged hand-over, within the lease that planted it
    assert "did not hand over a worker" in str(err.value)
    first.reset("t1")  # a new zygote for the rest of the lease
    assert first.call("server_pid").result == server
    first.release()
    for _ in range(2):
        second = one_container.pool.acquire("env_attack", "t1", wait=120)
        try:
            assert _slot(one_container, second) == slot  # never lost
            assert second.call("note", {"text": "x"}).ok
        finally:
            second.release()


ZYGOTE_CODE = (Path(__file__).parent / "attack_zygote_env.py").read_text()


@pytest.fixture(scope="module")
def zygote_container(engine: docker.DockerClient, runtime_image: str,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPool]:
    folder = tmp_path_factory.mktemp("attack_zygote")
    envs = {"env_zyg": {"env_id": "env_zyg", "env_class_name": "Zyg", "env_class_code": ZYGOTE_CODE,
                        "environment_summary": "red-team probes on the zygote"}}
    scenarios = [{"env_id": "env_zyg", "task_id": "t1", "init_config": {"notes": []},
                  "checklist_with_func": [{"check_item": "noted", "check_func": NOTED}]}]
    (folder / "envs.json").write_text(json.dumps(envs))
    (folder / "scenarios.json").write_text(json.dumps(scenarios))
    options = PoolOptions(size=1, listen=f"unix:/tmp/attack-pool-{uuid.uuid4().hex[:8]}.sock", acquire_wait=120,
                          lease_ttl=120, fresh_per_lease=False, hardening=Hardening(client_checks=False))
    with LocalPool(envs=folder / "envs.json", scenarios=folder / "scenarios.json", options=options) as local:
        yield local


def test_module_code_that_rewrites_its_zygote_keeps_it_to_its_lease(zygote_container: LocalPool) -> None:
    """Module-level code replaces the zygote's own load checks and cleanup (the zygote is `__main__`) and keeps a
    thread, a shared mapping and a socket pair: it owns its zygote for the lease, but that zygote ends with it, and
    the next one cleans before loading: a plain /tmp file, the shared page and the socket's queue carry nothing of
    lease A's."""
    first = zygote_container.pool.acquire("env_zyg", "t1", wait=120)
    slot = _slot(zygote_container, first)
    planted = first.call("plant", {"secret": "lease A's secret"}).result
    print("planted", planted)
    assert planted["zygote_threads"] >= 2  # the thread load_problems should have refused
    first.release()
    second = zygote_container.pool.acquire("env_zyg", "t1", wait=120)
    try:
        assert _slot(zygote_container, second) == slot
        found = second.call("find").result
        assert found["tmp"] is None
        assert found["shared"] != "lease A's secret" and found["mailbox"] != "lease A's secret"
    finally:
        second.release()


def _blast(route: str, body: bytes, connections: int = 4) -> list[str]:
    import socket
    import struct
    import threading

    results: list[str] = []

    def one() -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(route)
            s.sendall(struct.pack("!I", len(body)) + body)
            s.settimeout(30)
            results.append(repr(s.recv(200)[:60]))
        except OSError as exc:
            results.append(repr(exc))
        finally:
            s.close()

    threads = [threading.Thread(target=one) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_big_frames_on_a_leases_own_route_are_served_one_at_a_time(one_container: LocalPool) -> None:
    """A lease's client sends, on its own direct route, frames just under the 64 MiB cap on the 4 sessions a server
    allows at once (garbage, then a valid CallTool with 60 MiB of arguments), three rounds: frames over 4 MiB are
    read, parsed and answered one at a time, so the server stays within the sandbox's memory and keeps serving."""
    from envscaler.v1 import env_pb2

    garbage = b"\x0a" + b"\xff" * ((60 << 20) - 1)
    valid = env_pb2.SessionRequest(call_tool=env_pb2.CallToolRequest(
        name="note", arguments_json='{"text": "' + "x" * (60 << 20) + '"}')).SerializeToString()
    session = one_container.pool.acquire("env_attack", "t1", wait=120, direct=True)
    slot = _slot(one_container, session)
    alive, rounds = True, 0
    for body in (garbage, valid) * 3:
        rounds += 1
        print("round", rounds, _blast(session.direct_session_socket, body))
        try:
            alive = session.call("note", {"text": "still here?"}).ok
        except EnvClientError as exc:
            print("call after:", exc)
            alive = False
        if not alive:
            break
    with contextlib.suppress(Exception):
        session.release()
    nxt = one_container.pool.acquire("env_attack", "t1", wait=120)
    next_slot = _slot(one_container, nxt)
    nxt.release()
    assert alive and rounds == 6 and next_slot == slot


def test_a_socket_with_an_oob_byte_as_a_checks_channel_cannot_wedge_the_server(zygote_container: LocalPool) -> None:
    """The worker (its evaluate rewritten by module code) hands the server, as a check's result channel, a Unix socket
    holding one out-of-band byte (select() says readable where a blocking read would block forever): a check's
    channel must be a pipe, read without blocking, so that check is ERROR at once and the server goes on."""
    import time

    session = zygote_container.pool.acquire("env_zyg", "t1", wait=120)
    slot = _slot(zygote_container, session)
    assert session.call("note", {"text": "wedge"}).ok
    session.timeout = 8
    started = time.monotonic()
    evaluation = session.evaluate()
    assert time.monotonic() - started < 5
    assert [c.outcome for c in evaluation.checks] == ["ERROR"] and "not a pipe" in evaluation.checks[0].message
    assert session.call("note", {"text": "x"}).ok
    session.release()
    nxt = zygote_container.pool.acquire("env_zyg", "t1", wait=120)
    next_slot = _slot(zygote_container, nxt)
    nxt.release()
    assert next_slot == slot


def test_a_worker_cannot_take_the_zygotes_descriptors(one_container: LocalPool) -> None:
    """Without a fork hook, the zygote's control socket is out of a worker's reach: /proc/<zygote>/fd cannot be listed
    or opened, and pidfd_getfd is refused (non-dumpable, no CAP_SYS_PTRACE)."""
    with one_container.pool.session("env_attack", "t1", wait=120) as session:
        attempts = session.call("zygote_fd_attempts").result
        print(attempts)
        assert attempts["list"] == "PermissionError" and attempts["open"] == "PermissionError"
        assert attempts["pidfd_getfd"] == "Operation not permitted"


def test_a_check_cannot_change_the_next_checks_outcome(one_container: LocalPool) -> None:
    """A scenario check rebinds builtins.len and json.loads, mutates its final_state, and leaves a setsid daemon that
    SIGSTOPs every process it can for 2 s: all in its own process and Landlock domain. The honest check after it
    still FAILs, and the episode goes on."""
    with one_container.pool.session("env_attack", "t_checks", wait=120) as session:
        evaluation = session.evaluate()
        print(evaluation)
        # The meddler's own daemon holds its result channel: that check alone is ERROR; the honest one is FAIL.
        assert [c.outcome for c in evaluation.checks] == ["ERROR", "FAIL"]
        assert session.call("note", {"text": "after"}).ok
        assert session.state().state == {"notes": ["after"]}


def test_a_deep_directory_does_not_survive_the_lease(one_container: LocalPool) -> None:
    """A 1,500-deep directory chain in /tmp (rmtree holds a descriptor per level and fails deep down): the next
    lease's zygote lifts and removes it level by level, without recursion, before it loads any environment code."""
    session = one_container.pool.acquire("env_attack", "t1", wait=120)
    slot = _slot(one_container, session)
    assert session.call("nest", {"depth": 1500}).result == 1500
    session.release()
    nxt = one_container.pool.acquire("env_attack", "t1", wait=120)
    try:
        assert _slot(one_container, nxt) == slot
        assert nxt.call("tmp_depth").result == 0
    finally:
        nxt.release()
