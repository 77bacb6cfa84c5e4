"""The pre-load wipe (sandbox side; standard library only): what a lease's fresh zygote does first, before it loads
any environment code, so that nothing a previous lease left in the places the sandbox uid can write reaches the next
(files and directories in /tmp, /dev/shm, /dev/mqueue, whatever their permissions or depth; System V IPC objects).
The isolation between leases of a recycled container depends on it (SECURITY.md, "A zygote per lease"); the processes
of that uid are the trusted server's to end first (envscaler/runtime/trusted/teardown.py). The zygote also empties
the same
places between two episodes of one lease (`empty_directory`, best effort: its own code may undo it).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shutil
import stat
import time

PLACES = ("/tmp", "/dev/shm", "/dev/mqueue")


def empty_directory(path: str) -> None:
    """Best effort (between two episodes of one lease, by a zygote that runs environment code)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(path):
            target = os.path.join(path, name)
            try:
                if os.path.isdir(target) and not os.path.islink(target):
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    os.unlink(target)
            except OSError:
                continue


def wipe(path: str, seconds: float = 5.0) -> list[str]:
    """Empty `path` whatever was left in it (directories without permissions, chains thousands deep), without
    recursion: each pass unlinks files, removes empty directories and lifts the children of the others one level up.
    Returns what is still there (empty: clean)."""
    if not os.path.isdir(path):
        return []
    deadline, lifted = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        names = os.listdir(path)
        if not names:
            return []
        for name in names:
            target = os.path.join(path, name)
            try:
                if not stat.S_ISDIR(os.lstat(target).st_mode):
                    os.unlink(target)
                    continue
                os.chmod(target, 0o700)
                children = os.listdir(target)
                if not children:
                    os.rmdir(target)
                for child in children:
                    lifted += 1
                    os.rename(os.path.join(target, child), os.path.join(path, f".wiped-{lifted}"))
            except OSError:
                continue
    return sorted(os.listdir(path))[:5]


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def remove_ipc() -> int:
    """Remove the System V shared memory, message queues and semaphores a lease left: they outlive processes."""
    libc = _libc()
    removed = 0
    for kind, call in (("shm", libc.shmctl), ("msg", libc.msgctl), ("sem", libc.semctl)):
        try:
            with open(f"/proc/sysvipc/{kind}") as table:
                rows = table.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 1 and fields[1].isdigit():
                ident = int(fields[1])
                result = call(ident, 0, 0) if kind == "sem" else call(ident, 0, None)  # IPC_RMID is 0
                removed += result == 0
    return removed


def clean_sandbox() -> str:
    """The first thing a lease's fresh zygote does, before it loads any environment code (so no environment code has
    touched it yet): empty every place the sandbox user can write, remove every System V IPC object, and say what
    could not be cleaned ("" when nothing)."""
    left = {path: wipe(path) for path in PLACES}
    remove_ipc()
    for kind in ("shm", "msg", "sem"):
        with contextlib.suppress(OSError), open(f"/proc/sysvipc/{kind}") as table:
            if table.read().splitlines()[1:]:
                left[f"System V {kind}"] = ["objects"]
    return "; ".join(f"{place}: {', '.join(names)}" for place, names in left.items() if names)
