"""The privilege split: at a sandbox's start (as root with only CAP_SETUID, CAP_SETGID
and CAP_KILL), fork a tiny spawner that keeps SETUID/SETGID and nothing else, then
drop the server to its own uid with only CAP_KILL.

The spawner's one job: on the server's request, fork a zygote, drop it to the sandbox
uid (which clears every capability) and exec the worker. It never runs environment
code and listens to no one but the server. Standard library only.
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


def serve(sock: socket.socket, uid: int, gid: int) -> None:
    """The spawner's loop; ends when the server closes its end."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    while True:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, 1, 1)
        except OSError:
            return
        if not data:
            return
        if data != b"z" or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            return  # the server never sends anything else
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


def split(server_uid: int, sandbox_uid: int) -> Spawner:
    """Call first thing in the container's entry point, as root, before any thread exists."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            ours.close()
            kept = (confine.CAP_SETUID, confine.CAP_SETGID, confine.CAP_SETPCAP)
            confine.drop_bounding(kept)
            confine.keep_only(*kept)
            confine.set_non_dumpable()
            serve(theirs, sandbox_uid, sandbox_uid)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    theirs.close()
    confine.become(server_uid, server_uid, keep=(confine.CAP_KILL,))
    return Spawner(ours, sandbox_uid)
