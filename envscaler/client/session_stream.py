"""One open Session stream per episode: requests and responses, one for one, in
order. A message on an open stream costs about half a unary RPC, so clients send
an episode's calls this way. Refusals arrive as SessionError and become the same
EnvClientError a unary RPC would raise; the stream stays open.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import grpc.aio

from envscaler.client.errors import EnvClientError, wrap_rpc_error
from envscaler.protocol.sessions import SESSION_METHODS
from envscaler.v1 import env_pb2 as pb

FIELDS = {method: field for field, method in SESSION_METHODS.items()}  # CallTool -> call_tool
STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
WATCH_INTERVAL = 0.1  # how late a blocking stream notices a missed deadline
_END = object()


def session_request(method: str, request: Any, timeout: float) -> pb.SessionRequest:
    return pb.SessionRequest(**{FIELDS[method]: request}, deadline_ms=max(int(timeout * 1000), 1))


def session_reply(method: str, response: pb.SessionResponse) -> Any:
    kind = response.WhichOneof("response")
    if kind == "error":
        raise EnvClientError(method, STATUS_NAMES.get(response.error.code, "UNKNOWN"), response.error.message)
    if kind != FIELDS[method]:
        raise EnvClientError(method, "INTERNAL", f"the server answered {method} with {kind or 'nothing'}")
    return getattr(response, kind)


def _deadline_error(method: str, timeout: float) -> EnvClientError:
    return EnvClientError(method, "DEADLINE_EXCEEDED", f"no answer within {timeout:g} s; the session stream "
                                                       "was closed and the next call opens a new one")


class _Watchdog:
    """One thread for every blocking stream of the process: a blocking read on a
    gRPC stream has no timeout, so an overdue one is cancelled from here."""

    def __init__(self) -> None:
        self.streams: weakref.WeakSet[SessionStream] = weakref.WeakSet()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def watch(self, stream: SessionStream) -> None:
        with self.lock:
            self.streams.add(stream)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, daemon=True, name="envscaler-stream-watchdog")
                self.thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(WATCH_INTERVAL)
            now = time.monotonic()
            for stream in list(self.streams):
                stream.cancel_if_overdue(now)


_WATCHDOG = _Watchdog()


class SessionStream:
    """A blocking Session stream, opened on first use and again after a failure."""

    def __init__(self, open_stream: Callable[[Iterator[Any]], Any],
                 wrap: Callable[[pb.SessionRequest], Any] = lambda request: request) -> None:
        self._open = open_stream
        self._wrap = wrap
        self._lock = threading.Lock()
        self._call: Any = None
        self._queue: queue.SimpleQueue[Any] | None = None
        self._deadline = 0.0  # monotonic time the pending request is due by; 0 when none is pending
        self._expired = False

    def request(self, method: str, request: Any, timeout: float) -> Any:
        with self._lock:
            if self._call is None:
                self._queue = queue.SimpleQueue()
                self._call = self._open(iter(self._queue.get, _END))
                _WATCHDOG.watch(self)
            assert self._queue is not None
            self._expired = False
            self._deadline = time.monotonic() + timeout
            self._queue.put(self._wrap(session_request(method, request, timeout)))
            try:
                response = next(self._call)
            except StopIteration:
                self._reset()
                raise EnvClientError(method, "UNAVAILABLE", "the server ended the session stream") from None
            except grpc.RpcError as exc:
                expired = self._expired
                self._reset()
                raise (_deadline_error(method, timeout) if expired else wrap_rpc_error(method, exc)) from None
            finally:
                self._deadline = 0.0
        return session_reply(method, response)

    def cancel_if_overdue(self, now: float) -> None:
        deadline, call = self._deadline, self._call
        if deadline and now > deadline and call is not None:
            self._expired = True
            call.cancel()

    def _reset(self) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._queue is not None:
            self._queue.put(_END)
        self._call = self._queue = None

    def close(self) -> None:
        with self._lock:
            self._reset()


class AsyncSessionStream:
    """The same, for asyncio."""

    def __init__(self, open_stream: Callable[[], Any],
                 wrap: Callable[[pb.SessionRequest], Any] = lambda request: request) -> None:
        self._open = open_stream
        self._wrap = wrap
        self._lock = asyncio.Lock()
        self._call: Any = None

    async def request(self, method: str, request: Any, timeout: float) -> Any:
        async with self._lock:
            if self._call is None:
                self._call = self._open()
            call = self._call
            try:
                async with asyncio.timeout(timeout):
                    await call.write(self._wrap(session_request(method, request, timeout)))
                    response = await call.read()
            except TimeoutError:
                self._reset()
                raise _deadline_error(method, timeout) from None
            except grpc.RpcError as exc:
                self._reset()
                raise wrap_rpc_error(method, exc) from None
            if response is grpc.aio.EOF:
                self._reset()
                raise EnvClientError(method, "UNAVAILABLE", "the server ended the session stream")
        return session_reply(method, response)

    def _reset(self) -> None:
        if self._call is not None:
            self._call.cancel()
        self._call = None

    async def close(self) -> None:
        async with self._lock:
            self._reset()
