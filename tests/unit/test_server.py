"""EnvService over a real Unix socket with the real clients."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from envscaler.client import AsyncEnvClient, EnvClient, EnvClientError
from envscaler.protocol import framing as wire
from envscaler.runtime.trusted.server import MAX_SESSIONS, RunningServer, ServerConfig
from envscaler.spec import Corpus, EnvSpec, Scenario
from envscaler.v1 import env_pb2 as pb
from tests.conftest import serve_env

HOSTILE = '''
class Env:
    def __init__(self, config=None):
        self.n = 0

    def bump(self, by: int = 1) -> dict:
        self.n += by
        return {"success": True, "data": self.n}

    def spin(self) -> dict:
        while True:
            pass

    def _secret(self) -> dict:
        return {"success": True}
'''


@pytest.fixture
def bank(corpus: Corpus, sock_dir: Path) -> Iterator[tuple[RunningServer, EnvClient]]:
    with serve_env(corpus.env("env_4"), corpus.scenarios_of("env_4"), sock_dir) as running, \
            EnvClient(running.address) as client:
        yield running, client


@pytest.fixture
def hostile(sock_dir: Path) -> Iterator[EnvClient]:
    spec = EnvSpec(env_id="env_h", env_class_name="Env", env_class_code=HOSTILE)
    scenario = Scenario(env_id="env_h", task_id="empty", init_config={})
    config = ServerConfig(call_timeout=1.0)
    with serve_env(spec, {"empty": scenario}, sock_dir, config) as running, EnvClient(running.address) as client:
        yield client


def test_describe_serves_the_record_tools(bank: tuple[RunningServer, EnvClient], corpus: Corpus) -> None:
    _, client = bank
    info = client.describe()
    spec = corpus.env("env_4")
    assert info.env_id == "env_4" and info.spec_hash == spec.spec_hash
    assert client.tools == spec.tools
    assert info.scenario_ids == list(corpus.scenarios_of("env_4"))
    assert info.constraints_rules == spec.constraints_rules


def test_calls_before_reset_are_refused(bank: tuple[RunningServer, EnvClient]) -> None:
    _, client = bank
    with pytest.raises(EnvClientError, match="FAILED_PRECONDITION: no episode: call Reset first"):
        client.call("find_customer", {"name": "x"})


def test_bad_requests_get_clear_tool_errors(bank: tuple[RunningServer, EnvClient]) -> None:
    _, client = bank
    client.reset("0502-091533")
    cases = {
        ("teleport", "{}"): ("UNKNOWN_TOOL", "unknown tool 'teleport'"),
        ("_post", "{}"): ("UNKNOWN_TOOL", "private methods are not tools"),
        ("deposit", "{not json"): ("INVALID_ARGUMENTS", "not valid JSON"),
        ("deposit", "[1, 2]"): ("INVALID_ARGUMENTS", "must be a JSON object, got list"),
        ("deposit", '{"account_id": "AC-100"}'): ("INVALID_ARGUMENTS", "missing a required argument: 'amount'"),
        ("deposit", '{"account_id": "AC-100", "amount": 5, "bogus": 1}'):
            ("INVALID_ARGUMENTS", "unexpected keyword argument 'bogus'"),
        ("deposit", json.dumps({"account_id": "x" * (2 << 20), "amount": 1})):
            ("ARGUMENTS_TOO_LARGE", "over the 1048576-byte cap"),
        ("deposit", '{"account_id": "AC-100", "amount": "ten"}'): ("TOOL_EXCEPTION", "TypeError"),
    }
    for (name, raw), (kind, text) in cases.items():
        result = client.call(name, raw)
        assert result.error_kind == kind, (name, raw[:50], result)
        assert text in result.error_message and result.observation.startswith("Error: ")
        assert "Traceback" not in result.error_message and "/" not in result.error_message.split(":")[0]
        assert not result.episode_broken
    assert client.call("deposit", {"account_id": "AC-100", "amount": 5}).ok


def test_state_is_canonical_and_repeatable(bank: tuple[RunningServer, EnvClient]) -> None:
    _, client = bank
    reset = client.reset("0502-142201")
    state = client.state()
    assert state.sha256 == reset.state_sha256 and state.state == reset.state
    client.call("deposit", {"account_id": "AC-300", "amount": 250, "memo": "cash"})
    changed = client.state()
    assert changed.sha256 != reset.state_sha256
    assert client.reset("0502-142201").state_sha256 == reset.state_sha256


def test_reset_errors(bank: tuple[RunningServer, EnvClient]) -> None:
    _, client = bank
    with pytest.raises(EnvClientError, match="NOT_FOUND: unknown scenario 'nope' for env_4"):
        client.reset("nope")
    stub_request = client.stub.Reset
    from envscaler.v1 import env_pb2 as pb

    with pytest.raises(grpc.RpcError) as err:
        stub_request(pb.ResetRequest(init_config_json="[1]"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "must be a JSON object" in err.value.details()


def test_explicit_init_config_and_evaluate_needs_a_scenario(bank: tuple[RunningServer, EnvClient]) -> None:
    _, client = bank
    reset = client.reset(init_config={"accounts": {}})
    assert reset.state["accounts"] == {} and reset.scenario_id == ""
    with pytest.raises(EnvClientError, match="INVALID_ARGUMENT: the episode was reset to an explicit init_config"):
        client.evaluate()
    assert client.evaluate("0502-113020").total == 2


def test_stale_episode_ids_are_refused(bank: tuple[RunningServer, EnvClient]) -> None:
    _, client = bank
    first = client.reset("0502-091533").episode_id
    client.reset("0502-091533")
    client.episode_id = first
    with pytest.raises(EnvClientError, match="is over"):
        client.call("find_customer", {"name": "x"})


def test_scenario_without_checks(corpus: Corpus, sock_dir: Path) -> None:
    spec = corpus.env("env_4")
    sft = Scenario(env_id="env_4", task_id="sft", init_config={}, task="chat")
    with serve_env(spec, {"sft": sft}, sock_dir) as running, EnvClient(running.address) as client:
        client.reset("sft")
        evaluation = client.evaluate()
        assert evaluation.total == 0 and evaluation.reward == 0.0
        assert "no check functions" in evaluation.message


def test_infinite_loop_hits_the_deadline_and_reset_recovers(hostile: EnvClient) -> None:
    hostile.reset("empty")
    started = time.monotonic()
    result = hostile.call("spin")
    assert time.monotonic() - started < 1.0 + 1.0
    assert result.error_kind == "DEADLINE_EXCEEDED" and result.episode_broken
    with pytest.raises(EnvClientError, match="FAILED_PRECONDITION: the episode is broken"):
        hostile.call("bump")
    hostile.reset("empty")
    assert hostile.call("bump", {"by": 2}).result == {"success": True, "data": 2}


def test_callers_shorter_deadline_wins(hostile: EnvClient) -> None:
    hostile.reset("empty")
    hostile.timeout = 0.4
    started = time.monotonic()
    result = hostile.call("spin", timeout=None)
    assert time.monotonic() - started < 1.0
    assert result.error_kind == "DEADLINE_EXCEEDED"


def test_per_call_timeout(hostile: EnvClient) -> None:
    hostile.reset("empty")
    result = hostile.call("spin", timeout=0.2)
    assert result.error_kind == "DEADLINE_EXCEEDED" and "0.2 s deadline" in result.error_message


def test_private_methods_are_not_served(hostile: EnvClient) -> None:
    assert [t["function"]["name"] for t in hostile.tools] == ["bump", "spin"]


def test_health_reports_load_failures(sock_dir: Path) -> None:
    spec = EnvSpec(env_id="env_b", env_class_name="Env", env_class_code="import not_a_module\nclass Env:\n  pass\n")
    with serve_env(spec, {}, sock_dir) as running:
        assert "ModuleNotFoundError" in running.load_error
        with grpc.insecure_channel(running.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            status = health.Check(health_pb2.HealthCheckRequest(service="envscaler.v1.EnvService")).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        with EnvClient(running.address) as client, \
                pytest.raises(EnvClientError, match="FAILED_PRECONDITION: the environment module failed to load"):
            client.reset(init_config={})


def test_async_client_solves_a_scenario(corpus: Corpus, sock_dir: Path) -> None:
    spec = corpus.env("env_6")

    async def run(address: str) -> float:
        async with AsyncEnvClient(address) as client:
            assert len(await client.tools()) == len(spec.tools or [])
            await client.reset("0718-143002")
            for name, args in [("create_ticket", {"project": "WEB", "title": "Invoice PDF shows wrong VAT rate",
                                                  "priority": "high", "labels": ["billing"]}),
                               ("assign_ticket", {"ticket_id": "WEB-3", "user_id": "U2"})]:
                assert (await client.call(name, args)).ok
            assert (await client.state()).state["tickets"]["WEB-3"]["assignee_id"] == "U2"
            return (await client.evaluate()).reward

    with serve_env(spec, corpus.scenarios_of("env_6"), sock_dir) as running:
        assert asyncio.run(run(running.address)) == 1.0


def test_ad_hoc_checks(bank: tuple[RunningServer, EnvClient]) -> None:
    _, client = bank
    client.reset(init_config={"accounts": {"A": {"balance": 5}}})
    evaluation = client.evaluate(checks=[
        ("has A", "def check_func(s):\n    return 'A' in s['accounts']\n"),
        ("rich", "def check_func(s):\n    return s['accounts']['A']['balance'] > 100\n"),
        ("broken", "def check_func(s):\n    raise KeyError('nope')\n"),
    ])
    assert [c.outcome for c in evaluation.checks] == ["PASS", "FAIL", "ERROR"]
    assert evaluation.scenario_id == "" and evaluation.reward == 0.3333


def test_a_session_stream_survives_refusals(bank: tuple[RunningServer, EnvClient]) -> None:
    """On a stream, a refusal answers that one request as a unary RPC's status would; later ones go through."""
    _, client = bank
    with pytest.raises(EnvClientError, match="NOT_FOUND: unknown scenario 'nope'"):
        client.reset("nope")
    stream = client.stream
    client.reset("0502-091533")
    assert client.call("get_account", {"account_id": "AC-100"}).ok
    assert client.stream is stream and stream._call is not None  # one stream all along


