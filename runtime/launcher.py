"""The privilege split, at a sandbox's start: the entry process runs as root with only
CAP_SETUID, CAP_SETGID, CAP_SETPCAP and CAP_KILL. It keeps SETUID/SETGID only until it
has forked the zygote and dropped it to the sandbox uid (which clears every capability;
the bounding set is emptied first); then it drops them itself, keeps CAP_KILL alone
(ambient, to end the sandbox's processes) and execs the server under the server's uid.
No process in the container can change uids after that.

The zygote is the server's child, started once: if it dies, the sandbox cannot start
another, and the pool replaces the container. Standard library only.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass

from envscaler.runtime import confine

SERVER_UID, SANDBOX_UID = 10001, 10002
ZYGOTE_ENV = "ENVSCALER_ZYGOTE"  # "control fd:pid:pidfd", for the server the launcher becomes
WORKER_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "HOME")
PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE = 47, 2


def worker_argv(fd: int) -> list[str]:
    # -P -s: nothing from the working directory or the user's site reaches the worker's imports.
    return [sys.executable, "-P", "-s", "-m", "envscaler.runtime.worker", str(fd)]


def worker_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in WORKER_ENV} | {"PYTHONDONTWRITEBYTECODE": "1"}


@dataclass
class Prestarted:
    """The zygote the launcher started for this server: its control socket, pid and pidfd."""

    control: socket.socket
    pid: int
    pidfd: int
    sandbox_uid: int = SANDBOX_UID


def _exec_zygote(control_fd: int, uid: int) -> None:
    """In the launcher's child: become the sandbox user with no capability left, then exec the worker."""
    try:
        confine.drop_bounding()
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.set_inheritable(control_fd, True)
        os.execve(sys.executable, worker_argv(control_fd), worker_env())
    finally:
        os._exit(127)


def launch(argv: list[str], server_uid: int = SERVER_UID, sandbox_uid: int = SANDBOX_UID) -> None:
    """Fork the zygote as `sandbox_uid`, then become the server as `server_uid` (never returns)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    zygote = os.fork()
    if zygote == 0:
        ours.close()
        _exec_zygote(theirs.fileno(), sandbox_uid)
    theirs.close()
    pidfd = os.pidfd_open(zygote)
    try:
        confine.drop_bounding((confine.CAP_KILL,))
        confine.prctl(confine.PR_SET_KEEPCAPS, 1)
        os.setgroups([])
        os.setresgid(server_uid, server_uid, server_uid)
        os.setresuid(server_uid, server_uid, server_uid)
        confine.keep_only(confine.CAP_KILL, inheritable=True)
        confine.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, confine.CAP_KILL)  # survives the exec; nothing else does
        for fd in (ours.fileno(), pidfd):
            os.set_inheritable(fd, True)
        env = dict(os.environ) | {ZYGOTE_ENV: f"{ours.fileno()}:{zygote}:{pidfd}"}
        os.execve(sys.executable, [sys.executable, "-m", "envscaler.runtime.serve_bundle", *argv], env)
    finally:
        os._exit(127)


def inherited() -> Prestarted | None:
    """In the server the launcher became: the zygote it started."""
    value = os.environ.pop(ZYGOTE_ENV, "")
    parts = value.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    fd, pid, pidfd = (int(p) for p in parts)
    return Prestarted(socket.socket(fileno=fd), pid, pidfd)
