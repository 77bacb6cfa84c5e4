"""Where a leased call goes, how long the pool waits for it, and what a failed hop means.

A lease's container serves on two host paths (the backend's SandboxAddress): its gRPC socket, which the pool's unary
PoolService calls (Describe, Reset, CallTool, …) are forwarded to, and its session socket, which each client session
(PoolService.Session stream, or the pool's own session socket) gets one framed connection to, per lease. A client may
also skip the pool: the lease names the direct route (a session socket the container opened for that lease only),
which the server reports on EndEpisode and the pool resolves here. Pure functions, plus the per-session connections.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Container
from dataclasses import dataclass

import grpc

from envscaler.pool.backend import SandboxAddress
from envscaler.protocol import episode_channel, framing
from envscaler.protocol.deadlines import Margin
from envscaler.v1 import env_pb2 as pb

SESSIONS_FULL = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
# A deadline overrun is not among them: the server says on release (EndEpisode.dirty) whether it overran its own
# deadline (the sandbox's fault) or the caller's shorter one (the caller's choice; the container is healthy).
TAINTING_ERRORS = {pb.WORKER_CRASHED, pb.PROTOCOL_ERROR}


@dataclass
class Channel:
    """An episode channel (envscaler/protocol/episode_channel.py): this session's calls for the lease's episode,
    answered by the episode's worker itself."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    opened: episode_channel.Opened


@dataclass
class Upstream:
    """A client session's connection to one lease's container session socket, and the episode's channel."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    channel: Channel | None = None
    refused: bool = False  # the server gave this episode no channel: ask again after the next Reset

    def drop_channel(self) -> None:
        if self.channel is not None:
            self.channel.writer.close()  # the episode ends with it
            self.channel = None

    def close(self) -> None:
        self.drop_channel()
        self.writer.close()


def direct_route(address: SandboxAddress, route: str) -> str:
    """The host path of the direct session socket a server named on EndEpisode ('' : it opened none)."""
    return f"{address.route_dir}/{route}" if route else ""


def hop_timeout(request: pb.SessionRequest, kind: str, call_timeout: float, evaluate_timeout: float) -> float:
    """How long to wait for the container: the caller's deadline, or a bound past the server's own."""
    if request.deadline_ms:
        return request.deadline_ms / 1000 + Margin.HOP
    if kind == "evaluate":
        return evaluate_timeout
    if kind == "call_tool" and request.call_tool.timeout_ms:
        return request.call_tool.timeout_ms / 1000 + Margin.TOOL_HOP
    return call_timeout


@dataclass(frozen=True)
class HopFailure:
    """What the caller is told when the hop to the container failed, and whether the container is still trusted."""

    code: grpc.StatusCode
    message: str
    taint: str = ""  # why the container must not be leased again; '' when it may


def hop_failure(method: str, code: grpc.StatusCode, details: str, callers_deadline: bool = False) -> HopFailure:
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
        return HopFailure(grpc.StatusCode.UNAVAILABLE, "the sandbox container of this lease stopped answering; "
                                                       "release this lease and acquire a new one",
                          taint="its server stopped answering")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        # A container that misses the pool's own bound is not trusted; one that misses a caller's deadline is
        # only checked on release (EndEpisode must answer, or it is replaced).
        return HopFailure(grpc.StatusCode.DEADLINE_EXCEEDED, f"{method} got no answer from the sandbox container "
                                                             "within the deadline",
                          taint="" if callers_deadline else "it overran a deadline")
    return HopFailure(code, details or code.name)


def taint_of(response: pb.CallToolResponse) -> str:
    """Why a tool call's answer makes its container untrustworthy ('' : it does not)."""
    if response.episode_broken and response.error.kind in TAINTING_ERRORS:
        return response.error.message or "it broke its episode"
    return ""


def sessions_full(response: pb.SessionResponse) -> bool:
    """The server refused this connection for lack of session slots (and closed it)."""
    return bool(response.WhichOneof("response") == "error" and response.error.code == SESSIONS_FULL)


CHANNEL_READ_AHEAD = 64 << 10  # bytes of an episode channel read before they are asked for


async def connect(upstreams: dict[str, Upstream], lease_id: str, session_socket: str,
                  live_leases: Container[str]) -> tuple[Upstream, bool]:
    """This session's connection for `lease_id`, opened on first use (returns it, and whether it is new); a session
    that moved on from released leases closes their connections first."""
    upstream = upstreams.get(lease_id)
    if upstream is not None:
        return upstream, False
    for gone in [known for known in upstreams if known not in live_leases]:
        upstreams.pop(gone).close()
    upstream = upstreams[lease_id] = Upstream(*await asyncio.open_unix_connection(session_socket,
                                                                                 limit=framing.MAX_FRAME))
    return upstream, True


async def exchange(upstream: Upstream, request: pb.SessionRequest) -> pb.SessionResponse:
    """One framed request and its answer; OSError, framing.FrameError or DecodeError when the connection breaks."""
    upstream.writer.write(framing.frame(request))
    return pb.SessionResponse.FromString(await framing.read_frame(upstream.reader))


async def open_channel(upstream: Upstream, session_socket: str, episode_id: str) -> Channel | None:
    """The episode's channel, opened on the lease's first call of the episode (None: the server gave none)."""
    if upstream.channel is not None or upstream.refused:
        return upstream.channel
    try:
        # The worker writes here, and is untrusted: what it sends unasked stays in its socket, not in our memory
        # (a frame asked for is still read whole: readexactly reads past the limit).
        reader, writer = await asyncio.open_unix_connection(session_socket, limit=CHANNEL_READ_AHEAD)
    except OSError:
        return None
    try:
        writer.write(episode_channel.open_request(episode_id))
        opened = episode_channel.opened(await framing.read_frame(reader))
    except (OSError, framing.FrameError):
        writer.close()
        return None
    if not isinstance(opened, episode_channel.Opened):
        writer.close()
        upstream.refused = True
        return None
    upstream.channel = Channel(reader, writer, opened)
    return upstream.channel


async def call_on_channel(channel: Channel, request: pb.SessionRequest) -> episode_channel.Outcome:
    """A call on the episode's channel, under its deadline (the worker does not enforce it; we do)."""
    caller = request.deadline_ms / 1000 if request.deadline_ms else math.inf
    bound = episode_channel.call_bound(request.call_tool, caller, channel.opened.call_timeout)
    if bound <= 0:
        return episode_channel.Outcome(None, keep=True)
    try:
        async with asyncio.timeout(bound):
            channel.writer.write(framing.frame(request))
            body = await framing.read_frame(channel.reader, channel.opened.max_frame)
    except TimeoutError:
        return episode_channel.outcome(request.call_tool, bound, failure="timeout")
    except framing.FrameError as exc:
        return episode_channel.outcome(request.call_tool, bound, failure=exc.reason)
    except OSError:
        return episode_channel.outcome(request.call_tool, bound, failure="eof")
    return episode_channel.outcome(request.call_tool, bound, body=body)


def drop(upstreams: dict[str, Upstream], lease_id: str) -> None:
    upstream = upstreams.pop(lease_id, None)
    if upstream is not None:
        upstream.close()
