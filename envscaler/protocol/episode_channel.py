"""The caller's side of an episode channel (proto: EpisodeChannelRequest): a second connection to a server's session
socket, which the server hands to the episode's worker; the episode's CallTool requests go on it and the worker
answers them itself, skipping the server's hop.

The caller's duties, which the proto states: it enforces each call's deadline (on expiry it tells the server, which
kills the worker, closes the channel, and answers as the server would have); it accepts only call_tool and
error answers of at most max_frame_bytes, since they come from code of the environment; on anything else it closes
the channel and asks the server over the session's own connection, which answers for the episode (a worker that
died, or a channel that ended the episode). Pure functions here, for every caller (the clients' sessions, the
pool's hop); they do the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import grpc
from google.protobuf.message import DecodeError

from envscaler.protocol import framing
from envscaler.protocol.deadlines import Margin
from envscaler.v1 import env_pb2 as pb

_OLD_SERVER = grpc.StatusCode.INVALID_ARGUMENT.value[0]  # a server without channels reads the request as empty


@dataclass(frozen=True)
class Opened:
    """What the server said when it handed the channel over."""

    episode_id: str
    call_timeout: float  # seconds
    max_frame: int


def open_request(episode_id: str) -> bytes:
    return framing.frame(pb.SessionRequest(episode_channel=pb.EpisodeChannelRequest(episode_id=episode_id)))


Refusal = Literal["refused", "unsupported"]  # no channel for this episode (ask after the next Reset) | this server


def opened(body: bytes | bytearray) -> Opened | Refusal:
    """The server's answer to an open_request."""
    try:
        response = pb.SessionResponse.FromString(bytes(body))
    except DecodeError:
        return "refused"
    if response.WhichOneof("response") == "episode_channel":
        answer = response.episode_channel
        return Opened(answer.episode_id, answer.call_timeout_ms / 1000,
                      min(answer.max_frame_bytes or framing.MAX_FRAME, framing.MAX_FRAME))
    old_server = response.WhichOneof("response") == "error" and response.error.code == _OLD_SERVER
    return "unsupported" if old_server else "refused"


def for_episode(request: pb.CallToolRequest, episode_id: str) -> pb.CallToolRequest:
    """The call as the server should take it after its channel ended: for the episode the channel served, not
    whichever episode is current by then."""
    if request.episode_id or not episode_id:
        return request
    named = pb.CallToolRequest()
    named.CopyFrom(request)
    named.episode_id = episode_id
    return named


def call_bound(request: pb.CallToolRequest, timeout: float, call_timeout: float) -> float:
    """How long this call may take: its own timeout_ms (else the server's default), within the caller's deadline
    less the margin that gets the answer to it in time (as the server bounds a call it runs itself)."""
    own = request.timeout_ms / 1000 if request.timeout_ms else call_timeout
    return min(own, timeout - Margin.ANSWER_FIRST.value)


def failure_report(request: pb.CallToolRequest, kind: int, seconds: float = 0.0) -> pb.SessionRequest:
    """What the caller tells the server, on the session's own connection, when a call on the channel failed:
    pb.DEADLINE_EXCEEDED after `seconds`, or pb.PROTOCOL_ERROR."""
    return pb.SessionRequest(episode_channel=pb.EpisodeChannelRequest(
        episode_id=request.episode_id, failed=kind,  # type: ignore[arg-type]  # an ErrorKind value
        overran_ms=max(1, round(seconds * 1000)) if seconds else 0))


def _broken_call(kind: int, message: str) -> pb.SessionResponse:
    return pb.SessionResponse(call_tool=pb.CallToolResponse(
        observation=f"Error: {message}", error=pb.ToolError(kind=kind, message=message),  # type: ignore[arg-type]
        episode_broken=True))


def overran(request: pb.CallToolRequest, seconds: float) -> pb.SessionResponse:
    """The answer to a call that overran its deadline on a channel, worded as the server words its own."""
    return _broken_call(pb.DEADLINE_EXCEEDED,
                        f"tool {request.name!r} overran its {seconds:g} s deadline; the worker was killed")


def broke(request: pb.CallToolRequest, problem: str) -> pb.SessionResponse:
    """The answer to a call whose answer on the channel was not one a channel may carry."""
    return _broken_call(pb.PROTOCOL_ERROR, f"the worker broke the protocol during tool {request.name!r} "
                                           f"({problem}); it was killed")


# The refusals a worker gives on its channel (envscaler/runtime/sandbox/tool_channel.py); any other status would be
# the worker
# speaking for the server.
WORKER_REFUSALS = frozenset({grpc.StatusCode.INVALID_ARGUMENT.value[0], grpc.StatusCode.FAILED_PRECONDITION.value[0]})


def answer(body: bytes | bytearray) -> pb.SessionResponse | str:
    """A worker's answer, if it is one a channel may carry; else what is wrong with it."""
    try:
        response = pb.SessionResponse.FromString(bytes(body))
    except DecodeError:
        return "an answer that is not a SessionResponse"
    kind = response.WhichOneof("response")
    if kind == "error" and response.error.code not in WORKER_REFUSALS:
        return f"an error answer only the server may give (code {response.error.code})"
    return response if kind in ("call_tool", "error") else f"an answer of the wrong kind ({kind or 'empty'})"


@dataclass(frozen=True)
class Outcome:
    """What a call on a channel comes to, for any caller's I/O."""

    answer: pb.SessionResponse | None  # None: ask the server, on the session's own connection
    report: pb.SessionRequest | None = None  # to tell the server first: the call failed on the channel
    keep: bool = False  # the channel goes on


def outcome(request: pb.CallToolRequest, bound: float, body: bytes | bytearray | None = None,
            failure: str = "") -> Outcome:
    """From the answer's `body`, or the framer's `failure` reason (framing.FrameError.reason)."""
    if failure == "timeout":
        return Outcome(overran(request, bound), failure_report(request, pb.DEADLINE_EXCEEDED, bound))
    if failure == "too_large":
        return Outcome(broke(request, "an answer over the channel's frame cap"),
                       failure_report(request, pb.PROTOCOL_ERROR))
    if failure or body is None:  # the channel ended: the server knows why (a dead worker, an ended episode)
        return Outcome(None)
    response = answer(body)
    if isinstance(response, str):
        return Outcome(broke(request, response), failure_report(request, pb.PROTOCOL_ERROR))
    return Outcome(response, keep=not response.call_tool.episode_broken)
