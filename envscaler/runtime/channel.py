"""The server <-> worker channel: JSON objects in the protocol's frames (envscaler/protocol/framing.py).

Frames from a worker are untrusted: the reader caps their size and treats
anything malformed as a protocol error. Each side sends exactly one frame and
waits for the answer, so a frame usually arrives in one read.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from typing import Any

from envscaler.protocol import framing
from envscaler.protocol.framing import HEADER, FrameError, set_deadline

__all__ = ["FrameError", "RawJSON", "encode", "exchange", "recv", "recv_with_fds", "send", "set_deadline"]


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
        return framing.frame_body(body)
    parts = [body[:-1]]  # the object without its closing brace, then each raw member: one copy of a large value
    for key, data in raw:
        parts += [b"," if len(parts) > 1 or len(body) > 2 else b"", json.dumps(key).encode(), b":", data]
    parts.append(b"}")
    return b"".join([HEADER.pack(sum(map(len, parts))), *parts])


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    framing.send(sock, encode(message), fds)


def exchange(sock: socket.socket, message: dict[str, Any], max_bytes: int, deadline: float,
             fds: list[int] | None = None) -> dict[str, Any]:
    """Send one frame (with `fds`, if any) and read the answer, both within `deadline`."""
    set_deadline(sock, deadline)
    send(sock, message, fds)
    return recv(sock, max_bytes, deadline, deadline_set=True)


def _decode(body: bytes | bytearray) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise FrameError("protocol", "malformed frame from worker") from None
    if not isinstance(message, dict):
        raise FrameError("protocol", "frame from worker is not an object")
    return message


def _one_frame(sock: socket.socket, head: bytes, max_bytes: int, deadline: float | None) -> dict[str, Any]:
    """The frame whose first bytes are `head`, and nothing after it (one question, one answer)."""
    reader = framing.FrameReader(sock, max_bytes, head,
                                 None if deadline is None else lambda: set_deadline(sock, deadline), greedy=False)
    try:
        body = reader.read()
    except FrameError as exc:
        if exc.reason == "too_large":
            raise FrameError("protocol", str(exc)) from None
        raise
    if reader.buffer:
        raise FrameError("protocol", "the peer sent more than one frame")
    return _decode(body)


def recv(sock: socket.socket, max_bytes: int, deadline: float | None = None,
         deadline_set: bool = False) -> dict[str, Any]:
    if deadline is not None and not deadline_set:
        set_deadline(sock, deadline)
    return _one_frame(sock, framing.recv_some(sock, framing.FIRST_READ), max_bytes, deadline)


def recv_with_fds(sock: socket.socket, max_bytes: int, max_fds: int, deadline: float | None = None,
                  first_read: int = HEADER.size) -> tuple[dict[str, Any], list[int]]:
    """A frame sent with `send(..., fds=...)` (or without): the descriptors ride on its first bytes."""
    if deadline is not None:
        set_deadline(sock, deadline)
    head, fds = framing.recv_with_fds(sock, max_fds, first_read)
    try:
        return _one_frame(sock, head, max_bytes, deadline), fds
    except FrameError:
        for fd in fds:
            _close(fd)
        raise


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
