"""The pool with real containers: concurrency, leases, exhaustion, faults, reaping."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest

from envscaler.client import EnvClientError
from envscaler.client.pool_client import AsyncPool, Pool
from envscaler.client.session_socket import SocketSession
from envscaler.client.session_stream import AsyncSessionStream, SessionStream
from envscaler.pool.liveness import POOL_LABEL
from envscaler.pool.runner import LocalPool, PoolOptions
from envscaler.spec.loader import bundled_envs_path, bundled_scenarios_path
from tests.conftest import SOLUTIONS
from tests.integration.conftest import hostile_corpus

pytestmark = pytest.mark.integration


def combined_corpus(folder: Path) -> tuple[Path, Path]:
    """The examples plus the hostile environment, as EnvScaler files."""
    envs = json.loads(bundled_envs_path().read_text())
    scenarios = json.loads(bundled_scenarios_path().read_text())
    hostile = hostile_corpus()
    envs["env_hostile"] = hostile.envs["env_hostile"].model_dump(mode="json")
    scenarios += [s.model_dump(mode="json") for s in hostile.scenarios["env_hostile"].values()]
    (folder / "envs.json").write_text(json.dumps(envs))
    (folder / "scenarios.json").write_text(json.dumps(scenarios))
    return folder / "envs.json", folder / "scenarios.json"


@pytest.fixture(scope="module")
def local_pool(engine: docker.DockerClient, example_images: dict[str, str],
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPool]:
    envs, scenarios = combined_corpus(tmp_path_factory.mktemp("corpus"))
    # Recycling: these tests follow a container from lease to lease (tests/integration/test_fresh_containers.py
    # covers the default, a fresh container per lease).
    options = PoolOptions(size=8, lease_ttl=60, acquire_wait=60, fresh_per_lease=False)
    with LocalPool(envs=envs, scenarios=scenarios, options=options) as local:
        yield local
    assert engine.containers.list(ignore_removed=True,
            all=True, filters={"label": f"{POOL_LABEL}={local.manager.pool_id}"}) == []


def solve(pool: Pool, path: Path) -> float:
    env_id, task_id = path.stem.split("__")
    with pool.session(env_id, scenario=task_id, wait=120) as session:
        for line in path.read_text().splitlines():
            call = json.loads(line)
            assert session.call(call["name"], call["arguments"]).ok
        return session.evaluate().reward


def test_32_concurrent_sessions_across_environments(local_pool: LocalPool) -> None:
    solutions = sorted(SOLUTIONS.glob("*.jsonl"))
    work = (solutions * 2)[:32]
    assert len({p.stem.split("__")[0] for p in work}) == 8
    with ThreadPoolExecutor(32) as threads:
        rewards = list(threads.map(lambda p: solve(local_pool.pool, p), work))
    assert rewards == [1.0] * 32
    stats = local_pool.pool.stats()
    assert stats.containers <= 8


def test_list_envs_and_sessions_share_the_env_client_methods(local_pool: LocalPool) -> None:
    envs = {e.env_id: e for e in local_pool.pool.list_envs().envs}
    assert set(envs) == {f"env_{i}" for i in range(1, 9)} | {"env_hostile"}
    assert len(envs["env_1"].scenario_ids) == 3
    with local_pool.pool.session("env_7") as session:
        assert session.initial is None
        assert [t["function"]["name"] for t in session.tools][:2] == ["list_rooms", "list_devices"]
        session.reset("1102-213005")
        assert session.state().state["away_mode"] is False


def test_lease_ttl_expiry_reclaims_the_container(local_pool: LocalPool) -> None:
    pool = local_pool.pool
    before = pool.stats().leases_expired
    session = pool.acquire("env_4", "0502-142201", ttl=1.0)
    time.sleep(2.0)
    with pytest.raises(EnvClientError, match="NOT_FOUND: unknown lease"):
        session.call("get_account", {"account_id": "AC-300"})
    assert pool.stats().leases_expired == before + 1


def test_exhaustion_is_resource_exhausted_with_a_clear_message(local_pool: LocalPool) -> None:
    pool = local_pool.pool
    held = [pool.acquire(f"env_{1 + i % 8}", wait=60) for i in range(8)]
    try:
        started = time.monotonic()
        with pytest.raises(EnvClientError) as err:
            pool.acquire("env_1", wait=1.0)
        assert err.value.code == "RESOURCE_EXHAUSTED"
        assert "no container of env_1 became free within 1 s" in err.value.details
        assert time.monotonic() - started < 10
    finally:
        for session in held:
            session.release()
    with pool.session("env_1", wait=60) as session:
        assert session.reset("0115-091204").task


def test_a_killed_container_fails_only_its_session(local_pool: LocalPool, engine: docker.DockerClient) -> None:
    pool = local_pool.pool
    replaced = pool.stats().replaced
    victim = pool.acquire("env_2", "0310-093047", wait=60)
    bystander = pool.acquire("env_3", "0402-163011", wait=60)
    try:
        assert local_pool.manager is not None
        slot = local_pool.manager.leases[victim.lease_id].slot
        assert slot.env is not None
        engine.containers.get(slot.env.container.id).kill()
        with pytest.raises(EnvClientError) as err:
            for _ in range(50):
                victim.call("find_patient", {"name": "Grace"})
                time.sleep(0.1)
        assert err.value.code == "UNAVAILABLE" and "sandbox container of this lease" in err.value.details
        assert bystander.call("get_order", {"order_id": "O1002"}).ok
    finally:
        victim.release()
        bystander.release()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (local_pool.manager.ready() < 8 or pool.stats().replaced <= replaced):
        time.sleep(0.2)
    assert pool.stats().replaced > replaced
    assert local_pool.manager.ready() == 8


def test_an_overrun_taints_the_container_which_is_replaced(local_pool: LocalPool) -> None:
    pool = local_pool.pool
    replaced = pool.stats().replaced
    with pool.session("env_hostile", "t1", wait=60) as session:
        container = local_pool.manager.leases[session.lease_id].slot.id
        # Overrunning the server's own deadline (10 s) is the sandbox's fault; a caller's shorter one would not be.
        result = session.call("spin")
        assert result.error_kind == "DEADLINE_EXCEEDED" and result.episode_broken
        session.reset("t1")  # the lease may go on, in a fresh worker
        assert session.call("note", {"text": "done"}).ok
    assert pool.stats().replaced == replaced + 1
    slot = local_pool.manager.slots.get(container)
    assert slot is None or slot.state == "removing"  # never leased again


def pool_process(sock: Path, log: Path, *extra: str, size: int = 2, only: tuple[str, ...] = ("env_1", "env_2"),
                 pipes: bool = False) -> subprocess.Popen[bytes]:
    out = subprocess.PIPE if pipes else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "envscaler.cli", "pool", "--size", str(size), "--listen",
                             f"unix:{sock}", "--metrics-listen", "", "--log", str(log), "--only", *only, *extra],
                            stdout=out, stderr=out, env=os.environ.copy())


def logged(log: Path, pattern: str, process: subprocess.Popen[bytes], timeout: float = 120) -> re.Match[str]:
    """The first line of the pool's log that matches, once it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text() if log.exists() else "", re.MULTILINE)
        if found:
            return found
        assert process.poll() is None, f"the pool exited ({process.returncode}); its log:\n{log.read_text()}"
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} not in the pool's log:\n{log.read_text() if log.exists() else ''}")


