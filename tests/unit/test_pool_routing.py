"""Routing decisions (envscaler/pool/routing.py): how long the pool waits for a container, and what a failed hop
means."""

from __future__ import annotations

import grpc
import pytest

from envscaler.pool.backend import SandboxAddress
from envscaler.pool.routing import direct_route, hop_failure, hop_timeout, sessions_full, taint_of
from envscaler.v1 import env_pb2 as pb


@pytest.mark.parametrize(("request_", "kind", "expected"), [
    (pb.SessionRequest(deadline_ms=2500, call_tool=pb.CallToolRequest(timeout_ms=100)), "call_tool", 3.5),
    (pb.SessionRequest(evaluate=pb.EvaluateRequest()), "evaluate", 300.0),
    (pb.SessionRequest(call_tool=pb.CallToolRequest(timeout_ms=2000)), "call_tool", 7.0),
    (pb.SessionRequest(call_tool=pb.CallToolRequest()), "call_tool", 30.0),
    (pb.SessionRequest(get_state=pb.GetStateRequest()), "get_state", 30.0),
], ids=["callers-deadline-wins", "evaluate", "tool-timeout", "call-default", "other-default"])
def test_hop_timeout(request_: pb.SessionRequest, kind: str, expected: float) -> None:
    assert hop_timeout(request_, kind, call_timeout=30.0, evaluate_timeout=300.0) == pytest.approx(expected)


@pytest.mark.parametrize(("code", "callers", "told", "taint"), [
    (grpc.StatusCode.UNAVAILABLE, False, grpc.StatusCode.UNAVAILABLE, "its server stopped answering"),
    (grpc.StatusCode.CANCELLED, True, grpc.StatusCode.UNAVAILABLE, "its server stopped answering"),
    (grpc.StatusCode.DEADLINE_EXCEEDED, False, grpc.StatusCode.DEADLINE_EXCEEDED, "it overran a deadline"),
    (grpc.StatusCode.DEADLINE_EXCEEDED, True, grpc.StatusCode.DEADLINE_EXCEEDED, ""),
    (grpc.StatusCode.FAILED_PRECONDITION, False, grpc.StatusCode.FAILED_PRECONDITION, ""),
])
def test_hop_failure(code: grpc.StatusCode, callers: bool, told: grpc.StatusCode, taint: str) -> None:
    failure = hop_failure("CallTool", code, "no episode", callers_deadline=callers)
    assert failure.code == told and failure.taint == taint
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        assert failure.message == "no episode"  # the server's own refusal, passed on
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        assert failure.message.startswith("CallTool got no answer")
    else:
        assert "release this lease and acquire a new one" in failure.message


@pytest.mark.parametrize(("response", "taint"), [
    (pb.CallToolResponse(episode_broken=True, error=pb.ToolError(kind=pb.WORKER_CRASHED, message="segv")), "segv"),
    (pb.CallToolResponse(episode_broken=True, error=pb.ToolError(kind=pb.PROTOCOL_ERROR)), "it broke its episode"),
    # An overrun kills the worker but is the caller's deadline or the server's: EndEpisode.dirty says which.
    (pb.CallToolResponse(episode_broken=True, error=pb.ToolError(kind=pb.DEADLINE_EXCEEDED, message="slow")), ""),
    (pb.CallToolResponse(error=pb.ToolError(kind=pb.TOOL_EXCEPTION, message="ValueError")), ""),
    (pb.CallToolResponse(observation="ok"), ""),
])
def test_taint_of(response: pb.CallToolResponse, taint: str) -> None:
    assert taint_of(response) == taint


def test_direct_route_and_sessions_full() -> None:
    address = SandboxAddress("unix:/s/env.sock", "/s/env.session.sock", "/s")
    assert direct_route(address, "r-1.sock") == "/s/r-1.sock"
    assert direct_route(address, "") == ""
    full = pb.SessionResponse(error=pb.SessionError(code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]))
    assert sessions_full(full)
    assert not sessions_full(pb.SessionResponse(error=pb.SessionError(code=grpc.StatusCode.NOT_FOUND.value[0])))
    assert not sessions_full(pb.SessionResponse(call_tool=pb.CallToolResponse()))
