"""Hostile environments against a live pool: every attack gets a clear error kind,
the pool stays healthy and serves the next session, the host is untouched.

The table in SECURITY.md lists these attacks and the outcomes asserted here.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from envscaler.client import EnvClientError
from envscaler.client.env_client import call_request
from envscaler.client.pool_client import Pool, PoolSession
from envscaler.client.session_socket import SocketSession
from envscaler.containers.hardening import Hardening
from envscaler.pool.runner import LocalPool, PoolOptions
from envscaler.protocol import framing
from envscaler.protocol.addresses import session_socket_path
from envscaler.spec.loader import bundled_envs_path, bundled_scenarios_path
from envscaler.v1 import env_pb2, pool_pb2
from tests.conftest import SOLUTIONS
from tests.integration.conftest import hostile_corpus

pytestmark = pytest.mark.integration

HOST_SECRET = "envscaler-host-secret-4f1d"


@pytest.fixture(scope="module")
def hostile_pool(engine: docker.DockerClient, example_images: dict[str, str],
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPool]:
    folder = tmp_path_factory.mktemp("hostile")
    envs = {"env_1": json.loads(bundled_envs_path().read_text())["env_1"]}
    scenarios = [s for s in json.loads(bundled_scenarios_path().read_text()) if s["env_id"] == "env_1"]
    corpus = hostile_corpus()
    envs["env_hostile"] = corpus.envs["env_hostile"].model_dump(mode="json")
    scenarios += [s.model_dump(mode="json") for s in corpus.scenarios["env_hostile"].values()]
    (folder / "envs.json").write_text(json.dumps(envs))
    (folder / "scenarios.json").write_text(json.dumps(scenarios))
    os.environ["ENVSCALER_HOST_SECRET"] = HOST_SECRET  # must never be visible inside a sandbox
    # Client checks on, to attack through them too (a pool turns them off by default).
    # Recycling containers: what one lease leaves must not reach the next in the same container (the weaker mode;
    # a fresh container per lease is the default).
    options = PoolOptions(size=3, acquire_wait=90, lease_ttl=120, hardening=Hardening(client_checks=True),
                          fresh_per_lease=False)
    with LocalPool(envs=folder / "envs.json", scenarios=folder / "scenarios.json", options=options) as local:
        yield local


@pytest.fixture
def hostile(hostile_pool: LocalPool) -> Iterator[PoolSession]:
    with hostile_pool.pool.session("env_hostile", "t1", wait=90) as session:
        yield session
    assert_pool_healthy(hostile_pool.pool)


def assert_pool_healthy(pool: Pool) -> None:
    """The next session of a well-behaved environment still solves its scenario."""
    path = SOLUTIONS / "env_1__0115-140512.jsonl"
    with pool.session("env_1", "0115-140512", wait=90) as session:
        for line in path.read_text().splitlines():
            call = json.loads(line)
            assert session.call(call["name"], call["arguments"]).ok
        assert session.evaluate().reward == 1.0


def test_secrets_of_the_host_are_out_of_reach(hostile: PoolSession, tmp_path: Path) -> None:
    canary = tmp_path / "host-canary"
    canary.write_text("host only")
    for path in ("/var/run/docker.sock", "/run/docker.sock", str(canary), "/root/.docker/config.json"):
        result = hostile.call("read_file", {"path": path})
        assert result.error_kind == "TOOL_EXCEPTION", path
        assert "No such file" in result.error_message or "Permission denied" in result.error_message
    environ = hostile.call("read_file", {"path": "/proc/1/environ"})
    assert HOST_SECRET not in environ.observation
    assert canary.read_text() == "host only"


@pytest.mark.parametrize(("host", "port"), [
    ("127.0.0.1", 50051),   # the pool's usual port, on the sandbox's own loopback
    ("172.17.0.1", 2375),  # the host's bridge and the engine's TCP port
    ("1.1.1.1", 53),
])
def test_no_way_out(hostile: PoolSession, host: str, port: int) -> None:
    result = hostile.call("connect_out", {"host": host, "port": port})
    # Landlock refuses any TCP connect from a worker (permission denied); without it, no network does.
    assert result.error_kind == "TOOL_EXCEPTION"
    assert any(m in result.error_message.lower() for m in ("permission denied", "refused", "unreachable"))


def test_no_dns(hostile: PoolSession) -> None:
    assert "gaierror" in hostile.call("resolve", {"name": "pypi.org"}).error_message


def test_no_privileges(hostile: PoolSession) -> None:
    identity = hostile.call("whoami").result
    # Environment code runs under a uid of its own (the server's is 10001), with no capability at all.
    assert identity["uid"] == 10002 and int(identity["cap_eff"], 16) == 0 and int(identity["cap_bnd"], 16) == 0
    assert identity["no_new_privs"] == "1"
    assert "PermissionError" in hostile.call("become_root").error_message
    for path in ("/etc/passwd", "/opt/envscaler/bin/envscaler-runtime", "/evil"):
        denied = hostile.call("write_root", {"path": path})
        assert denied.error_kind == "TOOL_EXCEPTION"
        assert "Read-only file system" in denied.error_message or "Permission denied" in denied.error_message


def test_fork_bomb(hostile: PoolSession) -> None:
    result = hostile.call("fork_bomb", timeout=5)
    assert result.error_kind in ("TOOL_EXCEPTION", "DEADLINE_EXCEEDED")
    assert "Resource temporarily unavailable" in result.error_message or result.episode_broken
    hostile.reset("t1")
    assert hostile.call("note", {"text": "done"}).ok


def test_memory_bomb(hostile: PoolSession) -> None:
    result = hostile.call("memory_bomb", timeout=10)
    assert result.error_kind == "TOOL_EXCEPTION" and "MemoryError" in result.error_message
    assert hostile.call("note", {"text": "after"}).ok  # the episode survives


def test_cpu_spin_hits_the_deadline(hostile: PoolSession) -> None:
    started = time.monotonic()
    result = hostile.call("spin", timeout=1.0)
    assert time.monotonic() - started < 2.0
    assert result.error_kind == "DEADLINE_EXCEEDED" and result.episode_broken


def test_huge_result_and_deep_recursion(hostile: PoolSession) -> None:
    assert hostile.call("huge_result").error_kind == "RESULT_TOO_LARGE"
    recursion = hostile.call("recurse")
    assert recursion.error_kind == "TOOL_EXCEPTION" and "RecursionError" in recursion.error_message


def test_filling_the_tmpfs(hostile: PoolSession) -> None:
    result = hostile.call("fill_tmp", timeout=20)
    assert result.error_kind == "TOOL_EXCEPTION" and "No space left" in result.error_message


def test_the_socket_directory_is_sealed(hostile_pool: LocalPool, hostile: PoolSession) -> None:
    """The one host path a sandbox sees: it can neither write there (the host's disk) nor replace the server's
    sockets with its own (to answer the next lease's connections)."""
    assert hostile_pool.manager is not None
    slot = hostile_pool.manager.leases[hostile.lease_id].slot
    assert slot.env is not None
    result = hostile.call("fill_dir", {"where": "/run/envscaler"}, timeout=20)
    assert result.error_kind == "TOOL_EXCEPTION" and "Permission denied" in result.error_message
    for name in ("env.sock", "env.session.sock"):
        hijack = hostile.call("replace_socket", {"path": f"/run/envscaler/{name}"})
        assert hijack.error_kind == "TOOL_EXCEPTION" and "Permission denied" in hijack.error_message
    assert not [p for p in slot.env.socket_dir.iterdir() if p.is_file()]
    assert hostile.call("note", {"text": "still served"}).ok


def test_infinite_loop_in_a_check(hostile_pool: LocalPool) -> None:
    with hostile_pool.pool.session("env_hostile", "t_loop", wait=90) as session:
        session.call("note", {"text": "done"})
        session.timeout = 60
        evaluation = session.evaluate()
        assert [c.outcome for c in evaluation.checks] == ["PASS", "ERROR"]
        assert "overran" in evaluation.checks[1].message and evaluation.reward == 0.5


def test_signalling_the_zygote_or_the_server_is_refused(hostile: PoolSession) -> None:
    for tool in ("kill_parent", "kill_server"):
        result = hostile.call(tool, timeout=10)
        assert result.error_kind == "TOOL_EXCEPTION" and "PermissionError" in result.error_message, tool
    assert hostile.call("note", {"text": "done"}).ok


def test_the_trusted_side_is_out_of_reach(hostile: PoolSession) -> None:
    """No read or write of the server's, the zygote's, the next worker's or the next lease's waiting interpreter's
    memory, /proc files or descriptors; no ptrace, no process_vm_readv, no signal."""
    probe = hostile.call("probe_others", timeout=20).result
    assert set(probe["targets"]) == {"server", "zygote", "spare", "next zygote"}
    for role, outcomes in probe["outcome"].items():
        assert "DONE" not in outcomes.values(), (role, outcomes)
    assert hostile.call("note", {"text": "done"}).ok


def test_tampering_with_the_channel(hostile: PoolSession) -> None:
    result = hostile.call("tamper_channel")
    if result.ok:  # the garbage is read as the next frame
        result = hostile.call("note", {"text": "x"})
    assert result.error_kind == "PROTOCOL_ERROR" and result.episode_broken
    hostile.reset("t1")
    assert hostile.call("note", {"text": "done"}).ok


@pytest.mark.parametrize("shape", ["no_result", "wrong_types", "unknown_field", "json"])
def test_wrong_shaped_frames_from_a_worker(hostile: PoolSession, shape: str) -> None:
    result = hostile.call("forge_reply", {"shape": shape})
    assert result.error_kind == "PROTOCOL_ERROR" and result.episode_broken, result
    hostile.reset("t1")
    assert hostile.call("note", {"text": "done"}).ok


def test_crashing_the_interpreter(hostile: PoolSession) -> None:
    result = hostile.call("segfault")
    assert result.error_kind == "WORKER_CRASHED" and "SIGSEGV" in result.error_message


def settled_leaks(session: PoolSession) -> dict:
    """look_for_leaks once the sandbox is still: after a Reset the zygote forks its next spare in the background,
    and a throttled sandbox may not have yet. A leak never goes away, so waiting cannot hide one."""
    last = session.call("look_for_leaks").result
    for _ in range(30):
        time.sleep(0.1)
        now = session.call("look_for_leaks").result
        if now == last:
            return now
        last = now
    return last


def test_nothing_leaks_into_the_next_episode(hostile: PoolSession) -> None:
    # From a lease's second Reset on, the server holds the next episode's worker ahead (Zygote.refill): the baseline
    # is counted in that regime, as the count after the Reset below is.
    hostile.reset("t1")
    baseline = settled_leaks(hostile)["processes"]
    assert hostile.call("plant").ok
    planted = hostile.call("look_for_leaks").result
    assert planted["global"] and planted["tmp"] and planted["processes"] > baseline
    hostile.reset("t1")
    after = settled_leaks(hostile)
    assert after == {"global": {}, "tmp": False, "processes": baseline}


def _same_container(pool: LocalPool, slot_id: str, scenario: str) -> tuple[PoolSession, list[PoolSession]]:
    """A session on the container `slot_id` (the others taken while finding it are returned to release)."""
    assert pool.manager is not None
    held = []
    for _ in range(3):
        session = pool.pool.acquire("env_hostile", scenario, wait=90)
        if pool.manager.leases[session.lease_id].slot.id == slot_id:
            return session, held
        held.append(session)
    raise AssertionError("the container did not come back to idle")


def test_nothing_of_a_lease_reaches_the_next(hostile_pool: LocalPool) -> None:
    assert hostile_pool.manager is not None
    first = hostile_pool.pool.acquire("env_hostile", "t1", wait=90)
    slot_id = hostile_pool.manager.leases[first.lease_id].slot.id
    planted = first.call("plant_everywhere")
    assert planted.ok and planted.result["shm"]
    assert first.call("find_plants").result == {"daemon": True, "shm_file": True, "sysv_shm": True, "tmp": []}
    first.release()
    second, others = _same_container(hostile_pool, slot_id, "t1")
    try:
        assert second.call("find_plants").result == {"daemon": False, "shm_file": False, "sysv_shm": False,
                                                      "tmp": []}
    finally:
        for session in [second, *others]:
            session.release()


def test_a_leases_route_dies_with_the_lease(hostile_pool: LocalPool) -> None:
    """A client that kept its direct route after Release reaches nothing of the next lessee's episode: the route's
    socket is gone, and a connection it kept open is closed."""
    assert hostile_pool.manager is not None
    first = hostile_pool.pool.acquire("env_hostile", "t1", wait=90, direct=True)
    slot_id = hostile_pool.manager.leases[first.lease_id].slot.id
    route = first.direct_session_socket
    assert Path(route).name.startswith("route-") and first.direct is not None
    kept = SocketSession(route)
    assert kept.request("Describe", env_pb2.DescribeRequest(), 10).env_id == "env_hostile"
    with pytest.raises(EnvClientError) as err:
        kept.request("EndEpisode", env_pb2.EndEpisodeRequest(), 10)  # a route cannot end the pool's episode
    assert err.value.code == "PERMISSION_DENIED"
    assert first.call("note", {"text": "from A"}).ok
    first.release()
    second, others = _same_container(hostile_pool, slot_id, "t1")
    try:
        assert second.direct_session_socket != route and not Path(route).exists()
        for client in (kept, SocketSession(route)):
            with pytest.raises(EnvClientError):
                client.request("CallTool", call_request("", "note", {"text": "from A"}, None), 10)
        assert second.state().state == {"notes": []}
    finally:
        kept.close()
        for session in [second, *others]:
            session.release()


def test_hostile_checks_break_only_themselves(hostile_pool: LocalPool) -> None:
    with hostile_pool.pool.session("env_hostile", "t_checks", wait=90) as session:
        session.call("note", {"text": "done"})
        session.timeout = 60
        evaluation = session.evaluate()
        outcomes = [c.outcome for c in evaluation.checks]
        assert outcomes == ["PASS", "ERROR", "ERROR", "ERROR", "FAIL", "ERROR", "PASS"], evaluation.checks
        assert "PermissionError" in evaluation.checks[1].message
        assert "wrote to its result channel itself" in evaluation.checks[3].message
        assert evaluation.reward == round(2 / 7, 4)
        # The episode is untouched and goes on.
        assert session.state().state == {"notes": ["done"]}
        assert session.call("find_plants").result["tmp"] == []
        assert session.call("note", {"text": "after"}).ok


def test_a_clients_check_cannot_rewrite_the_next_task(hostile_pool: LocalPool) -> None:
    """The attack on a stock environment: an ad-hoc check that rewrites the task the server hands to later leases."""
    rewrite = ("import os\ndef check_func(final_state):\n"
               "    for pid in os.listdir('/proc'):\n"
               "        if pid.isdigit() and int(pid) != os.getpid():\n"
               "            try:\n"
               "                open(f'/proc/{pid}/mem', 'r+b').close()\n"
               "                return True\n"
               "            except OSError:\n"
               "                pass\n"
               "    return False\n")
    with hostile_pool.pool.session("env_1", "0115-091204", wait=90) as session:
        task = session.initial.task if session.initial else ""
        evaluation = session.evaluate(checks=[("rewrite the server", rewrite)])
        assert [c.outcome for c in evaluation.checks] == ["FAIL"]  # no process's memory opened
    with hostile_pool.pool.session("env_1", "0115-091204", wait=90) as session:
        assert session.initial is not None and session.initial.task == task


def test_bad_unicode_and_huge_numbers_are_the_callers_error(hostile_pool: LocalPool, hostile: PoolSession) -> None:
    assert hostile_pool.manager is not None
    replaced = hostile_pool.manager.totals["replaced"]
    for raw in ('{"text": "\\ud800"}', '{"text": ' + "9" * 5000 + "}"):
        result = hostile.call("note", raw)
        assert result.error_kind == "INVALID_ARGUMENTS", result.error_message
    with pytest.raises(EnvClientError) as err:
        hostile.reset(init_config={"notes": ["\ud800"]})
    assert err.value.code == "INVALID_ARGUMENT" and "Unicode" in str(err.value)
    hostile.reset("t1")
    assert hostile.call("note", {"text": "done"}).ok
    assert hostile_pool.manager.totals["replaced"] == replaced


def test_a_callers_tiny_deadline_does_not_destroy_the_container(hostile_pool: LocalPool) -> None:
    assert hostile_pool.manager is not None
    replaced = hostile_pool.manager.totals["replaced"]
    with hostile_pool.pool.session("env_hostile", "t1", wait=90) as session:
        slot_id = hostile_pool.manager.leases[session.lease_id].slot.id
        result = session.call("spin", timeout=0.001)
        assert result.error_kind == "DEADLINE_EXCEEDED" and result.episode_broken
        session.reset("t1")
        assert session.call("note", {"text": "done"}).ok
    time.sleep(0.5)
    assert hostile_pool.manager.totals["replaced"] == replaced
    assert slot_id in hostile_pool.manager.slots and hostile_pool.manager.slots[slot_id].state == "idle"


def test_host_loopback_is_not_the_sandbox_loopback(hostile: PoolSession) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = hostile.call("connect_out", {"host": "127.0.0.1", "port": port})
    assert result.error_kind == "TOOL_EXCEPTION"
    assert any(m in result.error_message.lower() for m in ("refused", "permission denied"))


# --- episode channels: the worker answers its caller's calls itself (proto: EpisodeChannelRequest)


def _connect(path: str) -> tuple[socket.socket, framing.FrameReader]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.settimeout(30)
    return sock, framing.FrameReader(sock)


def _ask(conn: tuple[socket.socket, framing.FrameReader], request: env_pb2.SessionRequest) -> env_pb2.SessionResponse:
    framing.send(conn[0], framing.frame(request))
    return env_pb2.SessionResponse.FromString(conn[1].read())


def _open_channel(path: str) -> tuple[socket.socket, framing.FrameReader]:
    conn = _connect(path)
    answer = _ask(conn, env_pb2.SessionRequest(episode_channel=env_pb2.EpisodeChannelRequest()))
    assert answer.WhichOneof("response") == "episode_channel", answer
    assert answer.episode_channel.call_timeout_ms == 10_000 and answer.episode_channel.max_frame_bytes > 0
    return conn


def _note(text: str) -> env_pb2.SessionRequest:
    return env_pb2.SessionRequest(call_tool=env_pb2.CallToolRequest(name="note", arguments_json=json.dumps(
        {"text": text})))


def test_an_episode_channel_carries_call_tool_only_and_ends_with_its_episode(hostile_pool: LocalPool) -> None:
    with hostile_pool.pool.session("env_hostile", "t1", wait=90, direct=True) as session:
        channel = _open_channel(session.direct_session_socket)
        assert _ask(channel, _note("on the channel")).call_tool.result_json
        # Anything else on it is refused by the worker, which holds nothing else: the server answers for the episode.
        for kind in ("get_state", "evaluate", "reset", "end_episode", "episode_channel"):
            request = env_pb2.SessionRequest()
            getattr(request, kind).SetInParent()
            refused = _ask(channel, request)
            assert refused.error.code == 9 and "carries call_tool only" in refused.error.message, refused
        other = _connect(session.direct_session_socket)
        assert _ask(other, env_pb2.SessionRequest(episode_channel=env_pb2.EpisodeChannelRequest())).error.code == 6
        other[0].close()
        assert session.state().state == {"notes": ["on the channel"]}
        session.reset("t1")  # the episode ends: so does its channel, and the next episode is untouched
        assert channel[0].recv(1) == b""
        assert session.state().state == {"notes": []}
        assert session.call("note", {"text": "done"}).ok and session.evaluate().reward == 1.0


@pytest.mark.parametrize("direct", [False, True], ids=["through the pool", "direct route"])
def test_a_forged_answer_on_the_channel_breaks_only_that_episode(hostile_pool: LocalPool, direct: bool) -> None:
    with hostile_pool.pool.session("env_hostile", "t1", wait=90, direct=direct) as session:
        assert session.call("note", {"text": "done"}).ok  # the channel is open
        result = session.call("forge_answer")
        assert result.error_kind == "PROTOCOL_ERROR" and result.episode_broken, result
        with pytest.raises(EnvClientError) as refused:
            session.evaluate()  # the server answers for the episode, which is broken: no reward to forge
        assert refused.value.code == "FAILED_PRECONDITION" and "broke the protocol" in str(refused.value)
        session.reset("t1")
        assert session.call("note", {"text": "done"}).ok and session.evaluate().reward == 1.0


def test_a_caller_that_closes_its_channel_ends_the_episode(hostile_pool: LocalPool) -> None:
    with hostile_pool.pool.session("env_hostile", "t1", wait=90, direct=True) as session:
        channel = _open_channel(session.direct_session_socket)
        framing.send(channel[0], framing.frame(env_pb2.SessionRequest(
            call_tool=env_pb2.CallToolRequest(name="spin"))))
        channel[0].close()  # mid-call, gone: the worker is killed, not left spinning
        with pytest.raises(EnvClientError) as refused:
            session.call("note", {"text": "x"})
        assert refused.value.code == "FAILED_PRECONDITION" and "episode channel was closed" in str(refused.value)
        session.reset("t1")
        assert session.call("note", {"text": "done"}).ok


def test_a_pool_keeps_its_leases_channels_to_itself(hostile_pool: LocalPool) -> None:
    with hostile_pool.pool.session("env_hostile", "t1", wait=90) as session:
        conn = _connect(session_socket_path(hostile_pool.address))
        ask = env_pb2.SessionRequest(episode_channel=env_pb2.EpisodeChannelRequest())
        framing.send(conn[0], framing.frame(pool_pb2.LeaseSessionRequest(lease_id=session.lease_id, request=ask)))
        answer = env_pb2.SessionResponse.FromString(conn[1].read())
        assert answer.error.code == 7 and "holds its leases' episode channels" in answer.error.message
        conn[0].close()
        assert session.call("note", {"text": "done"}).ok


# --- episode channels under review (a second reader's attacks): each test states the property it holds.


@pytest.mark.parametrize("direct", [False, True], ids=["through the pool", "direct route"])
def test_review_a_trickled_answer_does_not_outlast_the_callers_deadline(hostile_pool: LocalPool,
                                                                         direct: bool) -> None:
    """The caller enforces each call's deadline: a worker that writes its answer one byte at a time must not hold
    the caller past it (SO_RCVTIMEO is per read, not per call)."""
    with hostile_pool.pool.session("env_hostile", "t1", wait=90, direct=direct) as session:
        assert session.call("note", {"text": "x"}).ok  # the channel is open
        started = time.monotonic()
        result = session.call("trickle", {"seconds": 8.0}, timeout=1.0)
        elapsed = time.monotonic() - started
        assert elapsed < 4.0, f"the caller waited {elapsed:.1f} s on a 1 s deadline; got {result}"
        assert result.error_kind == "DEADLINE_EXCEEDED" and result.episode_broken, result


@pytest.mark.parametrize(("failed", "overran_ms"), [(env_pb2.DEADLINE_EXCEEDED, 3_600_000),
                                                    (env_pb2.PROTOCOL_ERROR, 0)], ids=["deadline", "protocol"])
def test_review_a_lessee_cannot_get_a_healthy_container_replaced(hostile_pool: LocalPool, failed: int,
                                                                 overran_ms: int) -> None:
    """As for a caller's tiny deadline: a lessee's word alone (a failure report for a call that never failed, on its
    direct route) must not make the pool destroy a healthy container."""
    assert hostile_pool.manager is not None
    replaced = hostile_pool.manager.totals["replaced"]
    with hostile_pool.pool.session("env_1", "0115-140512", wait=90, direct=True) as session:
        slot_id = hostile_pool.manager.leases[session.lease_id].slot.id
        channel = _open_channel(session.direct_session_socket)
        own = _connect(session.direct_session_socket)
        report = env_pb2.SessionRequest(episode_channel=env_pb2.EpisodeChannelRequest(
            failed=failed, overran_ms=overran_ms))  # type: ignore[arg-type]  # an ErrorKind value
        answer = _ask(own, report)
        assert answer.WhichOneof("response") == "episode_channel", answer
        own[0].close()
        channel[0].close()
    time.sleep(1.0)
    assert hostile_pool.manager.totals["replaced"] == replaced, "a lessee's false report replaced the container"
    assert slot_id in hostile_pool.manager.slots


def test_review_a_cancelled_async_call_does_not_answer_the_next(hostile_pool: LocalPool) -> None:
    """asyncio: a CallTool cancelled while on the channel (wait_for, a task's cancel) must not leave its answer to be
    read as the next call's."""
    import asyncio
    import contextlib

    from envscaler.client.session_socket import AsyncSocketSession

    with hostile_pool.pool.session("env_hostile", "t1", wait=90, direct=True) as session:
        async def go() -> env_pb2.CallToolResponse:
            client = AsyncSocketSession(session.direct_session_socket)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(client.request(
                        "CallTool", call_request("", "slow", {"seconds": 1.5, "tag": "first"}, None), 30), 0.3)
                return await client.request(
                    "CallTool", call_request("", "slow", {"seconds": 0, "tag": "second"}, None), 30)
            finally:
                await client.close()

        second = asyncio.run(go())
        assert json.loads(second.result_json) == {"tag": "second"}, second


def test_review_a_check_cannot_write_to_the_channel_through_a_kept_descriptor(hostile_pool: LocalPool) -> None:
    """SECURITY.md: 'Checks run with the channel closed in their process, so a check cannot write to it' -- also
    when a tool kept a second descriptor of it, which the check's process inherits."""
    forged = env_pb2.SessionResponse(call_tool=env_pb2.CallToolResponse(
        result_json='{"forged": "by a check"}', observation="forged by a check")).SerializeToString()
    check = ("import os, struct\ndef check_func(final_state):\n"
             f"    body = {forged!r}\n"
             "    os.write(200, struct.pack('!I', len(body)) + body)\n"
             "    return True\n")
    with hostile_pool.pool.session("env_hostile", "t1", wait=90, direct=True) as session:
        assert session.call("dup_channel", {"fd": 200}).ok
        session.timeout = 60
        evaluation = session.evaluate(checks=[("writes to the channel", check)])
        assert [c.outcome for c in evaluation.checks] == ["ERROR"], evaluation.checks
        assert "Bad file descriptor" in evaluation.checks[0].message  # nothing but its result channel is open
        result = session.call("note", {"text": "done"})
        assert result.result != {"forged": "by a check"}, "a check's bytes were read as the next call's answer"


def test_review_a_worker_cannot_pass_its_own_end_off_as_its_callers(hostile_pool: LocalPool) -> None:
    """The server kills the worker when its caller hangs up, and blames the caller (not dirty). A worker that shuts
    its own copy of the channel down must not be taken for its caller: it is the sandbox's doing (as a crash is)."""
    with hostile_pool.pool.session("env_hostile", "t1", wait=90, direct=True) as session:
        assert session.call("note", {"text": "x"}).ok  # the channel is open
        try:
            session.call("hang_up_channel")
            outcome = str(session.call("note", {"text": "y"}))
        except EnvClientError as exc:
            outcome = str(exc)
        assert "its caller closed its episode channel" not in outcome, outcome