def test_open_sessions_are_capped(bank: tuple[RunningServer, EnvClient]) -> None:
    running, _ = bank
    clients = [EnvClient(running.address) for _ in range(MAX_SESSIONS + 1)]
    try:
        for held in clients[:MAX_SESSIONS]:
            held.describe()
        with pytest.raises(EnvClientError, match=f"RESOURCE_EXHAUSTED: this server already holds {MAX_SESSIONS}"):
            clients[-1].describe()
        clients[0].close()
        deadline = time.monotonic() + 5
        while True:  # the server sees the closed stream shortly after
            try:
                assert clients[-1].describe().env_id == "env_4"
                break
            except EnvClientError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        for held in clients:
            held.close()


@pytest.fixture
def patient(sock_dir: Path) -> Iterator[RunningServer]:
    """The hostile environment on a server whose own deadline (30 s) is far past its callers'."""
    spec = EnvSpec(env_id="env_h", env_class_name="Env", env_class_code=HOSTILE)
    scenario = Scenario(env_id="env_h", task_id="empty", init_config={})
    with serve_env(spec, {"empty": scenario}, sock_dir, ServerConfig(call_timeout=30.0)) as running:
        yield running


def test_a_blocking_stream_gives_up_at_its_deadline(patient: RunningServer) -> None:
    """The server answers within the caller's deadline; a server that never answers is left by the client."""
    running = patient
    with EnvClient(running.address, timeout=0.5) as client:
        client.reset("empty")
        running.servicer.lock.acquire()  # the server is stuck: nothing answers
        try:
            started = time.monotonic()
            with pytest.raises(EnvClientError, match=r"DEADLINE_EXCEEDED: no answer within 0\.5 s"):
                client.call("bump")
            assert time.monotonic() - started < 2.0
        finally:
            running.servicer.lock.release()
        assert client.call("bump").ok  # a fresh stream on the next call


