"""A session over a session socket (envscaler/framing.py): the same requests and
answers as a Session stream, as length-prefixed frames on a Unix socket. Same
host only; what `direct=True` leases and local pools use."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from envscaler.client.errors import EnvClientError
from envscaler.client.session_stream import session_reply, session_request
from envscaler.protocol import episode_channel, framing
from envscaler.protocol.deadlines import Margin
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


def _retrieved(future: asyncio.Future[bytes]) -> None:
    """A read no one may await any more (its call was cancelled, its channel dropped) fails quietly."""
    if not future.cancelled():
        future.exception()


def _episode_ended(method: str, response: pb.SessionResponse) -> bool:
    """A new episode began, or the episode ended: its channel is gone (a refused Reset leaves both as they were)."""
    return method in ("Reset", "EndEpisode") and response.WhichOneof("response") != "error"


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

    def __init__(self, path: str, wrap: Callable[[pb.SessionRequest], Any] | None = None, *,
                 channels: bool = True) -> None:
        self.path = path
        self._wrap = wrap or (lambda request: request)
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._reader: framing.FrameReader | None = None
        # A server's own socket (not a pool's, which wraps requests) can hand each episode a channel.
        self._channels = wrap is None and channels
        self._channel: tuple[socket.socket, framing.FrameReader, episode_channel.Opened] | None = None
        self._channel_timeout: float | None = None  # the read and write timeout the channel's socket has
        self._refused = False  # the server refused this episode a channel: ask again after the next Reset

    def request(self, method: str, request: Any, timeout: float) -> Any:
        data = _framed(method, self._wrap(session_request(method, request, timeout)))
        with self._lock:
            if method == "CallTool" and self._channels:
                on_channel, episode_id = self._on_channel(request, data, timeout)
                if on_channel is not None:
                    return session_reply(method, on_channel)
                if episode_id:  # the server answers for the episode the channel served
                    data = _framed(method, session_request(method, episode_channel.for_episode(request, episode_id),
                                                           timeout))
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
        elif _episode_ended(method, response):
            with self._lock:
                self._drop_channel()  # it ended with its episode
                self._refused = False
        return session_reply(method, response)

    def _on_channel(self, request: pb.CallToolRequest, data: bytes,
                    timeout: float) -> tuple[pb.SessionResponse | None, str]:
        """The call on the episode's channel, and the channel's episode; no answer: ask the server instead."""
        deadline = time.monotonic() + timeout
        if self._channel is None and not self._refused:
            self._channel = self._open_channel(request.episode_id, timeout)
        if self._channel is None:
            return None, ""
        sock, reader, opened = self._channel
        bound = episode_channel.call_bound(request, deadline - time.monotonic(), opened.call_timeout)
        if bound <= 0:
            return None, ""
        call_ends = time.monotonic() + bound
        reads = 0

        def before_read() -> None:  # the whole call's deadline, not each read's (an answer may trickle)
            nonlocal reads
            reads += 1
            if reads > 1:
                self._channel_timeout = None
                framing.set_deadline(sock, call_ends)

        reader.before_read = before_read
        try:
            if bound != self._channel_timeout:  # most calls have the same bound: two syscalls saved
                framing.set_timeouts(sock, bound)
                self._channel_timeout = bound
            framing.send(sock, data)
            result = episode_channel.outcome(request, bound, body=reader.read())
        except framing.FrameError as exc:
            result = episode_channel.outcome(request, bound, failure=exc.reason)
        if result.report is not None:
            self._report(result.report)
        if not result.keep:
            self._drop_channel()  # closing it ends the episode: the server kills the worker
        return result.answer, opened.episode_id

    def _report(self, report: pb.SessionRequest) -> None:
        """Tell the server, on the session's own connection, how a call on the channel failed (best effort: the
        channel's closing ends the episode anyway)."""
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._sock.connect(self.path)
                self._reader = framing.FrameReader(self._sock)
            assert self._reader is not None
            framing.set_timeouts(self._sock, Margin.SETTLE.value)
            _send_then_read(self._sock, self._reader, framing.frame(report))
        except (OSError, framing.FrameError):
            self._reset()

    def _open_channel(self, episode_id: str, timeout: float) -> tuple[socket.socket, framing.FrameReader,
                                                                       episode_channel.Opened] | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
            framing.set_timeouts(sock, timeout)
            framing.send(sock, episode_channel.open_request(episode_id))
            opened = episode_channel.opened(framing.FrameReader(sock, greedy=False).read())
        except (OSError, framing.FrameError):
            sock.close()
            return None
        if not isinstance(opened, episode_channel.Opened):
            sock.close()
            self._refused = True
            self._channels = opened != "unsupported"
            return None
        return sock, framing.FrameReader(sock, opened.max_frame), opened

    def _drop_channel(self) -> None:
        if self._channel is not None:
            self._channel[0].close()
            self._channel = None
            self._channel_timeout = None

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._reader = None

    def close(self) -> None:
        with self._lock:
            self._drop_channel()
            self._reset()


