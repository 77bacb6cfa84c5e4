"""The front door's pure parts: tools and results as MCP shapes, and the validation of a lease request."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from envscaler.client.models import ToolResult
from envscaler.frontdoor.cli import _listen
from envscaler.frontdoor.http import ApiError, _lease_request
from envscaler.frontdoor.tools import call_result, mcp_tool
from envscaler.spec import load_corpus
from envscaler.spec.toolschema import served_tools


def test_every_bundled_tool_keeps_its_schema_unchanged() -> None:
    corpus = load_corpus()
    for spec in corpus.envs.values():
        for tool in served_tools(spec.tools, spec.env_class_code, spec.env_class_name, "derived"):
            wire = mcp_tool(tool).model_dump(by_alias=True, mode="json", exclude_none=True)
            assert wire["name"] == tool["function"]["name"]
            assert wire["inputSchema"] == tool["function"]["parameters"]
            assert wire.get("description", "") == tool["function"]["description"]


@pytest.mark.parametrize(("result", "structured"), [({"a": 1}, {"a": 1}), ([1, 2], {"result": [1, 2]}),
                                                    (None, {"result": None}), ("x", {"result": "x"})])
def test_a_result_is_its_observation_and_structured_content(result: Any, structured: dict[str, Any]) -> None:
    out = call_result(ToolResult(name="t", result=result, observation="seen"))
    assert not out.is_error and out.content[0].text == "seen" and out.structured_content == structured


def test_a_tool_error_is_an_error_result_with_its_kind() -> None:
    out = call_result(ToolResult(name="t", observation="", error_kind="INVALID_ARGUMENTS", error_message="bad x"))
    assert out.is_error and out.content[0].text == "INVALID_ARGUMENTS: bad x" and out.structured_content is None


@pytest.mark.parametrize(("body", "reason"), [
    ({}, "env_id is required"),
    ({"env_id": ""}, "env_id is required"),
    ({"env_id": "e"}, "exactly one of"),
    ({"env_id": "e", "scenario_id": ""}, "non-empty string"),
    ({"env_id": "e", "init_config": []}, "JSON object"),
    ({"env_id": "e", "scenario_id": "s", "seed": "1"}, "seed"),
    ({"env_id": "e", "scenario_id": "s", "seed": True}, "seed"),
    ({"env_id": "e", "scenario_id": "s", "ttl": 0}, "ttl"),
    ({"env_id": "e", "scenario_id": "s", "ttl": True}, "ttl"),
    ({"env_id": "e", "scenario_id": "s", "other": 1}, "unknown field"),
])
def test_bad_lease_requests_name_their_fault(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(ApiError) as err:
        _lease_request(body)
    assert err.value.status == 400 and reason in err.value.reason


def test_good_lease_requests() -> None:
    assert _lease_request({"env_id": "e", "scenario_id": "s"}) == ("e", "s", None, 0, None)
    assert _lease_request({"env_id": "e", "init_config": {}, "seed": 3, "ttl": 5}) == ("e", None, {}, 3, 5.0)


def test_listen_addresses() -> None:
    assert _listen("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert _listen("tcp:[::1]:80") == ("::1", 80)
    for bad in ("8765", "host:", "h:0", "h:99999", "h:x"):
        with pytest.raises(ValueError, match="expected HOST:PORT"):
            _listen(bad)


def test_the_subcommand_is_registered() -> None:
    from envscaler.cli import build_parser

    args = build_parser().parse_args(["mcp", "--pool", "unix:/x", "--stdio", "--env", "e", "--scenario", "s"])
    assert isinstance(args, argparse.Namespace) and args.stdio and args.listen == "127.0.0.1:8765"
