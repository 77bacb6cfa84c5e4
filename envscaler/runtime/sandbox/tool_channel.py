"""The worker's side of its episode channel (proto: EpisodeChannelRequest): the caller's own connection, handed
over by the server, on which the worker answers CallTool requests itself.

Runs in the sandbox, in the episode's worker. What it answers is no more trusted than a tool's result already is:
the caller accepts call_tool and error answers only, and the server watches the channel from outside
(envscaler/runtime/trusted/channel_watch.py).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Collection
from typing import Any

from envscaler.protocol import framing
from envscaler.runtime.calls import call_arguments
from envscaler.runtime.messages import KIND_NUMBERS, failure, kind_of
from envscaler.runtime.sandbox import tool_wire

INVALID_ARGUMENT, FAILED_PRECONDITION = 3, 9  # google.rpc.Code

Call = Callable[[str, dict[str, Any]], dict[str, Any]]  # a tool's name and arguments -> the worker's reply


class ToolChannel:
    def __init__(self, sock: socket.socket, episode_id: str, max_argument_bytes: int) -> None:
        sock.setblocking(True)
        framing.set_timeouts(sock, 0)  # the caller's pace is the caller's: the server watches the deadline
        self.sock = sock
        self.episode_id = episode_id
        self.max_argument_bytes = max_argument_bytes
        # One frame at a time: a request the caller sent ahead stays on the socket, where the server sees it
        # (ChannelWatch.time_left) until this worker takes it.
        self.reader = framing.FrameReader(sock, greedy=False)
        self.pid = os.getpid()

    def serve(self, call: Call, tools: Collection[str]) -> bool:
        """Answer the caller's next request (the channel was readable); False when the channel is gone (the server
        then ends the episode). One at a time: the server's ping on the control socket is answered between two
        calls, so a busy worker is not taken for a stuck one."""
        try:
            answer = self.answer(self.reader.read(), call, tools)
            if os.getpid() != self.pid:  # a tool forked: only the worker itself may answer
                os._exit(0)
            self.sock.sendall(answer)
            return True
        except framing.FrameError as exc:
            last = tool_wire.session_error(INVALID_ARGUMENT, f"{exc}; closing") if exc.reason == "too_large" else b""
            self.close(last)
            return False
        except OSError:
            self.close()
            return False

    def answer(self, body: bytes | bytearray, call: Call, tools: Collection[str]) -> bytes:
        started = time.perf_counter()
        try:
            request = tool_wire.read_request(bytes(body))
        except tool_wire.WireError as exc:
            return tool_wire.session_error(INVALID_ARGUMENT, f"malformed envscaler.v1.SessionRequest: {exc}")
        if isinstance(request, str):
            return tool_wire.session_error(FAILED_PRECONDITION, f"an episode channel carries call_tool only, not "
                                                                f"{request or 'an empty request'}: send it on the "
                                                                "session's own connection")
        if request.episode_id and request.episode_id != self.episode_id:
            return tool_wire.session_error(FAILED_PRECONDITION, f"episode {request.episode_id!r} is over; the "
                                                                f"current episode is {self.episode_id!r}")
        arguments = call_arguments(request.name, request.arguments_json, tools, self.max_argument_bytes)
        reply = failure(*arguments) if isinstance(arguments, tuple) else call(request.name, arguments)
        duration_us = int((time.perf_counter() - started) * 1e6)
        if reply.get("ok"):
            return tool_wire.call_tool_response(str(reply["result"]), str(reply["observation"]),
                                                duration_us=duration_us)
        kind, message = kind_of(reply)
        return tool_wire.call_tool_response(observation=f"Error: {message}", error_kind=KIND_NUMBERS[kind],
                                            error_message=message, duration_us=duration_us)

    def close(self, last: bytes = b"") -> None:
        try:
            if last:
                self.sock.sendall(last)
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
