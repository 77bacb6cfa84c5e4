"""Length-prefixed JSON frames between the server and its workers.

Frames from a worker are untrusted: the reader caps their size and treats
anything malformed as a protocol error.

Deadlines are kernel-side (SO_RCVTIMEO/SO_SNDTIMEO on a blocking socket): one
syscall per read, where a Python socket timeout costs a poll() and a failed
recv() first, about half of a whole round trip here. Each side sends exactly one
frame and waits for the answer, so a frame usually arrives in one read.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import time
from typing import Any

from envscaler.wire import set_timeouts

HEADER = struct.Struct("!I")
FIRST_READ = 1 << 16
MAX_READ = 1 << 20


class FrameError(Exception):
    """The peer closed the channel, broke the protocol or overran the deadline."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # "eof" | "timeout" | "protocol"


class RawJSON:
    """A top-level value that is already JSON text, sent as is: the server passes a scenario's init_config from
    its bundle file to the worker without parsing it (a large database is parsed once, by the worker)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def encode(message: dict[str, Any]) -> bytes:
    raw = [(key, value.data) for key, value in message.items() if isinstance(value, RawJSON)]
    body = json.dumps({k: v for k, v in message.items() if not isinstance(v, RawJSON)},
                      separators=(",", ":"), ensure_ascii=False).encode()
    if not raw:
        return HEADER.pack(len(body)) + body
    parts = [body[:-1]]  # the object without its closing brace, then each raw member: one copy of a large value
    for key, data in raw:
        parts += [b"," if len(parts) > 1 or len(body) > 2 else b"", json.dumps(key).encode(), b":", data]
    parts.append(b"}")
    return b"".join([HEADER.pack(sum(map(len, parts))), *parts])


def set_deadline(sock: socket.socket, deadline: float) -> None:
    """Make reads and writes on `sock` give up at `deadline` (time.monotonic())."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FrameError("timeout", "deadline exceeded")
    set_timeouts(sock, remaining)


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = encode(message)
    try:
        if fds:
            sent = socket.send_fds(sock, [data], fds)
            if sent < len(data):
                sock.sendall(data[sent:])
        else:
            sock.sendall(data)
    except BlockingIOError:  # SO_SNDTIMEO: the peer stopped reading
        raise FrameError("timeout", "deadline exceeded while sending") from None
    except OSError as exc:
        raise FrameError("eof", f"channel error: {exc.strerror or exc}") from None


def exchange(sock: socket.socket, message: dict[str, Any], max_bytes: int, deadline: float) -> dict[str, Any]:
    """Send one frame and read the answer, both within `deadline`."""
    set_deadline(sock, deadline)
    send(sock, message)
    return recv(sock, max_bytes, deadline, deadline_set=True)


def _read(sock: socket.socket, size: int) -> bytes:
    try:
        chunk = sock.recv(size)
    except (BlockingIOError, TimeoutError):  # SO_RCVTIMEO expired
        raise FrameError("timeout", "deadline exceeded") from None
    except OSError as exc:
        raise FrameError("eof", f"channel error: {exc.strerror or exc}") from None
    if not chunk:
        raise FrameError("eof", "peer closed the channel")
    return chunk


def _decode(body: bytes | bytearray) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise FrameError("protocol", "malformed frame from worker") from None
    if not isinstance(message, dict):
        raise FrameError("protocol", "frame from worker is not an object")
    return message


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise FrameError("protocol", f"frame of {size} bytes exceeds the {max_bytes}-byte limit")


def _complete(sock: socket.socket, data: bytes, max_bytes: int, deadline: float | None) -> dict[str, Any]:
    """Read the rest of a frame whose first bytes are `data`."""
    buffer = bytearray(data)
    while len(buffer) < HEADER.size:
        if deadline is not None:
            set_deadline(sock, deadline)
        buffer += _read(sock, HEADER.size - len(buffer))
    (size,) = HEADER.unpack_from(buffer)
    _check_size(size, max_bytes)
    total = HEADER.size + size
    if len(buffer) > total:
        raise FrameError("protocol", "the peer sent more than one frame")
    while len(buffer) < total:
        if deadline is not None:
            set_deadline(sock, deadline)
        buffer += _read(sock, min(total - len(buffer), MAX_READ))
    return _decode(memoryview(buffer)[HEADER.size:].tobytes())


def recv(sock: socket.socket, max_bytes: int, deadline: float | None = None,
         deadline_set: bool = False) -> dict[str, Any]:
    if deadline is not None and not deadline_set:
        set_deadline(sock, deadline)
    return _complete(sock, _read(sock, FIRST_READ), max_bytes, deadline)


def recv_with_fds(sock: socket.socket, max_bytes: int, max_fds: int,
                  deadline: float | None = None) -> tuple[dict[str, Any], list[int]]:
    """A frame sent with `send(..., fds=...)`: the descriptors ride on its first bytes."""
    if deadline is not None:
        set_deadline(sock, deadline)
    try:
        head, fds, _flags, _addr = socket.recv_fds(sock, HEADER.size, max_fds)
    except (BlockingIOError, TimeoutError):
        raise FrameError("timeout", "deadline exceeded") from None
    except OSError as exc:
        raise FrameError("eof", f"channel error: {exc.strerror or exc}") from None
    try:
        if not head:
            raise FrameError("eof", "peer closed the channel")
        return _complete(sock, head, max_bytes, deadline), fds
    except FrameError:
        for fd in fds:
            _close(fd)
        raise


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
