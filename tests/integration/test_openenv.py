"""The OpenEnv front door driven by OpenEnv's own clients from PyPI (openenv-core: GenericEnvClient, MCPToolClient),
real WebSocket and HTTP on loopback, the `envscaler-runtime openenv` process, and a real pool of hardened containers.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import docker
import httpx2 as httpx
import pytest
from openenv.core import GenericEnvClient
from openenv.core.env_server.mcp_types import CallToolAction
from openenv.core.env_server.types import Action
from openenv.core.mcp_client import MCPToolClient
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from envscaler.pool.runner import LocalPool, PoolOptions
from tests.conftest import SOLUTIONS

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "envscaler-runtime")
SOLVED = [SOLUTIONS / "env_1__0115-091204.jsonl", SOLUTIONS / "env_4__0502-142201.jsonl"]
ENVS = ["env_1", "env_4"]


@pytest.fixture(scope="module")
def local_pool(engine: docker.DockerClient, example_images: dict[str, str]) -> Iterator[LocalPool]:
    options = PoolOptions(size=4, lease_ttl=60, acquire_wait=60, only=ENVS)
    with LocalPool(options=options) as local:
        yield local


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Door:
    """`envscaler-runtime openenv` as a user runs it."""

    def __init__(self, pool: str, *extra: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([CLI, "openenv", "--pool", pool, "--listen", f"127.0.0.1:{self.port}",
                                         *extra], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stderr.read() if self.process.stderr else ""
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError("the OpenEnv front door did not listen within 30 s")

    def url(self, env_id: str) -> str:
        return f"{self.base}/envs/{env_id}"

    def close(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        try:
            _, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        assert self.process.returncode in (0, -signal.SIGTERM), err
        assert "Traceback" not in err, err
        return err


@pytest.fixture(scope="module")
def door(local_pool: LocalPool) -> Iterator[Door]:
    front = Door(local_pool.address)
    yield front
    err = front.close()
    assert "envscaler-runtime openenv: http://127.0.0.1:" in err  # where it listens, first
    assert "stop with Ctrl-C or SIGTERM" in err


def leases(local_pool: LocalPool) -> int:
    assert local_pool.manager is not None
    return len(local_pool.manager.leases)


def wait_for_leases(local_pool: LocalPool, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while leases(local_pool) != count:
        assert time.monotonic() < deadline, f"{leases(local_pool)} leases held, expected {count}"
        time.sleep(0.05)


def _calls(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _schema(env_id: str) -> list[dict[str, Any]]:
    out = subprocess.run([CLI, "schema", "--env", env_id], capture_output=True, text=True, check=True).stdout
    return [{"name": t["function"]["name"], "description": t["function"]["description"],
             "input_schema": t["function"]["parameters"]} for t in json.loads(out)]


@pytest.mark.parametrize("solution", SOLVED, ids=lambda p: p.stem)
def test_generic_client_solves_a_scenario_for_its_reward(door: Door, local_pool: LocalPool, solution: Path) -> None:
    env_id, scenario = solution.stem.split("__")
    with GenericEnvClient(base_url=door.url(env_id)).sync() as env:
        tools = env.step({"type": "list_tools"})  # OpenEnv: tools are listed without a reset
        assert tools.observation["tools"] == _schema(env_id) and not tools.done
        reset = env.reset(scenario=scenario, seed=3)
        assert reset.observation["scenario_id"] == scenario and not reset.done and reset.reward is None
        assert reset.observation["task"] == local_pool.corpus.scenarios[env_id][scenario].task
        assert reset.observation["metadata"]["task"] == reset.observation["task"]  # for MCPToolClient
        assert leases(local_pool) == 1
        for number, call in enumerate(_calls(solution), 1):
            step = env.step({"type": "call_tool", "tool_name": call["name"], "arguments": call["arguments"]})
            assert step.observation["error"] is None, step.observation
            assert step.observation["result"]["content"][0]["text"]  # what the agent sees
            assert not step.done and step.reward is None
            assert env.state()["step_count"] == number
        state = env.state()
        assert state["scenario_id"] == scenario and isinstance(state["state"], dict) and not state["done"]
        final = env.step({"type": "final_answer", "answer": "All done."})
        assert final.done and final.reward == 1.0
        evaluation = final.observation["evaluation"]
        assert evaluation["passed"] == evaluation["total"] > 0
        assert env.state()["done"] and env.state()["reward"] == 1.0
        # The same session goes on: a new reset, a final answer with nothing done scores what the checks say.
        env.reset(scenario=scenario)
        assert leases(local_pool) == 1  # the session's one lease, reset again
        with local_pool.pool.session(env_id, scenario=scenario) as direct:
            expected = direct.evaluate().reward
        unsolved = env.step({"type": "final_answer", "answer": "I did nothing."})
        assert unsolved.done and unsolved.reward == expected < 1.0
    wait_for_leases(local_pool, 0)


def test_reset_without_a_scenario_draws_one_by_seed(door: Door, local_pool: LocalPool) -> None:
    scenarios = sorted(local_pool.corpus.scenarios["env_1"])
    with GenericEnvClient(base_url=door.url("env_1")).sync() as env:
        drawn = [env.reset(seed=seed).observation["scenario_id"] for seed in range(8)]
        again = [env.reset(seed=seed).observation["scenario_id"] for seed in range(8)]
        assert drawn == again and set(drawn) <= set(scenarios) and len(set(drawn)) > 1
        assert env.reset().observation["scenario_id"] in scenarios
        assert env.reset(episode_id="my-episode").observation["episode_id"] == "my-episode"
        assert env.state()["episode_id"] == "my-episode"
    wait_for_leases(local_pool, 0)


class FinalAnswerAction(Action):
    """What an OpenEnv user writes to end an episode with MCPToolClient (GenericEnvClient takes the dict)."""

    type: Literal["final_answer"] = "final_answer"
    answer: str = ""


def test_mcp_tool_client_lists_and_calls_tools(door: Door, local_pool: LocalPool) -> None:
    solution = SOLVED[0]
    with MCPToolClient(base_url=door.url("env_1")).sync() as env:
        reset = env.reset(scenario="0115-091204")
        assert reset.observation.metadata["scenario_id"] == "0115-091204"
        assert [t.name for t in env.list_tools()] == [t["name"] for t in _schema("env_1")]
        for call in _calls(solution):
            # Its call_tool(name, **arguments) cannot pass an argument called `name`: the action form can.
            step = env.step(CallToolAction(tool_name=call["name"], arguments=call["arguments"]))
            assert step.observation.error is None and isinstance(step.observation.result["data"], dict)
        assert isinstance(env.call_tool("search_books", query="Sapiens"), dict)
        with pytest.raises(RuntimeError, match=r"UNKNOWN_TOOL: unknown tool 'no_such_tool'.*tool_not_found"):
            env.call_tool("no_such_tool")
        with pytest.raises(RuntimeError, match=r"INVALID_ARGUMENTS.*invalid_args"):
            env.call_tool("search_books", no_such_argument=1)
        # MCPToolClient sends a pydantic action as its model_dump (a dict it would stringify): an OpenEnv Action.
        final = env.step(FinalAnswerAction(answer="Done."))
        assert final.done and final.reward == 1.0

    async def production() -> None:  # its HTTP mode: JSON-RPC sessions on POST /mcp
        client = MCPToolClient(base_url=door.url("env_4"))
        client.use_production_mode = True
        try:
            assert [t.name for t in await client.list_tools()] == [t["name"] for t in _schema("env_4")]
            result = await client.call_tool("list_accounts", customer_id="C001")
            assert isinstance(result, dict)
            assert leases(local_pool) == 1  # the HTTP session's lease
            with pytest.raises(RuntimeError, match="UNKNOWN_TOOL"):
                await client.call_tool("no_such_tool")
        finally:
            await client.close()  # openenv/session/close

    asyncio.run(production())
    wait_for_leases(local_pool, 0)


async def _frames(url: str, messages: list[str | bytes]) -> list[dict[str, Any]]:
    async with connect(url) as ws:
        replies = []
        for message in messages:
            await ws.send(message)
            replies.append(json.loads(await ws.recv()))
        return replies


def test_bad_messages_and_actions_get_openenv_errors(door: Door, local_pool: LocalPool) -> None:
    ws = door.url("env_1").replace("http://", "ws://") + "/ws"
    call = {"type": "step", "data": {"type": "call_tool", "tool_name": "search_books", "arguments": {"query": "x"}}}
    replies = asyncio.run(_frames(ws, [
        json.dumps(call),  # before any reset
        "{not json",
        b"\xff\xfe",
        "[1, 2]",
        '{"type": "jump"}',
        '{"type": "step"}',
        '{"type": "step", "data": {"type": "teleport"}}',
        '{"type": "step", "data": {"type": "call_tool", "arguments": {}}}',
        '{"type": "reset", "data": {"scenario": "no-such-scenario"}}',
        '{"type": "reset", "data": {"scenaro": "0115-091204"}}',
        '{"type": "reset", "data": {"seed": -4}}',
        '{"type": "reset", "data": {"scenario": "0115-091204"}}',
        '{"type": "step", "data": {"type": "call_tool", "tool_name": "no_such_tool"}}',
        '{"type": "step", "data": {"type": "call_tool", "tool_name": "search_books", "arguments": {"q": 1}}}',
        '{"type": "step", "data": {"type": "call_tool", "tool_name": "_private"}}',
        '{"type": "step", "data": {"type": "final_answer", "answer": "done"}}',
        json.dumps(call),  # after the episode ended
        '{"type": "mcp", "data": {"jsonrpc": "2.0", "method": "tools/launch", "id": 9}}',
        '{"type": "state"}',
        '{"type": "reset", "data": {"scenario": "0115-091204"}}',
        '{"type": "mcp", "data": {"jsonrpc": "2.0", "method": "tools/call", "id": 10, '
        '"params": {"name": "search_books", "arguments": {"query": "Sapiens"}}}}',
    ]))
    errors = [(r["data"]["code"], r["data"]["message"]) if r["type"] == "error" else r for r in replies]
    assert errors[0][0] == "EXECUTION_ERROR" and "reset first" in errors[0][1]
    assert errors[1][0] == errors[2][0] == "INVALID_JSON"
    assert errors[3] == ("VALIDATION_ERROR", "message: expected a JSON object, not list")
    assert errors[4][0] == "UNKNOWN_TYPE" and "jump" in errors[4][1]
    assert errors[5] == ("VALIDATION_ERROR", "message.data: step needs data (the action)")
    assert errors[6][0] == "VALIDATION_ERROR" and "'teleport' is not an action here" in errors[6][1]
    assert errors[7] == ("VALIDATION_ERROR", "action.tool_name: Field required")
    assert errors[8][0] == "VALIDATION_ERROR" and "'no-such-scenario' is not a scenario of env_1" in errors[8][1]
    assert errors[9][0] == "VALIDATION_ERROR" and "['scenaro']" in errors[9][1]
    assert errors[10][0] == "VALIDATION_ERROR" and errors[10][1].startswith("reset.seed")
    assert replies[11]["type"] == "observation"
    unknown, wrong_args, private = (replies[i]["data"]["observation"]["error"] for i in (12, 13, 14))
    assert unknown["error_type"] == "tool_not_found" and "UNKNOWN_TOOL" in unknown["message"]
    assert wrong_args["error_type"] == "invalid_args" and "INVALID_ARGUMENTS" in wrong_args["message"]
    assert private["error_type"] == "tool_not_found"
    assert replies[15]["data"]["done"] and replies[15]["data"]["reward"] == 0.0  # nothing was borrowed
    assert errors[16][0] == "EXECUTION_ERROR" and "the episode is over" in errors[16][1]
    assert replies[17]["data"]["error"]["code"] == -32601
    assert replies[18]["data"]["done"] and replies[18]["data"]["step_count"] == 4
    assert replies[20]["data"]["id"] == 10 and replies[20]["data"]["result"]["data"]["success"]
    for _code, message in [e for e in errors if isinstance(e, tuple)]:
        assert "\n" not in message and "Traceback" not in message, message
    wait_for_leases(local_pool, 0)


def test_http_answers_are_openenv_shaped(door: Door, local_pool: LocalPool) -> None:
    url = door.url("env_4")
    assert httpx.get(url + "/health").json() == {"status": "healthy"}
    assert httpx.get(url + "/metadata").json()["name"] == "env_4"
    assert "call_tool" in json.dumps(httpx.get(url + "/schema").json()["action"])
    assert httpx.get(url + "/state").json()["step_count"] == 0
    reset = httpx.post(url + "/reset", json={"scenario": "0502-142201"}, timeout=60)
    assert reset.status_code == 200 and set(reset.json()) == {"observation", "reward", "done"}
    assert reset.json()["observation"]["scenario_id"] == "0502-142201"
    tools = httpx.post(url + "/step", json={"action": {"type": "list_tools"}}, timeout=30)
    assert [t["name"] for t in tools.json()["observation"]["tools"]] == [t["name"] for t in _schema("env_4")]
    stateless = httpx.post(url + "/step", json={"action": {"type": "call_tool", "tool_name": "find_customer"}})
    assert stateless.status_code == 409 and "WebSocket" in stateless.json()["detail"]
    for path, body, status, says in [
        ("/step", b"{nope", 400, "not JSON"),
        ("/step", b'{"act": {}}', 422, "with an action"),
        ("/step", b'{"action": {"type": "call_tool"}}', 422, "action.tool_name: Field required"),
        ("/reset", b'{"seed": "x"}', 422, "reset.seed"),
        ("/reset", b" " * (2 << 20), 413, "over the limit"),
    ]:
        reply = httpx.post(url + path, content=body, timeout=30)
        assert reply.status_code == status and says in reply.json()["detail"], reply.text
    assert httpx.get(door.url("env_nope") + "/health").status_code == 404
    assert "unknown environment 'env_nope'" in httpx.get(door.url("env_nope") + "/health").json()["detail"]
    assert httpx.get(door.base + "/nowhere").status_code == 404
    assert httpx.get(url + "/reset").status_code == 405
    parse = httpx.post(url + "/mcp", content=b"{nope").json()
    assert parse["error"]["code"] == -32700
    no_session = httpx.post(url + "/mcp", json={"jsonrpc": "2.0", "method": "tools/call", "id": 1,
                                                "params": {"name": "find_customer"}}).json()
    assert no_session["error"]["code"] == -32602 and "openenv/session/create" in no_session["error"]["message"]
    created = httpx.post(url + "/mcp", json={"jsonrpc": "2.0", "method": "openenv/session/create", "id": 2},
                         timeout=60).json()["result"]
    elsewhere = httpx.post(door.url("env_1") + "/mcp", json={
        "jsonrpc": "2.0", "method": "tools/call", "id": 3,
        "params": {"name": "search_books", "arguments": {"query": "x"}, "session_id": created["session_id"]}}).json()
    assert "unknown session_id" in elsewhere["error"]["message"]  # a session id is good for its environment only
    closed = httpx.post(url + "/mcp", json={"jsonrpc": "2.0", "method": "openenv/session/close", "id": 4,
                                            "params": {"session_id": created["session_id"]}}, timeout=30).json()
    assert closed["result"] == {"session_id": created["session_id"], "closed": True}
    listing = httpx.get(door.base + "/envs").json()["envs"]
    assert [e["env_id"] for e in listing] == ENVS and listing[0]["base_url"] == "/envs/env_1"
    wait_for_leases(local_pool, 0)


DROPPER = textwrap.dedent("""
    import os, sys
    from openenv.core import GenericEnvClient
    env = GenericEnvClient(base_url=sys.argv[1]).sync()
    env.connect()
    env.reset(scenario="0115-091204")
    env.step({"type": "call_tool", "tool_name": "search_books", "arguments": {"query": "Dune"}})
    print("mid-episode", flush=True)
    sys.stdin.readline()
