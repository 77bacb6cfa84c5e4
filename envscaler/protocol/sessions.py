"""Session dispatch shared by every server of a Session (the sandbox's EnvService and the host's pool): parsing
each message, refusing a malformed one with its own status, and the answer that names what went wrong.

A Session stream and a session socket carry the same messages (one answer per request, in order); a refusal
answers that one message with a SessionError and the session stays open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from envscaler.protocol.framing import FrameError, frame
from envscaler.v1 import env_pb2 as pb


class RequestError(Exception):
    """A refusal with its gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def session_methods(request_cls: Any) -> dict[str, str]:
    """A SessionRequest's fields by the RPC each stands for: call_tool -> CallTool."""
    fields = request_cls.DESCRIPTOR.oneofs_by_name["request"].fields
    return {f.name: "".join(part.title() for part in f.name.split("_")) for f in fields}


SESSION_METHODS = session_methods(pb.SessionRequest)


def session_kind(request: pb.SessionRequest | RequestError) -> str:
    """Which call a Session message makes; a malformed or empty one is a RequestError."""
    if isinstance(request, RequestError):
        # A fresh exception: raising the one held in `request` would tie it to its own traceback (a cycle that keeps
        # a large malformed frame alive until the garbage collector happens to run).
        raise RequestError(request.code, request.message)
    kind: str | None = request.WhichOneof("request")
    if kind is None:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "empty envscaler.v1.SessionRequest: set one of "
                                                             f"{', '.join(SESSION_METHODS)}")
    return kind


def session_error(code: grpc.StatusCode, message: str) -> pb.SessionResponse:
    """What a unary RPC would have ended with, as the answer to one Session message."""
    return pb.SessionResponse(error=pb.SessionError(code=code.value[0], message=message))


def internal_error(exc: BaseException) -> str:
    """A server-side failure, named for the caller (the request failed; the server goes on)."""
    return f"the server failed on this request ({type(exc).__name__}: {str(exc)[:200]}); it keeps serving"


def _problem(cls: Any, exc: Exception) -> str:
    return f"malformed {cls.DESCRIPTOR.full_name}: {exc}"


def parse(cls: Any, raw: bytes | bytearray) -> Any:  # cls: a message class
    try:
        return cls.FromString(raw)
    except DecodeError as exc:
        problem = _problem(cls, exc)
    raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, problem)  # outside the handler: no context holding `raw`


def parse_each(cls: Any, raws: Iterator[bytes]) -> Iterator[Any]:
    """A stream's messages, with a RequestError in place of each malformed one."""
    for raw in raws:
        try:
            yield parse(cls, raw)
        except RequestError as exc:
            yield exc


async def parse_each_async(cls: Any, raws: AsyncIterator[bytes]) -> AsyncIterator[Any]:
    async for raw in raws:
        try:
            yield parse(cls, raw)
        except RequestError as exc:
            yield exc


def sessions_full(limit: int) -> str:
    """The one refusal for a server whose sessions are all taken (gRPC stream or session socket alike)."""
    return f"this server already holds {limit} open sessions; close one first"


def request_of(cls: Any, body: bytes | bytearray) -> Any:
    """One session message parsed, or the RequestError that answers it (a session goes on after a bad message)."""
    try:
        return parse(cls, body)
    except RequestError as exc:
        return exc


def refusal(exc: FrameError) -> bytes | None:
    """The last frame of a session whose framing broke: a frame over the cap is answered, naming the cap, before
    the connection closes; a connection that closed or timed out gets nothing."""
    if exc.reason == "too_large":
        return frame(session_error(grpc.StatusCode.INVALID_ARGUMENT, f"{exc}; closing"))
    return None


def full(limit: int) -> bytes:
    """The one frame a server whose sessions are all taken sends to a new connection before closing it."""
    return frame(session_error(grpc.StatusCode.RESOURCE_EXHAUSTED, sessions_full(limit)))