def containers_of(engine: docker.DockerClient, pool_id: str) -> list:
    return engine.containers.list(ignore_removed=True, all=True, filters={"label": f"{POOL_LABEL}={pool_id}"})


def test_sigkilled_pool_leaves_containers_that_the_next_pool_reaps_and_logs(engine: docker.DockerClient,
                                                                           example_images: dict[str, str],
                                                                           tmp_path: Path) -> None:
    process = pool_process(tmp_path / "pool.sock", tmp_path / "pool.log")
    try:
        pool_id = logged(tmp_path / "pool.log", r"pool (\S+) serving on", process)[1]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(containers_of(engine, pool_id)) < 2:
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert len(containers_of(engine, pool_id)) == 2  # SIGKILL leaves them; the next pool start reaps them
    # ... and says so in its log (issue 29: it was silent), naming the dead pool and how many were its
    following = pool_process(tmp_path / "next.sock", tmp_path / "next.log", size=1, only=("env_1",))
    try:
        reaped = logged(tmp_path / "next.log", r"removed \d+ container\(s\) left by .* that died without "
                                               r"removing them \(.*\)$", following)[0]
        assert f"{pool_id}: 2" in reaped, reaped
        assert containers_of(engine, pool_id) == []
    finally:
        following.send_signal(signal.SIGINT)
        following.wait(timeout=120)


