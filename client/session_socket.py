"""A session over a session socket (envscaler/framing.py): the same requests and
answers as a Session stream, as length-prefixed frames on a Unix socket. Same
host only; what `direct=True` leases and local pools use."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from envscaler.client.errors import EnvClientError
from envscaler.client.session_stream import session_reply, session_request
from envscaler.protocol import framing
from envscaler.v1 import env_pb2 as pb

_FULL = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


def _failure(method: str, exc: framing.FrameError, timeout: float, path: str) -> EnvClientError:
    if exc.reason == "timeout":
        return EnvClientError(method, "DEADLINE_EXCEEDED", f"no answer within {timeout:g} s; the session "
                                                           "connection was closed and the next call opens a new one")
    return EnvClientError(method, "UNAVAILABLE", f"session socket {path}: {exc}")


def _framed(method: str, message: Any) -> bytes:
    data = framing.frame(message)
    if len(data) - framing.HEADER.size > framing.MAX_FRAME:  # as a gRPC channel refuses to send over its cap
        raise EnvClientError(method, "RESOURCE_EXHAUSTED", f"the request is {len(data)} bytes, over the "
                                                           f"{framing.MAX_FRAME}-byte frame cap")
    return data


def _decode(method: str, body: bytes | bytearray) -> pb.SessionResponse:
    try:
        return pb.SessionResponse.FromString(body)  # type: ignore[arg-type]  # any buffer: no copy of a large one
    except DecodeError:
        raise EnvClientError(method, "INTERNAL", "the server sent a malformed SessionResponse") from None


def _send_then_read(sock: socket.socket, reader: framing.FrameReader, data: bytes) -> bytes | bytearray:
    try:
        framing.send(sock, data)
    except framing.FrameError as exc:
        if exc.reason != "eof":
            raise
        try:  # a server that refuses a connection (sessions full) answers first, then closes: read that answer
            return reader.read()
        except framing.FrameError:
            raise exc from None
    return reader.read()


class SocketSession:
    """Blocking; connects on first use and again after a failure."""

    def __init__(self, path: str, wrap: Callable[[pb.SessionRequest], Any] = lambda request: request) -> None:
        self.path = path
        self._wrap = wrap
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._reader: framing.FrameReader | None = None

    def request(self, method: str, request: Any, timeout: float) -> Any:
        data = _framed(method, self._wrap(session_request(method, request, timeout)))
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    self._sock.connect(self.path)
                    self._reader = framing.FrameReader(self._sock)
                assert self._reader is not None
                framing.set_timeouts(self._sock, timeout)
                body = _send_then_read(self._sock, self._reader, data)
            except framing.FrameError as exc:
                self._reset()
                raise _failure(method, exc, timeout, self.path) from None
            except OSError as exc:  # connect() failed
                self._reset()
                raise EnvClientError(method, "UNAVAILABLE", f"session socket {self.path}: "
                                                            f"{exc.strerror or exc}") from None
        response = _decode(method, body)
        if response.WhichOneof("response") == "error" and response.error.code == _FULL:  # the server closes
            self.close()
        return session_reply(method, response)

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._reader = None

    def close(self) -> None:
        with self._lock:
            self._reset()


class AsyncSocketSession:
    """The same, for asyncio."""

    def __init__(self, path: str, wrap: Callable[[pb.SessionRequest], Any] = lambda request: request) -> None:
        self.path = path
        self._wrap = wrap
        self._lock = asyncio.Lock()
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, request: Any, timeout: float) -> Any:
        data = _framed(method, self._wrap(session_request(method, request, timeout)))
        async with self._lock:
            try:
                async with asyncio.timeout(timeout):
                    if self._streams is None:
                        self._streams = await asyncio.open_unix_connection(self.path, limit=framing.MAX_FRAME)
                    reader, writer = self._streams
                    writer.write(data)
                    body = await framing.read_frame(reader)
            except TimeoutError:
                self._reset()
                raise _failure(method, framing.FrameError("timeout", ""), timeout, self.path) from None
            except framing.FrameError as exc:
                self._reset()
                raise _failure(method, exc, timeout, self.path) from None
            except OSError as exc:
                self._reset()
                raise EnvClientError(method, "UNAVAILABLE", f"session socket {self.path}: "
                                                            f"{exc.strerror or exc}") from None
            response = _decode(method, body)
            if response.WhichOneof("response") == "error" and response.error.code == _FULL:
                self._reset()
        return session_reply(method, response)

    def _reset(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
        self._streams = None

    async def close(self) -> None:
        async with self._lock:
            self._reset()