""")


def test_a_websocket_dropped_mid_episode_gives_its_lease_back(door: Door, local_pool: LocalPool) -> None:
    wait_for_leases(local_pool, 0)
    client = subprocess.Popen([sys.executable, "-c", DROPPER, door.url("env_1")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout is not None and client.stdout.readline().strip() == "mid-episode"
        assert leases(local_pool) == 1
        client.kill()  # no close frame, no goodbye: the connection just drops
        client.wait(timeout=10)
        wait_for_leases(local_pool, 0)
    finally:
        if client.poll() is None:
            client.kill()
    # The door is unharmed: the next session leases and plays.
    with GenericEnvClient(base_url=door.url("env_1")).sync() as env:
        assert env.reset(scenario="0115-091204").observation["scenario_id"] == "0115-091204"
    wait_for_leases(local_pool, 0)


def test_idle_sessions_and_shutdown_give_leases_back(local_pool: LocalPool) -> None:
    wait_for_leases(local_pool, 0)
    idle = Door(local_pool.address, "--session-timeout", "2")
    try:
        created = httpx.post(idle.url("env_4") + "/mcp", json={
            "jsonrpc": "2.0", "method": "openenv/session/create", "params": {"scenario": "0502-142201"}, "id": 1},
            timeout=60).json()
        assert created["result"]["scenario_id"] == "0502-142201" and leases(local_pool) == 1
        wait_for_leases(local_pool, 0, timeout=20)  # nobody used the HTTP session: its lease went back
        gone = httpx.post(idle.url("env_4") + "/mcp", json={
            "jsonrpc": "2.0", "method": "tools/call", "id": 2,
            "params": {"name": "find_customer", "session_id": created["result"]["session_id"]}}).json()
        assert "unknown session_id" in gone["error"]["message"]

        async def idle_websocket() -> str:
            async with connect(idle.url("env_1").replace("http", "ws") + "/ws") as ws:
                await ws.send(json.dumps({"type": "reset", "data": {}}))
                assert json.loads(await ws.recv())["type"] == "observation"
                assert leases(local_pool) == 1
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), timeout=20)
                return str(closed.value)

        assert "idle for more than 2 s" in asyncio.run(idle_websocket())
        wait_for_leases(local_pool, 0)
    finally:
        idle.close()
    # A session open when the door stops: SIGTERM releases its lease.
    door = Door(local_pool.address)
    try:
        env = GenericEnvClient(base_url=door.url("env_1")).sync()
        env.connect()
        env.reset(scenario="0115-091204")
        assert leases(local_pool) == 1
    finally:
        door.close()
    wait_for_leases(local_pool, 0)
    with pytest.raises(Exception):  # noqa: B017  (closed by the server)
        env.reset()
    env.close()


def test_host_and_origin_are_checked(door: Door, local_pool: LocalPool) -> None:
    url = door.url("env_1")
    rebinding = httpx.post(url + "/reset", json={}, headers={"Host": f"evil.example:{door.port}"})
    assert rebinding.status_code == 421 and "evil.example" in rebinding.json()["detail"]
    cross_site = httpx.post(url + "/reset", json={}, headers={"Origin": "http://evil.example"})
    assert cross_site.status_code == 403
    assert httpx.post(url + "/reset", json={}, headers={"Origin": f"http://localhost:{door.port}"},
                      timeout=60).status_code == 200

    async def handshake(name: str, headers: dict[str, str]) -> int:
        # The URL's name goes in the Host header; the connection goes to loopback all the same (as after rebinding).
        try:
            async with connect(f"ws://{name}:{door.port}/envs/env_1/ws", host="127.0.0.1", port=door.port,
                               additional_headers=headers):
                return 101
        except InvalidStatus as exc:
            return int(exc.response.status_code)

    assert asyncio.run(handshake("evil.example", {})) == 421
    assert asyncio.run(handshake("127.0.0.1", {"Origin": "http://evil.example"})) == 403
    assert asyncio.run(handshake("localhost", {})) == 101
    wait_for_leases(local_pool, 0)


def test_a_token_guards_the_door(local_pool: LocalPool, tmp_path: Path) -> None:
    token = "t0ken-" + os.urandom(12).hex()
    (tmp_path / "token").write_text(token + "\n")
    guarded = Door(local_pool.address, "--token-file", str(tmp_path / "token"))
    try:
        url = guarded.url("env_1")
        none = httpx.get(url + "/health")
        assert none.status_code == 401 and "missing token" in none.json()["detail"]
        assert httpx.get(url + "/health", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert httpx.get(url + "/health", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        with pytest.raises(ConnectionError, match="401"), GenericEnvClient(base_url=url).sync() as env:
            env.reset()
        # OpenEnv's clients take no headers: the token rides in the URL, sent as Basic auth.
        with GenericEnvClient(base_url=url.replace("http://", f"http://openenv:{token}@")).sync() as env:
            assert env.reset(scenario="0115-091204").observation["scenario_id"] == "0115-091204"
    finally:
        guarded.close()
    wait_for_leases(local_pool, 0)
    refused = subprocess.run([CLI, "openenv", "--pool", local_pool.address, "--listen", "0.0.0.0:1"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "needs --token-file" in refused.stderr and "Traceback" not in refused.stderr


def test_the_docs_example_runs(door: Door, local_pool: LocalPool) -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "openenv.md").read_text()
    example = page.split("```python\n", 1)[1].split("```", 1)[0]
    run = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OPENENV_URL": door.url("env_1")})
    assert run.returncode == 0, run.stderr
    assert "reward 1.0 done True" in run.stdout and "6 steps" in run.stdout, run.stdout  # five calls, the answer
    wait_for_leases(local_pool, 0)
