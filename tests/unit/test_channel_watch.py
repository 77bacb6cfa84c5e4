"""The server's watch on an episode channel (envscaler/runtime/trusted/channel_watch.py), on real sockets and a real
process:
what it knows, by its own clock, of when the call the worker runs arrived (how a caller's report that a call overran
is judged), and that the caller's hang-up still ends the episode."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from envscaler.runtime.trusted.channel_watch import ChannelWatch


@pytest.fixture
def channel() -> Iterator[tuple[socket.socket, socket.socket, ChannelWatch, threading.Event]]:
    """(the caller's end, the worker's end, the server's watch on it, set on hang-up); a live process as the worker."""
    caller, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    pidfd = os.pidfd_open(process.pid)
    hung_up = threading.Event()
    watch = ChannelWatch(socket.socket(fileno=os.dup(worker_end.fileno())), pidfd, hung_up.set)
    try:
        yield caller, worker_end, watch, hung_up
    finally:
        watch.stop()
        process.kill()
        process.wait()
        os.close(pidfd)
        caller.close()
        worker_end.close()


def _settled(condition: object, seconds: float = 2.0) -> None:
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:  # type: ignore[operator]
        time.sleep(0.005)


def test_the_time_left_counts_from_the_latest_arrival(channel: tuple) -> None:
    caller, worker_end, watch, _ = channel
    time.sleep(0.3)
    before = watch.last_arrival
    caller.sendall(b"a request")
    _settled(lambda: watch.last_arrival > before)
    assert watch.last_arrival > before
    worker_end.recv(64)  # the worker takes it: nothing waits unread
    assert watch.unread() == 0
    left = watch.time_left(10.0)
    assert 9.0 < left <= 10.0  # by the server's clock, from the arrival, not from the channel's opening
    time.sleep(0.3)
    assert watch.time_left(10.0) < left - 0.25
    assert watch.time_left(0.1) == 0.0  # past the server's own deadline: nothing left


def test_requests_sent_ahead_and_unread_give_the_whole_deadline(channel: tuple) -> None:
    """A caller that sends ahead: the call the worker runs started when it took it, which the server cannot see, so
    the judgement counts the whole deadline from now (a busy honest worker is never judged stuck for it)."""
    caller, _, watch, _ = channel
    caller.sendall(b"first")
    caller.sendall(b"second, unread")
    _settled(lambda: watch.unread() > 0)
    time.sleep(0.2)
    assert watch.unread() == len(b"first") + len(b"second, unread")
    assert watch.time_left(10.0) == 10.0


def test_a_hang_up_still_ends_the_episode(channel: tuple) -> None:
    caller, _, _, hung_up = channel
    caller.sendall(b"one more")
    caller.shutdown(socket.SHUT_WR)
    assert hung_up.wait(2.0)
