"""Ending every process of the sandbox uid, as the kernel sees them (trusted side; standard library only).

`end_uid` (in the server) starts a helper, `python -m envscaler.runtime.trusted.teardown UID SECONDS`, outside every
Landlock
domain, which drops to the sandbox uid with no capability and repeats kill(-1, SIGKILL): the kernel signals every
process of that uid in the container's pid namespace, whatever /proc says of it (a name that is not UTF-8, a leader
thread that exited), and a fork cannot race it, since a pending fatal signal aborts the fork. kill(-1) itself
proves nothing (it counts processes it may not signal), so the server then verifies from /proc, read as bytes,
that the uid owns no process at all, zombies included until they are reaped, within a deadline. A teardown that
cannot be verified is reported: the container is retired, never handed out.

Where the sandbox shares the server's uid (`--no-privilege-split`), no helper can tell the two apart: the server
signals each pid of that uid but its own instead (`procfs.end_pids`; weaker, and SECURITY.md says so).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from envscaler.runtime import confine, procfs

TEARDOWN_SECONDS = 3.0  # to end and verify; a pool's release (EndEpisode) allows 5 s in all
_POLL = 0.002


def verify_empty(uid: int, deadline: float, exclude: frozenset[int] = frozenset(),
                 reap: Callable[[], None] = lambda: None) -> str:
    """Wait until the uid owns no process but `exclude`, zombies included (PID 1 reaps orphans; `reap` reaps our own
    children); "" when it does, else what is left at the deadline."""
    while True:
        reap()
        left = procfs.processes_of(uid, exclude)
        if not left:
            return ""
        if time.monotonic() >= deadline:
            return procfs.describe(left)
        time.sleep(_POLL)


def helper_argv(uid: int, seconds: float) -> list[str]:
    # -P -s: nothing from the working directory or the user's site reaches its imports.
    return [sys.executable, "-P", "-s", "-m", "envscaler.runtime.trusted.teardown", str(uid), f"{seconds:.3f}"]


def end_uid(uid: int, env: dict[str, str], seconds: float = TEARDOWN_SECONDS,
            reap: Callable[[], None] = lambda: None) -> str:
    """End every process of `uid` (not ours: we must hold CAP_SETUID and not run as it) and verify that none is
    left; "" when verified, else why not. `reap` reaps our own children of that uid."""
    deadline = time.monotonic() + seconds
    problem = ""
    while True:
        try:
            helper = subprocess.Popen(helper_argv(uid, max(deadline - time.monotonic(), 0.1)), env=env,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, cwd="/")
        except OSError as exc:
            return f"the teardown helper could not be started: {exc}"
        try:
            status = helper.wait(timeout=max(deadline - time.monotonic(), 0) + 1.0)
        except subprocess.TimeoutExpired:
            helper.kill()
            status = helper.wait()
        if status == 2:
            return "the teardown helper could not drop to the sandbox uid"
        # Our own children of the uid (the zygote, the helper) are reaped; orphans are PID 1's to reap.
        problem = verify_empty(uid, min(deadline, time.monotonic() + 0.5), reap=reap)
        if not problem:
            return ""
        if time.monotonic() >= deadline:  # killed by what it was killing (no Landlock scope), or outrun: retire
            return f"the sandbox's processes could not be ended: {problem}"


def _kill_all(deadline: float) -> bool:
    """In the helper, as the sandbox uid: kill(-1, SIGKILL) until no other process of ours runs. Zombies are left to
    their parents (the server verifies them gone)."""
    me, uid = os.getpid(), os.getuid()
    while True:
        with contextlib.suppress(OSError):
            os.kill(-1, signal.SIGKILL)  # every process we may signal but ourselves
        if not any(procfs.alive(pid) for pid in procfs.processes_of(uid, {me})):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)


def main(argv: list[str]) -> int:
    """The helper: 0 when no process of the uid runs any more, 1 at the deadline, 2 when it cannot drop."""
    try:
        uid, seconds = int(argv[0]), float(argv[1])
        confine.set_non_dumpable()
        confine.drop_to(uid)  # no capability, bounding and ambient sets empty: it signals that uid alone
    except (IndexError, ValueError, OSError):
        return 2
    return 0 if _kill_all(time.monotonic() + seconds) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