@pytest.fixture
def bank_socket(bank: tuple[RunningServer, EnvClient]) -> Iterator[tuple[RunningServer, EnvClient]]:
    running, _ = bank
    assert running.session_socket is not None
    with EnvClient(running.address, session_socket=running.session_socket.path) as client:
        yield running, client


def test_the_session_socket_serves_an_episode(bank_socket: tuple[RunningServer, EnvClient]) -> None:
    _, client = bank_socket
    assert client.describe().env_id == "env_4"
    with pytest.raises(EnvClientError, match="NOT_FOUND: unknown scenario 'nope'"):
        client.reset("nope")
    client.reset("0502-091533")
    assert client.call("get_account", {"account_id": "AC-100"}).ok
    assert client.call("teleport").error_kind == "UNKNOWN_TOOL"
    assert 0.0 <= client.evaluate().reward <= 1.0


def test_the_session_socket_refuses_bad_frames_in_band(bank_socket: tuple[RunningServer, EnvClient]) -> None:
    running, client = bank_socket
    assert running.session_socket is not None
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(running.session_socket.path)
        reader = wire.FrameReader(raw)
        raw.sendall(wire.HEADER.pack(3) + b"\xff\xfe\xfd" + wire.HEADER.pack(0))
        garbage, empty = pb.SessionResponse.FromString(reader.read()), pb.SessionResponse.FromString(reader.read())
        assert garbage.error.message.startswith("malformed envscaler.v1.SessionRequest")
        assert empty.error.message.startswith("empty envscaler.v1.SessionRequest")
        raw.sendall(wire.HEADER.pack(1 << 30))  # a length over the cap: answered, then closed
        huge = pb.SessionResponse.FromString(reader.read())
        assert huge.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and "over the" in huge.error.message
        with pytest.raises(wire.FrameError, match="closed"):
            reader.read()
    assert client.describe().env_id == "env_4"  # the server is fine