class AsyncSocketSession:
    """The same, for asyncio."""

    def __init__(self, path: str, wrap: Callable[[pb.SessionRequest], Any] | None = None, *,
                 channels: bool = True) -> None:
        self.path = path
        self._wrap = wrap or (lambda request: request)
        self._lock = asyncio.Lock()
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._channels = wrap is None and channels
        self._channel: tuple[asyncio.StreamReader, asyncio.StreamWriter, episode_channel.Opened] | None = None
        self._refused = False
        # The answer of a call that was cancelled on the channel, read on in the background: the next call reads
        # past it (a cancelled call is not the episode's end, as it is not on the server's path).
        self._inflight: asyncio.Future[bytes] | None = None

    async def request(self, method: str, request: Any, timeout: float) -> Any:
        data = _framed(method, self._wrap(session_request(method, request, timeout)))
        async with self._lock:
            if method == "CallTool" and self._channels:
                on_channel, episode_id = await self._on_channel(request, data, timeout)
                if on_channel is not None:
                    return session_reply(method, on_channel)
                if episode_id:
                    data = _framed(method, session_request(method, episode_channel.for_episode(request, episode_id),
                                                           timeout))
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
            except BaseException:  # cancelled mid-request: its answer must not be read as the next one's
                self._reset()
                raise
            response = _decode(method, body)
            if response.WhichOneof("response") == "error" and response.error.code == _FULL:
                self._reset()
            elif _episode_ended(method, response):
                self._drop_channel()
                self._refused = False
        return session_reply(method, response)

    async def _on_channel(self, request: pb.CallToolRequest, data: bytes,
                          timeout: float) -> tuple[pb.SessionResponse | None, str]:
        deadline = time.monotonic() + timeout
        if self._channel is None and not self._refused:
            self._channel = await self._open_channel(request.episode_id, timeout)
        if self._channel is None:
            return None, ""
        reader, writer, opened = self._channel
        bound = episode_channel.call_bound(request, deadline - time.monotonic(), opened.call_timeout)
        if bound <= 0:
            return None, ""
        try:
            async with asyncio.timeout(bound):
                if self._inflight is not None:  # a cancelled call's answer comes first
                    stale = episode_channel.outcome(request, bound, body=await asyncio.shield(self._inflight))
                    self._inflight = None
                    if not stale.keep:
                        raise framing.FrameError("protocol", "the answer before this call's was not one")
                writer.write(data)
                self._inflight = asyncio.ensure_future(framing.read_frame(reader, opened.max_frame))
                self._inflight.add_done_callback(_retrieved)
                body = await asyncio.shield(self._inflight)  # cancelled, we leave it reading (see _inflight)
                self._inflight = None
                result = episode_channel.outcome(request, bound, body=body)
        except TimeoutError:
            result = episode_channel.outcome(request, bound, failure="timeout")
        except framing.FrameError as exc:
            result = episode_channel.outcome(request, bound, failure=exc.reason)
        except OSError:
            result = episode_channel.outcome(request, bound, failure="eof")
        if result.report is not None:
            await self._report(result.report)
        if not result.keep:
            self._drop_channel()
        return result.answer, opened.episode_id

    async def _report(self, report: pb.SessionRequest) -> None:
        try:
            async with asyncio.timeout(Margin.SETTLE.value):
                if self._streams is None:
                    self._streams = await asyncio.open_unix_connection(self.path, limit=framing.MAX_FRAME)
                reader, writer = self._streams
                writer.write(framing.frame(report))
                await framing.read_frame(reader)
        except (OSError, TimeoutError, framing.FrameError):
            self._reset()
        except BaseException:  # cancelled: the answer would be read as the next request's
            self._reset()
            raise

    async def _open_channel(self, episode_id: str, timeout: float) -> tuple[
            asyncio.StreamReader, asyncio.StreamWriter, episode_channel.Opened] | None:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(self.path, limit=framing.MAX_FRAME)
                try:
                    writer.write(episode_channel.open_request(episode_id))
                    opened = episode_channel.opened(await framing.read_frame(reader))
                except BaseException:
                    writer.close()
                    raise
        except (OSError, TimeoutError, framing.FrameError):
            return None
        if not isinstance(opened, episode_channel.Opened):
            writer.close()
            self._refused = True
            self._channels = opened != "unsupported"
            return None
        return reader, writer, opened

    def _drop_channel(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
            self._inflight = None
        if self._channel is not None:
            self._channel[1].close()
            self._channel = None

    def _reset(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
        self._streams = None

    async def close(self) -> None:
        async with self._lock:
            self._drop_channel()
            self._reset()
