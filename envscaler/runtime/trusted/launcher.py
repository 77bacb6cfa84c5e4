"""The privilege split, at a sandbox's start: the entry process runs as root with only
CAP_SETUID, CAP_SETGID, CAP_SETPCAP and CAP_KILL. It execs the server under the server's
uid, keeping those four capabilities and nothing else (ambient, so they survive the exec
of a fresh interpreter).

The server uses them for one thing each: to start every lease's zygote, which drops to
the sandbox uid with no capability and an empty bounding set before it runs anything
(worker.py `drop_to`), and to end the sandbox's processes. A zygote runs environment code
for its lease's whole life, so none outlives its lease: nothing the environment did to
it can reach the next. Standard library only.
"""

from __future__ import annotations

import os
import sys

from envscaler.protocol.identities import SANDBOX_UID, SERVER_UID
from envscaler.runtime import confine

SPLIT_ENV = "ENVSCALER_SANDBOX_UID"  # tells the server it was launched split, and the sandbox uid
WORKER_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "HOME")
PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE = 47, 2
SERVER_CAPABILITIES = (confine.CAP_KILL, confine.CAP_SETGID, confine.CAP_SETUID, confine.CAP_SETPCAP)


def worker_argv(fd: int, sandbox_uid: int | None = None) -> list[str]:
    # -P -s: nothing from the working directory or the user's site reaches the worker's imports.
    argv = [sys.executable, "-P", "-s", "-m", "envscaler.runtime.sandbox.worker", str(fd)]
    return [*argv, "--as", str(sandbox_uid)] if sandbox_uid is not None else argv


def worker_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in WORKER_ENV} | {"PYTHONDONTWRITEBYTECODE": "1"}


def launch(argv: list[str], server_uid: int = SERVER_UID, sandbox_uid: int = SANDBOX_UID) -> None:
    """Become the server as `server_uid`, with only SERVER_CAPABILITIES (never returns)."""
    try:
        confine.drop_bounding(SERVER_CAPABILITIES)
        confine.prctl(confine.PR_SET_KEEPCAPS, 1)
        os.setgroups([])
        os.setresgid(server_uid, server_uid, server_uid)
        os.setresuid(server_uid, server_uid, server_uid)
        confine.keep_only(*SERVER_CAPABILITIES, inheritable=True)
        for cap in SERVER_CAPABILITIES:
            confine.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)
        env = dict(os.environ) | {SPLIT_ENV: str(sandbox_uid)}
        os.execve(sys.executable, [sys.executable, "-m", "envscaler.runtime.trusted.serve_bundle", *argv], env)
    finally:
        os._exit(127)


def launched_split() -> int | None:
    """In the server the launcher exec'd: the sandbox uid its zygotes must run as."""
    value = os.environ.pop(SPLIT_ENV, "")
    return int(value) if value.isdigit() else None
