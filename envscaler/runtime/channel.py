"""The server <-> worker channel: one message (proto/envscaler/v1/worker.proto) per frame of the protocol's framing
(envscaler/protocol/framing.py), with descriptors riding on a frame's first bytes where the message says so.

Frames from a worker are untrusted: the reader caps their size and takes exactly one frame per answer; what the
bytes mean is the wire's to decode (envscaler/runtime/trusted/wire.py on the trusted side, worker_wire.py in the
sandbox).
Each side sends exactly one frame and waits for the answer, so a frame usually arrives in one read. Standard library
only (the sandbox uses it too).
"""

from __future__ import annotations

import contextlib
import os
import socket

from envscaler.protocol import framing
from envscaler.protocol.framing import HEADER, FrameError, set_deadline

__all__ = ["FrameError", "exchange", "recv", "recv_with_fds", "send", "set_deadline"]


def send(sock: socket.socket, body: bytes, fds: list[int] | None = None) -> None:
    framing.send(sock, framing.frame_body(body), fds)


def exchange(sock: socket.socket, body: bytes, max_bytes: int, deadline: float,
             fds: list[int] | None = None) -> bytes:
    """Send one frame (with `fds`, if any) and read the answer, both within `deadline`."""
    set_deadline(sock, deadline)
    send(sock, body, fds)
    return recv(sock, max_bytes, deadline, deadline_set=True)


def _one_frame(sock: socket.socket, head: bytes, max_bytes: int, deadline: float | None) -> bytes:
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
    return bytes(body)


def recv(sock: socket.socket, max_bytes: int, deadline: float | None = None,
         deadline_set: bool = False) -> bytes:
    if deadline is not None and not deadline_set:
        set_deadline(sock, deadline)
    return _one_frame(sock, framing.recv_some(sock, framing.FIRST_READ), max_bytes, deadline)


def recv_with_fds(sock: socket.socket, max_bytes: int, max_fds: int, deadline: float | None = None,
                  first_read: int = HEADER.size) -> tuple[bytes, list[int]]:
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