def test_the_session_socket_shares_the_session_cap(bank: tuple[RunningServer, EnvClient]) -> None:
    running, _ = bank
    assert running.session_socket is not None
    clients = [EnvClient(running.address, session_socket=running.session_socket.path)
               for _ in range(MAX_SESSIONS + 1)]
    try:
        for held in clients[:MAX_SESSIONS]:
            held.describe()
        with pytest.raises(EnvClientError, match="RESOURCE_EXHAUSTED"):
            clients[-1].describe()
        clients[0].close()
        time.sleep(0.2)
        assert clients[-1].describe().env_id == "env_4"  # it reconnects once a slot is free
    finally:
        for held in clients:
            held.close()


def test_the_session_socket_gives_up_at_its_deadline(patient: RunningServer) -> None:
    running = patient
    assert running.session_socket is not None
    with EnvClient(running.address, timeout=0.5, session_socket=running.session_socket.path) as client:
        client.reset("empty")
        assert client.call("spin").error_kind == "DEADLINE_EXCEEDED"  # the caller's deadline reaches the worker
        running.servicer.lock.acquire()
        try:
            with pytest.raises(EnvClientError, match=r"DEADLINE_EXCEEDED: no answer within 0\.5 s"):
                client.call("bump")
        finally:
            running.servicer.lock.release()
        client.reset("empty")
        assert client.call("bump").ok


def test_an_async_client_on_the_session_socket(bank: tuple[RunningServer, EnvClient]) -> None:
    running, _ = bank
    assert running.session_socket is not None
    path = running.session_socket.path

    async def episode() -> float:
        async with AsyncEnvClient(running.address, session_socket=path) as client:
            await client.reset("0502-091533")
            assert (await client.call("get_account", {"account_id": "AC-100"})).ok
            return (await client.evaluate()).reward

    assert 0.0 <= asyncio.run(episode()) <= 1.0
