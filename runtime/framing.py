"""Length-prefixed JSON frames between the server and its workers.

Frames from a worker are untrusted: the reader caps their size and treats
anything malformed as a protocol error.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import time
from typing import Any

HEADER = struct.Struct("!I")


class FrameError(Exception):
    """The peer closed the channel, broke the protocol or overran the deadline."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # "eof" | "timeout" | "protocol"


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    return HEADER.pack(len(body)) + body


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = encode(message)
    if fds:
        sent = socket.send_fds(sock, [data], fds)
        if sent < len(data):
            sock.sendall(data[sent:])
    else:
        sock.sendall(data)


def _recv_exact(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FrameError("timeout", "deadline exceeded")
            sock.settimeout(remaining)
        try:
            chunk = sock.recv(min(size - len(chunks), 1 << 20))
        except TimeoutError:
            raise FrameError("timeout", "deadline exceeded") from None
        except OSError as exc:
            raise FrameError("eof", f"channel error: {exc.strerror or exc}") from None
        if not chunk:
            raise FrameError("eof", "peer closed the channel")
        chunks += chunk
    return bytes(chunks)


def _decode(body: bytes) -> dict[str, Any]:
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


def recv(sock: socket.socket, max_bytes: int, deadline: float | None = None) -> dict[str, Any]:
    (size,) = HEADER.unpack(_recv_exact(sock, HEADER.size, deadline))
    _check_size(size, max_bytes)
    return _decode(_recv_exact(sock, size, deadline))


def recv_with_fds(sock: socket.socket, max_bytes: int, max_fds: int,
                  deadline: float | None = None) -> tuple[dict[str, Any], list[int]]:
    """A frame sent with `send(..., fds=...)`: the descriptors ride on its first bytes."""
    if deadline is not None:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
    try:
        head, fds, _flags, _addr = socket.recv_fds(sock, HEADER.size, max_fds)
    except TimeoutError:
        raise FrameError("timeout", "deadline exceeded") from None
    except OSError as exc:
        raise FrameError("eof", f"channel error: {exc.strerror or exc}") from None
    try:
        if not head:
            raise FrameError("eof", "peer closed the channel")
        head += _recv_exact(sock, HEADER.size - len(head), deadline)
        (size,) = HEADER.unpack(head)
        _check_size(size, max_bytes)
        return _decode(_recv_exact(sock, size, deadline)), fds
    except FrameError:
        for fd in fds:
            _close(fd)
        raise


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
