"""The MCP front door with the official `mcp` client: real HTTP on loopback, real stdio subprocesses, a real pool."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import docker
import httpx2 as httpx
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

from envscaler.pool.runner import LocalPool, PoolOptions
from tests.conftest import SOLUTIONS
from tests.integration.test_pool import combined_corpus

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "envscaler-runtime")
SOLUTION = SOLUTIONS / "env_1__0115-091204.jsonl"
MODES = ["2026-07-28", "legacy"]  # legacy: the 2025-11-25 initialize handshake


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The examples plus an environment the front door has never seen (the hostile one)."""
    return combined_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def local_pool(engine: docker.DockerClient, example_images: dict[str, str], hostile_image: str,
               corpus_files: tuple[Path, Path]) -> Iterator[LocalPool]:
    envs, scenarios = corpus_files
    options = PoolOptions(size=4, lease_ttl=60, acquire_wait=60, only=["env_1", "env_4", "env_hostile"])
    with LocalPool(envs=envs, scenarios=scenarios, options=options) as local:
        yield local


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FrontDoor:
    def __init__(self, pool: str, *extra: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([CLI, "mcp", "--pool", pool, "--listen", f"127.0.0.1:{self.port}", *extra],
                                        stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stderr.read() if self.process.stderr else ""
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError("the front door did not listen within 30 s")

    def close(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        try:
            _, err = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err


@pytest.fixture(scope="module")
def front(local_pool: LocalPool) -> Iterator[FrontDoor]:
    door = FrontDoor(local_pool.address)
    yield door
    err = door.close()
    assert door.process.returncode in (0, -signal.SIGTERM), err  # uvicorn re-raises the signal once shut down
    assert "Traceback" not in err, err


def _schema(env_id: str, *corpus: Path) -> list[dict[str, Any]]:
    files = ["--envs", str(corpus[0]), "--scenarios", str(corpus[1])] if corpus else []
    out = subprocess.run([CLI, "schema", "--env", env_id, *files], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def _as_openai(tools: list[Any]) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": t.name, "description": t.description or "",
                                              "parameters": t.input_schema}} for t in tools]


def _lease(front: FrontDoor, **body: Any) -> dict[str, Any]:
    reply = httpx.post(f"{front.base}/v1/leases", json=body, timeout=120)
    assert reply.status_code == 201, reply.text
    return reply.json()


def _calls(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def _solve(client: Client, path: Path) -> None:
    for call in _calls(path):
        result = await client.call_tool(call["name"], call["arguments"])
        assert not result.is_error, result.content
        assert result.content[0].text  # the observation
        assert isinstance(result.structured_content, dict)


@pytest.mark.parametrize("mode", MODES)
def test_http_lists_the_schema_and_solves_a_scenario(front: FrontDoor, local_pool: LocalPool, mode: str) -> None:
    lease = _lease(front, env_id="env_1", scenario_id="0115-091204")
    assert lease["task"] and lease["mcp_url"] == f"/v1/leases/{lease['lease_id']}/mcp"
    held = len(local_pool.manager.leases)

    async def session() -> str:
        async with Client(front.base + lease["mcp_url"], mode=mode) as client:
            assert _as_openai((await client.list_tools()).tools) == _schema("env_1")
            await _solve(client, SOLUTION)
            return client.protocol_version

    version = anyio.run(session)
    assert version == ("2025-11-25" if mode == "legacy" else mode)
    state = httpx.get(f"{front.base}/v1/leases/{lease['lease_id']}/state", timeout=30).json()
    assert state["state"] is not None and state["sha256"]
    assert httpx.post(f"{front.base}/v1/leases/{lease['lease_id']}/evaluate", timeout=60).json()["reward"] == 1.0
    done = httpx.delete(f"{front.base}/v1/leases/{lease['lease_id']}?evaluate=1", timeout=60).json()
    assert done["released"] and done["evaluation"]["reward"] == 1.0
    assert len(local_pool.manager.leases) == held - 1
    gone = httpx.get(f"{front.base}/v1/leases/{lease['lease_id']}/state", timeout=30)
    assert gone.status_code == 404 and "released" in gone.json()["error"]


@pytest.mark.parametrize("mode", MODES)
def test_bad_arguments_and_unknown_tools_are_error_results(front: FrontDoor, mode: str) -> None:
    lease = _lease(front, env_id="env_1", scenario_id="0115-091204")

    async def session() -> list[Any]:
        async with Client(front.base + lease["mcp_url"], mode=mode) as client:
            return [await client.call_tool("search_books", {"query": 3, "nope": 1}),
                    await client.call_tool("search_books", {}),
                    await client.call_tool("no_such_tool", {}),
                    await client.call_tool("_private", {}),
                    await client.call_tool("search_books", {"query": "Dune"})]

    wrong_type, missing, unknown, private, fine = anyio.run(session)
    for result in (wrong_type, missing):
        assert result.is_error and result.content[0].text.startswith("INVALID_ARGUMENTS: ")
    for result in (unknown, private):
        assert result.is_error and result.content[0].text.startswith("UNKNOWN_TOOL: ")
    assert not fine.is_error
    assert httpx.delete(f"{front.base}/v1/leases/{lease['lease_id']}", timeout=30).status_code == 200


@pytest.mark.parametrize("mode", MODES)
def test_an_environment_outside_the_examples_is_served_and_solved(front: FrontDoor, corpus_files: tuple[Path, Path],
                                                                   mode: str) -> None:
    lease = _lease(front, env_id="env_hostile", scenario_id="t1")

    async def session() -> tuple[Any, Any, Any]:
        async with Client(front.base + lease["mcp_url"], mode=mode) as client:
            assert _as_openai((await client.list_tools()).tools) == _schema("env_hostile", *corpus_files)
            noted = await client.call_tool("note", {"text": "done"})
            state = await client.read_resource("envscaler://state")
            evaluation = await client.read_resource("envscaler://evaluation")
            crashed = await client.call_tool("segfault", {})
            with pytest.raises(MCPError, match="episode is broken"):
                await client.read_resource("envscaler://state")
            return noted, crashed, (state, evaluation)

    noted, crashed, (state, evaluation) = anyio.run(session)
    assert not noted.is_error and noted.structured_content is not None
    assert json.loads(state.contents[0].text)["state"]["notes"] == ["done"]
    assert json.loads(evaluation.contents[0].text)["reward"] == 1.0
    assert crashed.is_error and crashed.content[0].text.startswith("WORKER_CRASHED: ")
    broken = httpx.get(f"{front.base}/v1/leases/{lease['lease_id']}/state", timeout=30)
    assert broken.status_code == 409 and "episode is broken" in broken.json()["error"]
    assert httpx.delete(f"{front.base}/v1/leases/{lease['lease_id']}", timeout=60).status_code == 200


def test_an_expired_lease_is_a_404_not_a_hang(front: FrontDoor, local_pool: LocalPool) -> None:
    lease = _lease(front, env_id="env_4", scenario_id="0502-142201", ttl=1)
    time.sleep(2.5)
    started = time.monotonic()
    for reply in (httpx.get(f"{front.base}/v1/leases/{lease['lease_id']}/state", timeout=10),
                  httpx.post(front.base + lease["mcp_url"], timeout=10,
                             json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
                             headers={"Accept": "application/json, text/event-stream",
                                      "MCP-Protocol-Version": "2025-11-25"})):
        assert reply.status_code == 404, reply.text
        assert "expired" in reply.json()["error"]
    assert time.monotonic() - started < 5
    assert lease["lease_id"] not in {h for h in local_pool.manager.leases}

    async def session() -> None:
        async with Client(front.base + lease["mcp_url"], mode="2026-07-28") as client:
            await client.list_tools()

    with pytest.raises(Exception):  # noqa: B017 - the SDK's error type for a 404 varies by transport layer
        anyio.run(session)
    unknown = httpx.delete(f"{front.base}/v1/leases/never-granted", timeout=10)
    assert unknown.status_code == 404 and "unknown lease" in unknown.json()["error"]


def test_a_lease_in_use_is_renewed_past_its_ttl(front: FrontDoor) -> None:
    lease = _lease(front, env_id="env_4", scenario_id="0502-142201", ttl=2)
    for _ in range(8):  # 4 s of use: twice the TTL
        assert httpx.get(f"{front.base}/v1/leases/{lease['lease_id']}/state", timeout=10).status_code == 200
        time.sleep(0.5)
    assert httpx.delete(f"{front.base}/v1/leases/{lease['lease_id']}", timeout=30).status_code == 200


@pytest.mark.parametrize(("body", "status", "reason"), [
    (b"{", 400, "not JSON"),
    (b"[]", 400, "JSON object"),
    (b'{"scenario_id": "x"}', 400, "env_id is required"),
    (b'{"env_id": "env_1"}', 400, "exactly one of"),
    (b'{"env_id": "env_1", "scenario_id": "a", "init_config": {}}', 400, "exactly one of"),
    (b'{"env_id": "env_1", "scenario_id": "0115-091204", "extra": 1}', 400, "unknown field"),
    (b'{"env_id": "env_1", "scenario_id": "0115-091204", "ttl": -1}', 400, "ttl must be"),
    (b'{"env_id": "env_nope", "scenario_id": "x"}', 404, "env_nope"),
    (b'{"env_id": "env_1", "scenario_id": "no-such-scenario"}', 404, "no-such-scenario"),
    (b'{"env_id": "env_1", "init_config": {}}' + b" " * (2 << 20), 413, "over the limit"),
])
def test_bad_lease_requests_are_4xx_with_a_reason(front: FrontDoor, body: bytes, status: int, reason: str) -> None:
    reply = httpx.post(f"{front.base}/v1/leases", content=body, timeout=60,
                       headers={"Content-Type": "application/json"})
    assert reply.status_code == status, reply.text
    assert reason in reply.json()["error"]


def test_routes_and_methods_are_4xx_json(front: FrontDoor) -> None:
    assert httpx.get(f"{front.base}/nowhere", timeout=10).status_code == 404
    wrong = httpx.get(f"{front.base}/v1/leases", timeout=10)
    assert wrong.status_code == 405 and "not allowed" in wrong.json()["error"]
    lease = _lease(front, env_id="env_1", init_config={"members": {}, "books": {}, "loans": {}})
    flag = httpx.delete(f"{front.base}/v1/leases/{lease['lease_id']}?evaluate=maybe", timeout=10)
    assert flag.status_code == 400 and "evaluate must be" in flag.json()["error"]
    rebind = httpx.post(front.base + lease["mcp_url"], json={}, headers={"Host": "evil.example"}, timeout=10)
    assert 400 <= rebind.status_code < 500
    mcp_headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    garbage = httpx.post(front.base + lease["mcp_url"], content=b"{not json", headers=mcp_headers, timeout=10)
    assert 400 <= garbage.status_code < 500, garbage.text
    huge = httpx.post(front.base + lease["mcp_url"], content=b" " * (2 << 20), headers=mcp_headers, timeout=10)
    assert huge.status_code == 413
    assert httpx.delete(f"{front.base}/v1/leases/{lease['lease_id']}", timeout=30).status_code == 200


def test_token_and_lease_cap(local_pool: LocalPool, tmp_path: Path) -> None:
    token = "t0ken-" + os.urandom(12).hex()
    (tmp_path / "token").write_text(token + "\n")
    door = FrontDoor(local_pool.address, "--token-file", str(tmp_path / "token"), "--max-leases", "1")
    try:
        body = {"env_id": "env_4", "scenario_id": "0502-142201"}
        none = httpx.post(f"{door.base}/v1/leases", json=body, timeout=10)
        assert none.status_code == 401 and "missing bearer token" in none.json()["error"]
        wrong = httpx.post(f"{door.base}/v1/leases", json=body, timeout=10, headers={"Authorization": "Bearer x"})
        assert wrong.status_code == 401 and "wrong bearer token" in wrong.json()["error"]
        auth = {"Authorization": f"Bearer {token}"}
        first = httpx.post(f"{door.base}/v1/leases", json=body, timeout=60, headers=auth)
        assert first.status_code == 201, first.text
        capped = httpx.post(f"{door.base}/v1/leases", json=body, timeout=60, headers=auth)
        assert capped.status_code == 429 and "cap of 1" in capped.json()["error"]
        mcp_url = door.base + first.json()["mcp_url"]

        async def session() -> int:
            async with Client(mcp_url, mode="2026-07-28",
                              cache=None) as client:  # the SDK client carries no token itself
                return len((await client.list_tools()).tools)

        with pytest.raises(Exception):  # noqa: B017
            anyio.run(session)
    finally:
        held = len(local_pool.manager.leases)
        err = door.close()
    assert door.process.returncode in (0, -signal.SIGTERM) and "Traceback" not in err, err
    assert len(local_pool.manager.leases) == held - 1  # shutdown released the lease it held


@pytest.mark.parametrize(("listen", "says"), [("0.0.0.0:1", "needs --token-file"), (None, "is in use"),
                                               ("nowhere", "expected HOST:PORT")])
def test_refusals_to_listen_are_one_line(front: FrontDoor, local_pool: LocalPool, listen: str | None,
                                         says: str) -> None:
    run = subprocess.run([CLI, "mcp", "--pool", local_pool.address, "--listen", listen or f"127.0.0.1:{front.port}"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and says in run.stderr and "Traceback" not in run.stderr


def _stdio(pool: str, *args: str) -> StdioServerParameters:
    return StdioServerParameters(command=CLI, args=["mcp", "--stdio", "--pool", pool, *args])


@pytest.mark.parametrize("mode", MODES)
def test_stdio_solves_a_scenario_and_releases_on_closed_stdin(local_pool: LocalPool, mode: str) -> None:
    held = len(local_pool.manager.leases)

    async def session() -> dict[str, Any]:
        async with Client(_stdio(local_pool.address, "--env", "env_1", "--scenario", "0115-091204"),
                          mode=mode) as client:
            assert _as_openai((await client.list_tools()).tools) == _schema("env_1")
            assert len(local_pool.manager.leases) == held + 1
            await _solve(client, SOLUTION)
            bad = await client.call_tool("checkout_book", {"member_id": "M001"})
            assert bad.is_error and bad.content[0].text.startswith("INVALID_ARGUMENTS")
            read = await client.read_resource("envscaler://evaluation")
            return json.loads(read.contents[0].text)

    assert anyio.run(session)["reward"] == 1.0
    deadline = time.monotonic() + 10
    while len(local_pool.manager.leases) != held and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(local_pool.manager.leases) == held


def test_stdio_releases_on_sigterm(local_pool: LocalPool) -> None:
    held = len(local_pool.manager.leases)
    process = subprocess.Popen([CLI, "mcp", "--stdio", "--pool", local_pool.address, "--env", "env_4",
                                "--scenario", "0502-142201"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(local_pool.manager.leases) == held and time.monotonic() < deadline:
            assert process.poll() is None
            time.sleep(0.05)
        assert len(local_pool.manager.leases) == held + 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
        _, err = process.communicate()
    assert b"Traceback" not in err, err
    assert len(local_pool.manager.leases) == held


def test_stdio_without_a_lease_is_one_line(local_pool: LocalPool) -> None:
    run = subprocess.run([CLI, "mcp", "--stdio", "--pool", local_pool.address, "--env", "env_nope", "--scenario",
                          "x"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 2 and "no lease" in run.stderr and "Traceback" not in run.stderr