def test_a_pool_whose_stdout_and_stderr_go_away_serves_on_and_drains_every_container(
        engine: docker.DockerClient, example_images: dict[str, str], tmp_path: Path) -> None:
    """`pool | tee pool.log` and Ctrl-C kills tee with the pool (issue 29): the pool's next write to its stdout
    fails. It must not stop serving, nor stop draining half way; its last line goes to its log."""
    log = tmp_path / "pool.log"
    process = pool_process(tmp_path / "pool.sock", log, pipes=True)
    try:
        pool_id = logged(log, r"pool (\S+) serving on", process)[1]
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # nobody reads either any more: the pool's writes fail (EPIPE)
        process.stderr.close()
        with Pool(f"unix:{tmp_path / 'pool.sock'}") as pool:
            pool.acquire("env_1", wait=120).release()  # the status changes: a line to write
            logged(log, r"the pool's stdout went away", process, timeout=30)
            with pool.session("env_2", wait=120) as session:  # still serving
                assert session.tools
        assert len(containers_of(engine, pool_id)) >= 1
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert containers_of(engine, pool_id) == []  # drained, every one
    assert log.read_text().splitlines()[-1].endswith("pool stopped; its containers are removed")


THREAD_AT_IMPORT = ("import threading as _t, time as _time\n"
                    "_t.Thread(target=_time.sleep, args=(3600,), daemon=True).start()\n")


def test_a_refused_modules_reason_reaches_the_caller_and_the_pools_log_in_one_line(
        engine: docker.DockerClient, runtime_image: str, tmp_path: Path) -> None:
    """A module that starts a thread at import is refused in the sandbox (rightly); the pool said only "not
    serving after 60 s" (issue 29). Now the sandbox's reason is the start's failure, at once."""
    envs = json.loads(bundled_envs_path().read_text())
    record = dict(envs["env_1"], env_id="env_threads")
    record["env_class_code"] = THREAD_AT_IMPORT + record["env_class_code"]
    (tmp_path / "envs.json").write_text(json.dumps([record]))
    scenarios = [dict(s, env_id="env_threads") for s in json.loads(bundled_scenarios_path().read_text())
                 if s["env_id"] == "env_1"][:1]
    (tmp_path / "scenarios.json").write_text(json.dumps(scenarios))
    log = tmp_path / "pool.log"
    process = pool_process(tmp_path / "pool.sock", log, "--envs", str(tmp_path / "envs.json"), "--scenarios",
                           str(tmp_path / "scenarios.json"), size=1, only=("env_threads",))
    try:
        logged(log, r"serving on", process, timeout=600)  # its image is built first
        with Pool(f"unix:{tmp_path / 'pool.sock'}") as pool, pytest.raises(EnvClientError) as refused:
            pool.acquire("env_threads", wait=60)  # refused with the cause, not exhausted after a 60 s timeout
        assert refused.value.code == "FAILED_PRECONDITION", refused.value
        assert refused.value.details.startswith("env_threads: containers refuse to serve it: "), refused.value
        assert "it started 1 thread(s) at import" in refused.value.details, refused.value
        assert "\n" not in refused.value.details
        line = logged(log, r"^.*starting a container of env_threads failed.*$", process)[0]
        assert "it started 1 thread(s) at import" in line and "not serving after" not in line, line
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)


