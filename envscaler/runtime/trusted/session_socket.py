"""The EnvService's session socket (envscaler/protocol/framing.py): Session-stream
semantics over length-prefixed protobuf frames, next to the gRPC socket.

One thread per connection; connections share the servicer's cap on open sessions.
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

import grpc

from envscaler.protocol import framing
from envscaler.protocol.sessions import RequestError, full, refusal, request_of, session_error
from envscaler.v1 import env_pb2 as pb

BIG_FRAME = 4 << 20
BIG_FRAMES = threading.Lock()


@dataclass
class SessionSocket:
    servicer: Any  # runtime.server.EnvServicer
    path: str
    max_frame: int
    route: bool = False  # a lease's own route: it may not end the episode (that is the pool's, on release)
    listener: socket.socket = field(init=False)
    connections: set[socket.socket] = field(default_factory=set)
    closed: bool = False

    def start(self) -> SessionSocket:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(16)
        threading.Thread(target=self._accept, daemon=True, name="session-socket").start()
        return self

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if not self.servicer.sessions.acquire(blocking=False):
                with contextlib.suppress(OSError):
                    conn.sendall(full(self.servicer.max_sessions))
                conn.close()
                continue
            self.connections.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True, name="session").start()

    def _serve(self, conn: socket.socket) -> None:
        reader = framing.FrameReader(conn, self.max_frame)
        handed = False  # the connection became an episode channel: it is the episode's now
        try:
            while True:
                try:
                    big = reader.next_size() > BIG_FRAME
                except framing.FrameError:
                    return
                # Large frames (a database in an init_config) are read, parsed and served one at a time across all
                # connections: four of them at once would be a quarter of a GiB in a 512 MiB sandbox.
                with BIG_FRAMES if big else contextlib.nullcontext():
                    try:
                        body = reader.read()
                    except framing.FrameError as exc:
                        last = refusal(exc)
                        if last is not None:
                            framing.send(conn, last)
                        return
                    request: Any = request_of(pb.SessionRequest, body)
                    del body
                    kind = None if isinstance(request, RequestError) else request.WhichOneof("request")
                    if kind == "episode_channel" and not request.episode_channel.failed:
                        if reader.buffer:  # what follows would be read by us, not by the worker: refused
                            framing.send(conn, framing.frame(session_error(
                                grpc.StatusCode.INVALID_ARGUMENT, "nothing may follow an EpisodeChannelRequest "
                                                                  "before its answer")))
                            continue
                        handed = self.servicer.open_channel(request.episode_channel, conn,
                                                            self if self.route else None)
                        if handed:
                            return
                        continue
                    if self.route and kind == "end_episode":
                        request = RequestError(grpc.StatusCode.PERMISSION_DENIED,
                                               "a lease's route cannot end the episode: release the lease")
                    answer = framing.frame(self.servicer.session_step(request, None, self if self.route else None))
                    del request
                    if big:
                        gc.collect()  # whatever a large request left in a cycle goes now, not at some later pass
                framing.send(conn, answer)
        except framing.FrameError:
            return
        finally:
            self.connections.discard(conn)
            if not handed:
                conn.close()
            self.servicer.sessions.release()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            # Wakes the accept() blocked in our thread: a bare close() would leave it (and the socket, and its inode
            # in a socket directory of 64) alive for good.
            self.listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.listener.close()
        for conn in list(self.connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            os.unlink(self.path)
