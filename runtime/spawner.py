"""The privilege split: at a sandbox's start (as root with only CAP_SETUID, CAP_SETGID,
CAP_SETPCAP and CAP_KILL) the entry process becomes a tiny spawner that keeps those
and nothing else; its first child drops to the server's uid with
only CAP_KILL and execs the server (a fresh interpreter: no memory shared with the spawner).

The spawner's one job: on the server's request, fork a zygote, drop it to the sandbox
uid (which clears every capability; the bounding set is emptied first) and exec the
worker. It never runs environment code and listens to no one but the server.
Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import sys
from dataclasses import dataclass

from envscaler.runtime import confine

_PID = struct.Struct("!i")
WORKER_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "HOME")


def worker_argv(fd: int) -> list[str]:
    # -P -s: nothing from the working directory or the user's site reaches the worker's imports.
    return [sys.executable, "-P", "-s", "-m", "envscaler.runtime.worker", str(fd)]


def worker_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in WORKER_ENV} | {"PYTHONDONTWRITEBYTECODE": "1"}


@dataclass
class Spawner:
    """The server's end: ask for a zygote on `control_fd`; get its pid and a pidfd."""

    sock: socket.socket
    sandbox_uid: int

    def spawn(self, control_fd: int) -> tuple[int, int]:
        socket.send_fds(self.sock, [b"z"], [control_fd])
        data, fds, _flags, _addr = socket.recv_fds(self.sock, _PID.size, 1)
        if len(data) != _PID.size or not fds:
            for fd in fds:
                os.close(fd)
            raise OSError("the spawner did not start a zygote")
        (pid,) = _PID.unpack(data)
        if pid <= 0:
            os.close(fds[0])
            raise OSError(f"the spawner could not start a zygote (errno {-pid})")
        return pid, fds[0]


def _zygote(control_fd: int, uid: int, gid: int) -> None:
    """In the spawner's child: become the sandbox user (no capabilities left), then exec the worker."""
    try:
        confine.drop_bounding()
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.set_inheritable(control_fd, True)
        os.execve(sys.executable, worker_argv(control_fd), worker_env())
    finally:
        os._exit(127)


SPAWNER_FD_ENV = "ENVSCALER_SPAWNER_FD"
PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE = 47, 2


def serve(sock: socket.socket, uid: int, gid: int, server: int) -> int:
    """The spawner's loop; ends when the server closes its end. Returns the server's exit status."""
    status: int | None = None

    def reap() -> None:
        nonlocal status
        with contextlib.suppress(ChildProcessError):
            while True:
                pid, raw = os.waitpid(-1, os.WNOHANG)
                if not pid:
                    return
                if pid == server:
                    status = os.waitstatus_to_exitcode(raw)

    while True:
        reap()
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, 1, 1)
        except OSError:
            data, fds = b"", []
        if data != b"z" or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            break  # the server is gone (or sent what it never sends)
        pid = os.fork()
        if pid == 0:
            sock.close()
            _zygote(fds[0], uid, gid)
        os.close(fds[0])
        try:
            pidfd = os.pidfd_open(pid)
        except OSError as exc:
            socket.send_fds(sock, [_PID.pack(-(exc.errno or 1))], [os.open(os.devnull, os.O_RDONLY)])
            continue
        socket.send_fds(sock, [_PID.pack(pid)], [pidfd])
        os.close(pidfd)
    if status is None:
        with contextlib.suppress(ChildProcessError):
            status = os.waitstatus_to_exitcode(os.waitpid(server, 0)[1])
    return status if status is not None and status >= 0 else 1


def _exec_server(sock: socket.socket, server_uid: int, argv: list[str]) -> None:
    """In the first fork: become the server's uid keeping only CAP_KILL (ambient, so it survives the exec of a fresh
    interpreter, which shares no memory with the spawner), then exec the server."""
    try:
        confine.drop_bounding((confine.CAP_KILL,))
        confine.prctl(confine.PR_SET_KEEPCAPS, 1)
        os.setgroups([])
        os.setresgid(server_uid, server_uid, server_uid)
        os.setresuid(server_uid, server_uid, server_uid)
        confine.keep_only(confine.CAP_KILL, inheritable=True)
        confine.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, confine.CAP_KILL)
        os.set_inheritable(sock.fileno(), True)
        env = dict(os.environ) | {SPAWNER_FD_ENV: str(sock.fileno())}
        os.execve(sys.executable, [sys.executable, "-m", "envscaler.runtime.serve_bundle", *argv], env)
    finally:
        os._exit(127)


def run_as_root(server_uid: int, sandbox_uid: int, argv: list[str]) -> int:
    """The container's entry point as root: this process becomes the spawner (keeping SETUID/SETGID, SETPCAP to
    empty each zygote's bounding set, and KILL), and its first child the server under `server_uid`. Signals to stop
    are passed on to the server; the spawner ends with the server's exit status."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    server = os.fork()
    if server == 0:
        ours.close()
        _exec_server(theirs, server_uid, argv)
    theirs.close()
    # KILL: to pass a stop signal on to the server, which runs under another uid.
    kept = (confine.CAP_SETUID, confine.CAP_SETGID, confine.CAP_SETPCAP, confine.CAP_KILL)
    confine.drop_bounding(kept)
    confine.keep_only(*kept)
    confine.set_non_dumpable()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _frame: os.kill(server, number))
    return serve(ours, sandbox_uid, sandbox_uid, server)


def inherited() -> Spawner | None:
    """In the server exec'd by run_as_root: its end of the spawner's socket."""
    fd = os.environ.pop(SPAWNER_FD_ENV, "")
    if not fd.isdigit():
        return None
    return Spawner(socket.socket(fileno=int(fd)), SANDBOX_UID)


SANDBOX_UID = 10002
