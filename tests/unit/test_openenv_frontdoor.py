"""The OpenEnv front door's pure parts: the wire shapes, the guard's decisions and the session phase table."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from envscaler.client.models import ToolResult
from envscaler.frontdoor.openenv.actions import (
    CallTool,
    FinalAnswer,
    Invalid,
    InvalidJson,
    ListTools,
    Refused,
    UnknownType,
    call_observation,
    parse_action,
    parse_message,
    parse_reset,
)
from envscaler.frontdoor.openenv.app import host_of, refusal
from envscaler.frontdoor.openenv.cli import allowed_hosts
from envscaler.frontdoor.openenv.session import REFUSALS, TRANSITIONS, advance, pick_scenario

LOOPBACK = ("127.0.0.1", "localhost", "::1")
TOKEN = b"s3cret-token-0123456789"


def test_actions_of_the_tool_convention() -> None:
    assert parse_action({"type": "list_tools"}) == ListTools()
    assert parse_action({"type": "call_tool", "tool_name": "f", "arguments": {"a": 1}}) == \
        CallTool(tool_name="f", arguments={"a": 1})
    assert parse_action({"tool_name": "f"}) == CallTool(tool_name="f")  # OpenEnv's CallToolAction defaults its type
    assert parse_action({"type": "final_answer", "answer": "done"}) == FinalAnswer(answer="done")


@pytest.mark.parametrize(("action", "says"), [
    (["call_tool"], "action: expected a JSON object, not list"),
    ({}, "action: no type; expected one of list_tools, call_tool, final_answer"),
    ({"type": "jump"}, "action.type: 'jump' is not an action here"),
    ({"type": 3}, "action.type: '3' is not an action here"),
    ({"type": "call_tool"}, "action.tool_name: Field required"),
    ({"type": "call_tool", "tool_name": ""}, "action.tool_name: String should have at least 1 character"),
    ({"type": "call_tool", "tool_name": "f", "arguments": "{}"}, "action.arguments: Input should be a valid dict"),
    ({"type": "call_tool", "tool_name": "f", "args": {}}, "action.args: Extra inputs are not permitted"),
    ({"type": "list_tools", "tool_name": "f"}, "action.tool_name: Extra inputs are not permitted"),
    ({"type": "final_answer", "answer": 42}, "action.answer: Input should be a valid string"),
])
def test_bad_actions_name_their_fault(action: Any, says: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_action(action)
    assert caught.value.message.startswith(says), caught.value.message
    assert "\n" not in caught.value.message
    assert caught.value.frame() == {"type": "error", "data": {"message": caught.value.message,
                                                             "code": "VALIDATION_ERROR"}}


def test_reset_arguments() -> None:
    assert parse_reset({}).scenario is None
    args = parse_reset({"scenario": "s1", "seed": 7, "episode_id": "e"})
    assert (args.scenario, args.seed, args.episode_id) == ("s1", 7, "e")
    for data, says in [({"scenaro": "s"}, "unknown argument(s) ['scenaro']"), ({"seed": -1}, "reset.seed"),
                       ({"seed": True}, "reset.seed"), ({"scenario": 5}, "reset.scenario"), ([1], "JSON object")]:
        with pytest.raises(Invalid, match=None) as caught:
            parse_reset(data)
        assert says in caught.value.message


@pytest.mark.parametrize(("raw", "error", "says"), [
    ("{nope", InvalidJson, "Invalid JSON"),
    (b"\xff\xfe", InvalidJson, "Invalid JSON"),
    ("[1, 2]", Invalid, "message: expected a JSON object, not list"),
    ('{"type": "jump"}', UnknownType, "Unknown message type: jump"),
    ('{"data": {}}', UnknownType, "Unknown message type: None"),
    ('{"type": "step"}', Invalid, "message.data: step needs data"),
    ('{"type": "state", "data": {}}', Invalid, "state takes no field(s) ['data']"),
])
def test_bad_messages_get_openenvs_codes(raw: str | bytes, error: type[Exception], says: str) -> None:
    with pytest.raises(error) as caught:
        parse_message(raw)
    assert says in str(caught.value)


def test_messages() -> None:
    assert parse_message('{"type": "reset", "data": {"seed": 1}}') == ("reset", {"seed": 1})
    assert parse_message('{"type": "state"}') == ("state", {})
    assert parse_message(b'{"type": "close"}') == ("close", {})


def test_tool_results_in_openenvs_shapes() -> None:
    ok = call_observation("f", ToolResult(name="f", result=[1], observation="[1]"))
    assert ok == {"tool_name": "f", "error": None, "result": {
        "content": [{"type": "text", "text": "[1]"}], "structured_content": {"result": [1]}, "data": [1],
        "is_error": False}}
    for kind, error_type in [("UNKNOWN_TOOL", "tool_not_found"), ("INVALID_ARGUMENTS", "invalid_args"),
                             ("DEADLINE_EXCEEDED", "timeout"), ("TOOL_EXCEPTION", "execution_error")]:
        failed = call_observation("f", ToolResult(name="f", observation="x", error_kind=kind, error_message="why"))
        assert failed == {"tool_name": "f", "result": None,
                          "error": {"error_type": error_type, "message": f"{kind}: why"}}


def test_host_names() -> None:
    assert host_of("127.0.0.1:8000") == "127.0.0.1"
    assert host_of("LocalHost") == "localhost"
    assert host_of("[::1]:8000") == "::1"
    assert host_of("::1") == "::1"
    assert allowed_hosts("0.0.0.0", ["Gpu-Box"]) == (*LOOPBACK, "gpu-box")
    assert allowed_hosts("10.0.0.5", []) == (*LOOPBACK, "10.0.0.5")


def _basic(user: bytes, password: bytes) -> bytes:
    return b"Basic " + base64.b64encode(user + b":" + password)


@pytest.mark.parametrize(("headers", "token", "verdict"), [
    ({b"host": b"127.0.0.1:8000"}, None, None),
    ({b"host": b"localhost:8000", b"origin": b"http://localhost:3000"}, None, None),
    ({}, None, 421),
    ({b"host": b"evil.example:8000"}, None, 421),  # a DNS-rebinding page: its own name in Host
    ({b"host": b"127.0.0.1:8000", b"origin": b"http://evil.example"}, None, 403),  # a cross-site page
    ({b"host": b"127.0.0.1:8000", b"origin": b"null"}, None, 403),
    ({b"host": b"127.0.0.1:8000"}, TOKEN, 401),
    ({b"host": b"127.0.0.1:8000", b"authorization": b"Bearer " + TOKEN}, TOKEN, None),
    ({b"host": b"127.0.0.1:8000", b"authorization": b"Bearer wrong"}, TOKEN, 401),
    ({b"host": b"127.0.0.1:8000", b"authorization": _basic(b"openenv", TOKEN)}, TOKEN, None),
    ({b"host": b"127.0.0.1:8000", b"authorization": _basic(TOKEN, b"x")}, TOKEN, 401),
    ({b"host": b"127.0.0.1:8000", b"authorization": b"Basic !!!"}, TOKEN, 401),
])
def test_the_guard(headers: dict[bytes, bytes], token: bytes | None, verdict: int | None) -> None:
    refused = refusal(headers, LOOPBACK, token)
    assert (refused[0] if refused else None) == verdict, refused


def test_the_phase_table() -> None:
    assert advance("new", "reset") == "running"
    assert advance("running", "final") == "done"
    assert advance("running", "call_ends") == "done"
    assert advance("done", "reset") == "running"
    for phase, event in [("new", "call"), ("new", "final"), ("done", "call"), ("done", "final"),
                         ("closed", "reset"), ("closed", "look")]:
        assert (phase, event) not in TRANSITIONS
        with pytest.raises(Refused, match=REFUSALS[phase][:20]):
            advance(phase, event)
    assert all(after != "new" or event in ("look", "lost") for (_, event), after in TRANSITIONS.items())


def test_scenarios_are_drawn_by_seed() -> None:
    ids = ("a", "b", "c", "d")
    assert all(pick_scenario(ids, seed) == pick_scenario(ids, seed) for seed in range(20))
    assert len({pick_scenario(ids, seed) for seed in range(40)}) > 1
    assert pick_scenario(ids, None) in ids
