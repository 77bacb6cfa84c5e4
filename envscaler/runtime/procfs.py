"""What /proc says of processes, read as bytes (standard library only; both sides of the sandbox read it).

A process names itself (any bytes but NUL, not necessarily UTF-8), and /proc shows a process whose leader thread
exited as a zombie while its other threads run: so nothing here decodes text, and nothing takes "Z" for "dead"
(`alive` asks every thread). Every reader returns None, or nothing, for a process that is gone, never raises.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

DEAD_STATES = (b"Z", b"X")  # zombie, dead: no thread of it runs (for a leader, see `alive`)


@dataclass(frozen=True)
class Status:
    """The fields of /proc/<pid>/status that say who a process is."""

    state: bytes  # one letter: b"R", b"S", b"Z", ...
    pid: int  # Tgid: the process, even when read through a thread
    ppid: int
    uids: tuple[int, ...]  # real, effective, saved, file system

    def owned_by(self, uid: int) -> bool:
        """Any of its uids is `uid` (a process that could switch to it counts as one of its own)."""
        return uid in self.uids


def _int(value: bytes) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() and len(value) < 20 else None


def parse_status(data: bytes) -> Status | None:
    """The Status in the bytes of a /proc/<pid>/status, or None when they are not one. Only lines that start with a
    known key count: the kernel escapes a newline in a process's name, so no name can forge a line."""
    fields: dict[bytes, bytes] = {}
    for line in data.split(b"\n"):
        key, colon, value = line.partition(b":")
        if colon and key in (b"State", b"Tgid", b"PPid", b"Uid") and key not in fields:
            fields[key] = value
    state = fields.get(b"State", b"").strip()[:1]
    pid, ppid = _int(fields.get(b"Tgid", b"")), _int(fields.get(b"PPid", b""))
    uids = [_int(part) for part in fields.get(b"Uid", b"").split()]
    if not state or pid is None or ppid is None or not uids or len(uids) > 4 or None in uids:
        return None
    return Status(state, pid, ppid, tuple(uid for uid in uids if uid is not None))


def _read(path: bytes, limit: int = 1 << 16) -> bytes | None:
    try:
        with open(path, "rb", buffering=0) as file:
            return file.read(limit)
    except OSError:
        return None


def status(pid: int, tid: int | None = None) -> Status | None:
    """A process's (or one of its threads') Status; None when it is gone."""
    path = b"/proc/%d/status" % pid if tid is None else b"/proc/%d/task/%d/status" % (pid, tid)
    data = _read(path)
    return None if data is None else parse_status(data)


def pids() -> list[int]:
    """Every process in this pid namespace, by its /proc entry (a zombie's too, until it is reaped)."""
    try:
        entries = os.listdir(b"/proc")
    except OSError:
        return []
    return [int(entry) for entry in entries if entry.isdigit()]


def processes_of(uid: int, exclude: frozenset[int] | set[int] = frozenset()) -> dict[int, Status]:
    """Every process any of whose uids is `uid`, zombies included, but `exclude`."""
    found = {}
    for pid in pids():
        if pid not in exclude:
            seen = status(pid)
            if seen is not None and seen.owned_by(uid):
                found[pid] = seen
    return found


def alive(pid: int) -> bool:
    """Whether any thread of the process still runs: a process whose leader thread exited shows "Z" in its own
    status while its other threads go on."""
    try:
        tasks = os.listdir(b"/proc/%d/task" % pid)
    except OSError:
        return False
    for task in tasks:
        if task.isdigit():
            seen = status(pid, int(task))
            if seen is not None and seen.state not in DEAD_STATES:
                return True
    return False


def pidfd_pid(fd: int) -> int | None:
    """The pid a pidfd refers to (its fdinfo's Pid line); None when `fd` is not one."""
    data = _read(b"/proc/self/fdinfo/%d" % fd)
    for line in (data or b"").split(b"\n"):
        key, colon, value = line.partition(b":")
        if colon and key == b"Pid":
            return _int(value)
    return None


def describe(left: dict[int, Status]) -> str:
    shown = ", ".join(f"{pid} ({seen.state.decode('ascii', 'replace')})" for pid, seen in sorted(left.items())[:5])
    return f"{len(left)} process(es) of the sandbox uid left: {shown}"


def end_pids(uid: int, keep: frozenset[int], deadline: float, reap: Callable[[], None] = lambda: None) -> str:
    """Signal every process of `uid` but `keep`, zombie or not, until none is left, zombies included (`reap` reaps
    our own children; PID 1 reaps orphans); "" when verified by the deadline, else what is left. For a uid shared
    with what must live on: one pid at a time, so a fork may outrun a pass, and passes repeat."""
    while True:
        reap()
        left = processes_of(uid, keep)
        if not left:
            return ""
        if time.monotonic() >= deadline:
            return describe(left)
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)  # a zombie leader's pid still names its live threads' process
        time.sleep(0.002)
