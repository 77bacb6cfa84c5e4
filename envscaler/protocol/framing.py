"""The one framer: a 4-byte big-endian length, then the body, over a Unix stream socket.

Two channels use it. A session socket carries the protobuf messages of proto/
(SessionRequest, or LeaseSessionRequest at a pool, in; SessionResponse out; one
for one, in order), without gRPC's HTTP/2 layer: in Python a gRPC message costs
some 400 µs where a frame on a Unix socket costs some 25. Same host only; any
language can speak it. Inside a sandbox the server and its workers exchange JSON
bodies the same way (envscaler/runtime/channel.py).

Deadlines are kernel-side (SO_RCVTIMEO/SO_SNDTIMEO on a blocking socket): one
syscall per read, where a Python socket timeout costs a poll() and a failed recv()
first, about half of a whole round trip here.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:  # not imported at run time: workers import this module, and asyncio costs them MiBs
    import asyncio

HEADER = struct.Struct("!I")
MAX_FRAME = 64 << 20
LARGE = 1 << 20  # frames over this are read into a buffer of their own size
FIRST_READ = 1 << 16
MAX_READ = 1 << 20
_TIMEVAL = struct.Struct("@ll")

Reason = Literal["eof", "timeout", "too_large", "protocol"]


class FrameError(Exception):
    """The peer closed the channel, overran the deadline, sent a frame over the cap or broke the protocol."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason


class Message(Protocol):
    def SerializeToString(self) -> bytes: ...


def frame_body(body: bytes) -> bytes:
    return HEADER.pack(len(body)) + body


def frame(message: Message) -> bytes:
    """A protobuf message as one frame."""
    return frame_body(message.SerializeToString())


def timeval(seconds: float) -> bytes:
    """A socket timeout option's value (0: none)."""
    whole = int(seconds)
    micros = max(int((seconds - whole) * 1e6), 1 if seconds > 0 and not whole else 0)
    return _TIMEVAL.pack(whole, micros)


def set_timeouts(sock: socket.socket, seconds: float) -> None:
    """Kernel-side read and write timeouts on a blocking socket (0: none)."""
    value = timeval(seconds)
    if sock.gettimeout() is not None:
        sock.settimeout(None)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


def set_deadline(sock: socket.socket, deadline: float) -> None:
    """Make reads and writes on `sock` give up at `deadline` (time.monotonic())."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FrameError("timeout", "deadline exceeded")
    set_timeouts(sock, remaining)


def send(sock: socket.socket, data: bytes, fds: list[int] | None = None) -> None:
    """Send framed bytes; `fds` ride on the first bytes (SCM_RIGHTS)."""
    try:
        if fds:
            sent = socket.send_fds(sock, [data], fds)
            if sent < len(data):
                sock.sendall(data[sent:])
        else:
            sock.sendall(data)
    except BlockingIOError:  # SO_SNDTIMEO: the peer stopped reading
        raise FrameError("timeout", "the peer stopped reading") from None
    except OSError as exc:
        raise FrameError("eof", f"the connection broke: {exc.strerror or exc}") from None


def _failed(exc: OSError) -> FrameError:
    """A blocking receive's failure (a plain function, not a context manager: it is on every call's path)."""
    if isinstance(exc, BlockingIOError | TimeoutError):  # SO_RCVTIMEO expired
        return FrameError("timeout", "no answer in time")
    return FrameError("eof", f"the connection broke: {exc.strerror or exc}")


def _closed() -> FrameError:
    return FrameError("eof", "the peer closed the connection")


def recv_some(sock: socket.socket, size: int) -> bytes:
    try:
        chunk = sock.recv(size)
    except OSError as exc:
        raise _failed(exc) from None
    if not chunk:
        raise _closed()
    return chunk


def recv_with_fds(sock: socket.socket, max_fds: int, size: int = HEADER.size) -> tuple[bytes, list[int]]:
    """The first bytes (up to `size`) of a frame sent with `send(..., fds=...)`, and the descriptors that rode on
    them."""
    try:
        head, fds, _flags, _addr = socket.recv_fds(sock, size, max_fds)
    except OSError as exc:
        raise _failed(exc) from None
    if not head:
        raise _closed()
    return head, fds


class FrameReader:
    """Frames from a blocking socket; usually one recv() per frame. `before_read` runs before each recv (e.g. to
    set the time left of a deadline). A greedy reader reads ahead (a stream of frames); one that is not reads no
    byte past the frame it completes (one question, one answer: what follows stays on the socket)."""

    def __init__(self, sock: socket.socket, max_bytes: int = MAX_FRAME, initial: bytes = b"",
                 before_read: Callable[[], None] | None = None, greedy: bool = True) -> None:
        self.sock = sock
        self.max_bytes = max_bytes
        self.buffer = bytearray(initial)
        self.before_read = before_read
        self.greedy = greedy

    def _fill(self, wanted: int) -> None:
        if self.before_read is not None:
            self.before_read()
        size = max(wanted, FIRST_READ) if self.greedy else wanted
        self.buffer += recv_some(self.sock, min(size, MAX_READ))  # recv(n) allocates n first

    def next_size(self) -> int:
        """The size of the next frame, from its header, before its body is read."""
        while len(self.buffer) < HEADER.size:
            self._fill(HEADER.size - len(self.buffer))
        return int(HEADER.unpack_from(self.buffer)[0])

    def read(self) -> bytes | bytearray:
        size = self.next_size()
        if size > self.max_bytes:
            raise FrameError("too_large", f"a frame of {size} bytes is over the {self.max_bytes}-byte cap")
        if size > LARGE:
            return self._read_large(size)
        end = HEADER.size + size
        while len(self.buffer) < end:
            self._fill(end - len(self.buffer))
        body = bytes(self.buffer[HEADER.size:end])
        del self.buffer[:end]
        return body

    def _read_large(self, size: int) -> bytearray:
        """A large frame straight into one buffer of its size: no growing (each regrowth leaves freed memory in the
        reading thread's malloc arena), no copy."""
        body = bytearray(size)
        have = min(len(self.buffer) - HEADER.size, size)
        body[:have] = self.buffer[HEADER.size:HEADER.size + have]
        del self.buffer[:HEADER.size + have]
        view = memoryview(body)
        while have < size:
            if self.before_read is not None:
                self.before_read()
            try:
                got = self.sock.recv_into(view[have:], min(size - have, MAX_READ))
            except OSError as exc:
                raise _failed(exc) from None
            if not got:
                raise _closed()
            have += got
        view.release()
        return body


async def read_frame(reader: asyncio.StreamReader, max_bytes: int = MAX_FRAME) -> bytes:
    import asyncio

    try:
        (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
        if size > max_bytes:
            raise FrameError("too_large", f"a frame of {size} bytes is over the {max_bytes}-byte cap")
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise _closed() from None
    except OSError as exc:
        raise FrameError("eof", f"the connection broke: {exc.strerror or exc}") from None

