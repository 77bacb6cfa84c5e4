"""Environment images run hardened (testcontainers), and hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import docker
import pytest

from envscaler.client import EnvClient
from envscaler.containers.hardening import Hardening
from envscaler.containers.launch import OWNER_LABEL
from envscaler.spec import load_corpus
from envscaler.testing import EnvScalerContainer
from tests.conftest import SOLUTIONS
from tests.integration.conftest import SESSION_OWNER, hostile_corpus

pytestmark = pytest.mark.integration


@pytest.fixture
def started(request: pytest.FixtureRequest, runtime_image: str) -> Iterator[tuple[EnvScalerContainer, EnvClient]]:
    """The project's own testcontainers helper (envscaler.testing), as a user would run it."""
    corpus, env_id = (hostile_corpus(), "env_hostile") if request.param == "hostile" else (load_corpus(), "env_8")
    with EnvScalerContainer(env_id, corpus=corpus, hardening=Hardening(docker_healthcheck=True)) as container, \
            container.client() as client:
        yield container, client


@pytest.mark.parametrize("started", ["examples"], indirect=True)
def test_hardened_container_solves_a_scenario(started: tuple[EnvScalerContainer, EnvClient]) -> None:
    container, client = started
    attrs = container.get_wrapped_container().attrs["HostConfig"]
    assert attrs["NetworkMode"] == "none" and attrs["ReadonlyRootfs"] is True
    assert attrs["CapDrop"] == ["ALL"] and attrs["SecurityOpt"] == ["no-new-privileges"]
    assert sorted(attrs["CapAdd"]) == ["KILL", "SETGID", "SETPCAP", "SETUID"]  # the spawner's and server's only
    assert attrs["PidsLimit"] == 256 and attrs["Memory"] == 512 << 20
    assert (attrs["CpuQuota"], attrs["CpuPeriod"]) == (10_000, 10_000)  # one CPU, throttled in 10 ms steps
    client.reset("0915-101742")
    for line in (SOLUTIONS / "env_8__0915-101742.jsonl").read_text().splitlines():
        call = json.loads(line)
        assert client.call(call["name"], call["arguments"]).ok
    assert client.evaluate().reward == 1.0


@pytest.mark.parametrize("started", ["hostile"], indirect=True)
def test_the_sandbox_holds(started: tuple[EnvScalerContainer, EnvClient]) -> None:
    _, client = started
    client.reset("t1")
    identity = client.call("whoami").result
    assert identity["uid"] == 10002 and identity["gid"] == 10002
    assert int(identity["cap_eff"], 16) == 0 and int(identity["cap_bnd"], 16) == 0 and identity["no_new_privs"] == "1"
    isolation = client.describe().isolation
    assert (isolation["server_uid"], isolation["sandbox_uid"]) == (10001, 10002)
    assert isolation["landlock_abi"] >= 6 and isolation["server_non_dumpable"]
    outside = client.call("connect_out", {"host": "1.1.1.1", "port": 53})
    assert outside.error_kind == "TOOL_EXCEPTION"
    assert "unreachable" in outside.error_message.lower() or "permission denied" in outside.error_message.lower()
    dns = client.call("resolve", {"name": "example.com"})
    assert dns.error_kind == "TOOL_EXCEPTION" and "gaierror" in dns.error_message
    for path in ("/opt/envscaler/evil", "/etc/passwd", "/evil"):
        denied = client.call("write_root", {"path": path})
        assert denied.error_kind == "TOOL_EXCEPTION", path
        assert "Read-only file system" in denied.error_message or "Permission denied" in denied.error_message
    assert client.call("write_root", {"path": "/tmp/scratch"}).ok
    assert client.call("read_file", {"path": "/var/run/docker.sock"}).error_kind == "TOOL_EXCEPTION"
    assert client.call("note", {"text": "done"}).ok
    assert client.evaluate().reward == 1.0


@pytest.mark.parametrize("started", ["examples"], indirect=True)
def test_health_check_and_graceful_sigterm(started: tuple[EnvScalerContainer, EnvClient]) -> None:
    container, client = started
    client.reset("0915-080130")
    wrapped = container.get_wrapped_container()
    for _ in range(150):  # the image checks every 10 s
        wrapped.reload()
        if wrapped.attrs["State"].get("Health", {}).get("Status") == "healthy":
            break
        time.sleep(0.2)
    assert wrapped.attrs["State"]["Health"]["Status"] == "healthy"
    wrapped.stop(timeout=10)  # SIGTERM; a server that ignored it would be SIGKILLed (exit 137)
    wrapped.reload()
    assert wrapped.attrs["State"]["ExitCode"] == 0


def test_replay_runs_in_a_container_and_leaves_nothing(engine: docker.DockerClient,
                                                       example_images: dict[str, str]) -> None:
    calls = SOLUTIONS / "env_5__0601-113540.jsonl"
    done = subprocess.run([sys.executable, "-m", "envscaler.cli", "replay", "--env", "env_5", "--scenario",
                           "0601-113540", "--calls", str(calls), "--json", "--sandbox", "container"],
                          capture_output=True, text=True, timeout=180, check=False, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["evaluation"]["reward"] == 1.0
    assert "hardened container" not in done.stderr
    assert [c for c in engine.containers.list(ignore_removed=True,
            all=True) if c.labels.get(OWNER_LABEL, "").startswith("replay-")] == []


def test_every_lease_gets_a_route_however_many_leases(engine: docker.DockerClient,
                                                      example_images: dict[str, str]) -> None:
    """A route's socket (and the thread accepting on it) is gone when its lease ends: the socket directory holds 64
    inodes, and 100 leases later the next one still gets its own route."""
    import grpc

    from envscaler.containers.launch import running
    from envscaler.v1 import env_pb2, env_pb2_grpc

    with running(engine, example_images["env_1"], SESSION_OWNER) as env, grpc.insecure_channel(env.address) as channel:
        stub = env_pb2_grpc.EnvServiceStub(channel)
        routes = {stub.EndEpisode(env_pb2.EndEpisodeRequest(), timeout=30).route for _ in range(100)}
        assert "" not in routes and len(routes) == 100
        assert len(list(env.socket_dir.iterdir())) == 3  # env.sock, env.session.sock, the current route


def test_a_process_killed_with_its_containers_running_leaves_them_to_the_next_starter(
        engine: docker.DockerClient, example_images: dict[str, str]) -> None:
    """Any container the package starts carries its owner's lock (here the starting process's, not a pool's): a
    process SIGKILLed mid-use leaves its container, and the next process that starts containers removes it."""
    from envscaler.containers import owners

    script = ("import os, signal, sys\n"
              "from envscaler.containers import launch\n"
              "from envscaler.images.engine import connect\n"
              f"env = launch.start(connect(), {example_images['env_1']!r}, 'replay-killed')\n"
              "print(env.container.name, flush=True)\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    name = done.stdout.strip()
    assert name, done.stderr
    left = engine.containers.get(name)
    assert left.labels[owners.POOL_LABEL].startswith("process-")
    assert owners.reap_dead(engine) >= 1
    assert not engine.containers.list(ignore_removed=True, all=True, filters={"name": name})
