"""The trusted side of an episode channel (proto: EpisodeChannelRequest): the server hands a caller's connection to
the episode's worker, which answers that caller's CallTool requests itself, and watches it from outside.

The server reads nothing on the channel, so a call wakes no server thread. It keeps its own reference to the
connection, and one thread per channel waits in poll() for either end to go:
- the caller closed it (at a call's deadline, or gone): the episode ends, its worker is killed (the deadline is
  still enforced from outside the worker, by the caller and then the server);
- the worker died: the server shuts the connection, so the caller sees the end at once and asks the server why.
It also notes, by its own clock, when each request arrives (an edge-triggered wait: one wake per arrival, none while
the worker reads), so that a caller's report that a call overran is judged from that call's arrival, not from the
caller's word (`time_left`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable

_HANGUP = select.POLLRDHUP | select.POLLHUP | select.POLLERR
_ARRIVAL = select.EPOLLIN | select.EPOLLET | select.EPOLLRDHUP


class ChannelWatch:
    """One episode channel, seen from the server: its connection, the worker's pidfd, a thread waiting on both."""

    def __init__(self, conn: socket.socket, pidfd: int, on_hangup: Callable[[], None]) -> None:
        self.conn = conn
        self.pidfd = os.dup(pidfd)  # ours: the worker's own pidfd may be closed while we wait on this one
        self.on_hangup = on_hangup
        self.lock = threading.Lock()
        self.closed = False
        self._wake_read, self._wake_write = os.pipe()
        self.last_arrival = time.monotonic()  # of a request on the channel (or of the channel, before any)
        threading.Thread(target=self._watch, daemon=True, name="episode-channel").start()

    def hung_up(self) -> bool:
        """Whether the caller's end is gone (checked now, without waiting)."""
        with self.lock:
            if self.closed:
                return True
            poller = select.poll()
            poller.register(self.conn.fileno(), _HANGUP)
            return bool(poller.poll(0))

    def unread(self) -> int:
        """Bytes the caller sent that the worker has not taken yet (it takes one frame at a time)."""
        with self.lock:
            if self.closed:
                return 0
            return int(struct.unpack("i", fcntl.ioctl(self.conn.fileno(), termios.FIONREAD, b"\0" * 4))[0])

    def time_left(self, own: float) -> float:
        """How long the call the worker runs may still take by the server's `own` deadline, counted from the latest
        request's arrival; the whole `own` when requests wait unread behind it (a caller that sends ahead: its calls
        start when the worker takes them, which the server does not see)."""
        if self.unread():
            return own
        return min(max(own - (time.monotonic() - self.last_arrival), 0.0), own)

    def worker_gone(self) -> bool:
        with self.lock:
            return self.closed or bool(select.select([self.pidfd], [], [], 0)[0])

    def _watch(self) -> None:
        poller = select.epoll()
        poller.register(self.conn.fileno(), _ARRIVAL)
        poller.register(self.pidfd, select.EPOLLIN)
        poller.register(self._wake_read, select.EPOLLIN)
        try:
            while True:
                ready = dict(poller.poll())
                if self._wake_read in ready:
                    return
                if self.pidfd in ready:  # the worker died: end the channel so the caller learns it now
                    return
                events = ready.get(self.conn.fileno(), 0)
                if events & (select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR):
                    self.on_hangup()
                    return
                if events & select.EPOLLIN:
                    self.last_arrival = time.monotonic()
        finally:
            poller.close()
            self._close()

    def _close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            with contextlib.suppress(OSError):
                self.conn.shutdown(socket.SHUT_RDWR)
            self.conn.close()
            for fd in (self.pidfd, self._wake_read, self._wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def stop(self) -> None:
        """The episode is over: the caller sees the channel end now; the thread closes what it holds."""
        with self.lock:
            if self.closed:
                return
            with contextlib.suppress(OSError):
                self.conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                os.write(self._wake_write, b"x")
