"""The session socket's wire format: the protobuf messages of proto/, each behind a
4-byte big-endian length, over a Unix stream socket.

A session socket carries what a Session stream carries (SessionRequest, or
LeaseSessionRequest at a pool, in; SessionResponse out; one for one, in order),
without gRPC's HTTP/2 layer: in Python a gRPC message costs some 400 µs where a
frame on a Unix socket costs some 25. Same host only. Any language can speak it:
length, then the message's protobuf bytes.
"""

from __future__ import annotations

import socket
import struct
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # not imported at run time: workers import this module, and asyncio costs them MiBs
    import asyncio

HEADER = struct.Struct("!I")
MAX_FRAME = 64 << 20
LARGE = 1 << 20  # frames over this are read into a buffer of their own size
_TIMEVAL = struct.Struct("@ll")


def session_socket_path(address: str) -> str:
    """Where a server with the gRPC socket `unix:.../env.sock` puts its session socket: .../env.session.sock."""
    path = address.removeprefix("unix:")
    return (path[:-5] if path.endswith(".sock") else path) + ".session.sock"


class WireError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # "eof" | "timeout" | "too_large"


def frame(message: Any) -> bytes:
    body = message.SerializeToString()
    return HEADER.pack(len(body)) + body


def set_timeouts(sock: socket.socket, seconds: float) -> None:
    """Kernel-side read and write timeouts on a blocking socket (0: none). One syscall per read,
    where a Python socket timeout adds a poll() and a failed recv() to each."""
    whole = int(seconds)
    micros = max(int((seconds - whole) * 1e6), 1 if seconds > 0 and not whole else 0)
    value = _TIMEVAL.pack(whole, micros)
    if sock.gettimeout() is not None:
        sock.settimeout(None)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


def send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except BlockingIOError:
        raise WireError("timeout", "the peer stopped reading") from None
    except OSError as exc:
        raise WireError("eof", f"the connection broke: {exc.strerror or exc}") from None


class FrameReader:
    """Frames from a blocking socket; usually one recv() per frame."""

    def __init__(self, sock: socket.socket, max_bytes: int = MAX_FRAME) -> None:
        self.sock = sock
        self.max_bytes = max_bytes
        self.buffer = bytearray()

    def _fill(self, wanted: int) -> None:
        try:
            chunk = self.sock.recv(min(max(wanted, 1 << 16), 1 << 20))  # recv(n) allocates n bytes first
        except (BlockingIOError, TimeoutError):
            raise WireError("timeout", "no answer in time") from None
        except OSError as exc:
            raise WireError("eof", f"the connection broke: {exc.strerror or exc}") from None
        if not chunk:
            raise WireError("eof", "the peer closed the connection")
        self.buffer += chunk

    def next_size(self) -> int:
        """The size of the next frame, from its header, before its body is read."""
        while len(self.buffer) < HEADER.size:
            self._fill(HEADER.size - len(self.buffer))
        return int(HEADER.unpack_from(self.buffer)[0])

    def read(self) -> bytes | bytearray:
        size = self.next_size()
        if size > self.max_bytes:
            raise WireError("too_large", f"a frame of {size} bytes is over the {self.max_bytes}-byte cap")
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
            try:
                got = self.sock.recv_into(view[have:], min(size - have, 1 << 20))
            except (BlockingIOError, TimeoutError):
                raise WireError("timeout", "no answer in time") from None
            except OSError as exc:
                raise WireError("eof", f"the connection broke: {exc.strerror or exc}") from None
            if not got:
                raise WireError("eof", "the peer closed the connection")
            have += got
        view.release()
        return body


async def read_frame(reader: asyncio.StreamReader, max_bytes: int = MAX_FRAME) -> bytes:
    import asyncio

    try:
        (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
        if size > max_bytes:
            raise WireError("too_large", f"a frame of {size} bytes is over the {max_bytes}-byte cap")
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise WireError("eof", "the peer closed the connection") from None
    except OSError as exc:
        raise WireError("eof", f"the connection broke: {exc.strerror or exc}") from None