def test_replay_through_the_pool(local_pool: LocalPool) -> None:
    calls = SOLUTIONS / "env_6__0718-104433.jsonl"
    done = subprocess.run([sys.executable, "-m", "envscaler.cli", "replay", "--pool", local_pool.address, "--env",
                           "env_6", "--scenario", "0718-104433", "--calls", str(calls), "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["evaluation"]["reward"] == 1.0


def test_replay_through_the_pool_runs_an_unknown_tool_in_band_and_warns(local_pool: LocalPool,
                                                                       tmp_path: Path) -> None:
    """The same in every mode (issue 29): the unit test shows it in a worker process, this one through a pool."""
    calls = tmp_path / "calls.jsonl"
    solution = (SOLUTIONS / "env_6__0718-104433.jsonl").read_text()
    calls.write_text('{"name": "serch_books", "arguments": {}}\n' + solution)
    done = subprocess.run([sys.executable, "-m", "envscaler.cli", "replay", "--pool", local_pool.address, "--env",
                           "env_6", "--scenario", "0718-104433", "--calls", str(calls), "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["steps"][0]["error_kind"] == "UNKNOWN_TOOL" and report["evaluation"]["reward"] == 1.0
    (warning,) = done.stderr.splitlines()
    assert "calls.jsonl, call 1: no tool named 'serch_books'" in warning and "answered in band" in warning


def test_direct_routes_skip_the_pool_hop_and_are_checked_on_release(local_pool: LocalPool) -> None:
    pool = local_pool.pool
    with pool.session("env_4", "0502-142201", wait=60, direct=True) as session:
        assert session.direct is not None and Path(session.direct_session_socket).name.startswith("route-")
        for line in (SOLUTIONS / "env_4__0502-142201.jsonl").read_text().splitlines():
            call = json.loads(line)
            assert session.call(call["name"], call["arguments"]).ok
        assert session.evaluate().reward == 1.0
    replaced = pool.stats().replaced
    with pool.session("env_hostile", "t1", wait=60, direct=True) as session:
        slot_id = local_pool.manager.leases[session.lease_id].slot.id
        assert session.call("spin").error_kind == "DEADLINE_EXCEEDED"  # the server's own deadline; unseen by the pool
    assert pool.stats().replaced == replaced + 1  # ...but EndEpisode told it on release
    slot = local_pool.manager.slots.get(slot_id)
    assert slot is None or slot.state == "removing"


@pytest.mark.parametrize("transport", ["session socket", "gRPC session stream"])
def test_every_transport_solves_a_scenario(local_pool: LocalPool, transport: str) -> None:
    """Clients off the pool's host have no session socket: the same session over PoolService.Session, to reward 1."""
    with Pool(local_pool.address, transport="socket" if transport == "session socket" else "stream") as pool, \
            pool.session("env_4", "0502-142201", wait=60) as session:
        assert isinstance(session.stream, SocketSession if transport == "session socket" else SessionStream)
        for line in (SOLUTIONS / "env_4__0502-142201.jsonl").read_text().splitlines():
            call = json.loads(line)
            assert session.call(call["name"], call["arguments"]).ok
        assert session.evaluate().reward == 1.0
        with pytest.raises(EnvClientError, match="NOT_FOUND: unknown scenario 'nope'"):
            session.reset("nope")
        assert session.reset("0502-142201").task  # the session goes on after a refusal


def test_an_async_session_over_the_grpc_stream(local_pool: LocalPool) -> None:
    async def episode() -> float:
        async with AsyncPool(local_pool.address, transport="stream") as pool, \
                pool.session("env_4", "0502-142201", wait=60) as session:
            assert isinstance(session.stream, AsyncSessionStream)
            for line in (SOLUTIONS / "env_4__0502-142201.jsonl").read_text().splitlines():
                call = json.loads(line)
                assert (await session.call(call["name"], call["arguments"])).ok
            return (await session.evaluate()).reward

    assert asyncio.run(episode()) == 1.0
