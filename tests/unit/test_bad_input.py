"""Bad input never crashes anything and never answers with a traceback: garbage on
every EnvService method, fuzzed tool arguments, fuzzed spec files and code."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envscaler.client import EnvClient
from envscaler.runtime.trusted.server import RunningServer
from envscaler.spec import Corpus, SpecError, load_corpus
from envscaler.spec.toolschema import SchemaError, derive_tools
from envscaler.v1 import env_pb2 as pb
from tests.conftest import serve_env

METHODS = ["Describe", "Reset", "CallTool", "GetState", "Evaluate", "EndEpisode"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, EnvClient]]:
    corpus = load_corpus()
    with serve_env(corpus.env("env_3"), corpus.scenarios_of("env_3"), tmp_path_factory.mktemp("bad")) as running, \
            EnvClient(running.address) as client:
        client.reset("0402-151230")
        yield running, client


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("payload", [b"\xff\xfe\xfd", b"\x0a\xff\xff\xff\xff\x0f", b"\x12\xff" * 50])
def test_garbage_on_every_method(server: tuple[RunningServer, EnvClient], method: str, payload: bytes) -> None:
    running, client = server
    with grpc.insecure_channel(running.address) as channel:
        call = channel.unary_unary(f"/envscaler.v1.EnvService/{method}")
        with pytest.raises(grpc.RpcError) as err:
            call(payload, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith("malformed envscaler.v1.") and "Traceback" not in err.value.details()
    client.reset("0402-151230")
    assert client.call("get_order", {"order_id": "O1001"}).ok


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["get_order", "create_order", "search_products", "nope", "_private", ""]),
       raw=st.one_of(st.text(max_size=200), st.builds(json.dumps, st.recursive(
           st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
           lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children,
                                                                             max_size=3), max_leaves=10))))
def test_fuzzed_tool_calls_get_answers(server: tuple[RunningServer, EnvClient], name: str, raw: str) -> None:
    _, client = server
    result = client.call(name, raw)
    if not result.ok:
        assert result.error_kind in ("UNKNOWN_TOOL", "INVALID_ARGUMENTS", "TOOL_EXCEPTION")
        assert "Traceback" not in result.error_message
    if result.episode_broken:  # pragma: no cover - would be a finding
        pytest.fail(f"{name}({raw!r}) broke the episode: {result.error_message}")


record_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                             lambda children: st.lists(children, max_size=3)
                             | st.dictionaries(st.sampled_from(["env_id", "env_class_name", "env_class_code", "tools",
                                                                "task_id", "init_config", "checklist_with_func",
                                                                "check_func", "x"]), children, max_size=5),
                             max_leaves=15)


@settings(max_examples=150, deadline=None)
@given(envs=record_values, scenarios=record_values)
def test_fuzzed_spec_files_load_or_say_why(envs: object, scenarios: object) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env_path, scen_path = Path(tmp) / "envs.json", Path(tmp) / "scen.jsonl"
        env_path.write_text(json.dumps(envs))
        scen_path.write_text(json.dumps(scenarios) + "\n{broken" * (isinstance(scenarios, int)))
        try:
            corpus = load_corpus(env_path, scen_path, strict=False)
        except SpecError as exc:
            assert str(exc) and "Traceback" not in str(exc)
        else:
            assert isinstance(corpus, Corpus)


@settings(max_examples=150, deadline=None)
@given(code=st.text(max_size=300), class_name=st.sampled_from(["Env", "", "X"]))
def test_fuzzed_code_yields_tools_or_a_schema_error(code: str, class_name: str) -> None:
    try:
        tools = derive_tools(code, class_name)
    except SchemaError as exc:
        assert str(exc)
    else:
        assert isinstance(tools, list)


def test_huge_arguments_are_refused_in_band(server: tuple[RunningServer, EnvClient]) -> None:
    _, client = server
    result = client.call("search_products", json.dumps({"query": "x" * (3 << 20)}))
    assert result.error_kind == "ARGUMENTS_TOO_LARGE"


def test_garbage_on_a_session_stream_is_answered_in_band(server: tuple[RunningServer, EnvClient]) -> None:
    """A malformed or empty message gets an error of its own; the stream stays open for the next one."""
    running, _ = server
    with grpc.insecure_channel(running.address) as channel:
        stream = channel.stream_stream("/envscaler.v1.EnvService/Session")
        good = pb.SessionRequest(describe=pb.DescribeRequest()).SerializeToString()
        replies = [pb.SessionResponse.FromString(r)
                   for r in stream(iter([b"\xff\xfe\xfd", b"", good]), timeout=10)]
    assert [r.WhichOneof("response") for r in replies] == ["error", "error", "describe"]
    assert replies[0].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert replies[0].error.message.startswith("malformed envscaler.v1.SessionRequest")
    assert "empty envscaler.v1.SessionRequest: set one of describe, reset, call_tool" in replies[1].error.message
    assert replies[2].describe.env_id == "env_3"
