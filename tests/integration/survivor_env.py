"""Red-team probes on teardown: processes that try to outlive their lease, each hiding from a /proc parser in its own
way, and each naming a thread with MARK so that the next lease can find one that survived. Loaded as text: it only
ever runs inside a sandbox. With RENAME_WORKERS (set by the test for a second env), every worker the zygote forks
after the first renames itself with a name that is not UTF-8, after the zygote's readiness check has seen it."""

import ctypes
import os
import platform
import threading
import time

RENAME_WORKERS = False
MARK = b"surv"
PR_SET_NAME = 15
SYS_EXIT = {"x86_64": 60, "aarch64": 93}.get(platform.machine(), 60)
_libc = ctypes.CDLL(None, use_errno=True)
_forks = [0]


def _before_fork():
    _forks[0] += 1


def _after_fork_in_child():
    if RENAME_WORKERS and _forks[0] >= 2:
        _name(b"\xff\xfe-worker")


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def _name(name):
    _libc.prctl(PR_SET_NAME, ctypes.c_char_p(name[:15]), 0, 0, 0)


def _plant(tag):
    try:
        with open(f"/tmp/planted-{tag}-{os.getpid()}", "w") as planted:
            planted.write("from an earlier lease")
    except OSError:
        pass


def _haunt(tag, seconds=120.0):
    """Outlive the lease: plant files in /tmp and burn CPU (what would slow the next lessee's honest checks)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        _plant(tag)
        spin = time.monotonic() + 0.05
        while time.monotonic() < spin:
            pass


def _daemon(body):
    """Run body() in a grandchild in a session of its own (out of the worker's group), holding no descriptor."""
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    try:
        os.setsid()
        if os.fork() == 0:
            os.closerange(3, 4096)
            body()
    finally:
        os._exit(0)


def _leader_exits():
    # Another thread haunts; the leader thread then leaves by the raw exit system call (not exit_group): /proc shows
    # the process as a zombie ("Z") while its other thread runs on.
    def thread():
        _name(MARK + b"-thread")
        _haunt("leader")

    threading.Thread(target=thread, daemon=False).start()
    time.sleep(0.2)
    _libc.syscall(SYS_EXIT, 0)


def _bad_name():
    _name(b"\xff\xfe" + MARK + b"-utf8")  # not UTF-8: a text read of /proc/<pid>/status raises
    _haunt("name")


def _hydra():
    # Each process forks and ends at once: by the time a sweep kills a pid it read, the process has moved on.
    _name(MARK + b"-hydra")
    end, hops = time.monotonic() + 120, 0
    while time.monotonic() < end:
        try:
            if os.fork():
                os._exit(0)
        except OSError:
            time.sleep(0.01)
            continue
        hops += 1
        if hops % 64 == 0:
            _plant("hydra")
        time.sleep(0.001)


class Survivor:
    def __init__(self, config=None):
        self.notes = list((config or {}).get("notes", []))

    def note(self, text: str) -> str:
        self.notes.append(text)
        return "ok"

    def leave(self, kind: str, copies: int = 1) -> str:
        """Start `copies` processes of `kind` (leader_exits, bad_name, hydra) meant to outlive the lease."""
        body = {"leader_exits": _leader_exits, "bad_name": _bad_name, "hydra": _hydra}[kind]
        for _ in range(copies):
            _daemon(body)
        time.sleep(0.3)
        return kind

    def work(self, seconds: float = 1.0) -> str:
        """An honest call that takes `seconds` of CPU (under the server's own call deadline)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        return "worked"

    def hang(self) -> str:
        """A call stuck for good (past the server's own call deadline)."""
        while True:
            pass

    def survivors(self, wait: float = 1.5) -> dict:
        """After `wait` seconds (a survivor would have planted by then): every process with a thread named MARK,
        every process of this uid that is neither this worker, its zygote nor the zygote's children, and every file
        planted in /tmp."""
        time.sleep(wait)
        me, zygote, uid = os.getpid(), os.getppid(), os.getuid()
        marked, foreign = [], []
        for entry in os.listdir(b"/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                tasks = os.listdir(b"/proc/%s/task" % entry)
                names = []
                for task in tasks:
                    with open(b"/proc/%s/task/%s/comm" % (entry, task), "rb") as comm:
                        names.append(comm.read().strip())
                with open(b"/proc/%s/status" % entry, "rb") as status:
                    fields = dict(line.split(b":", 1) for line in status.read().splitlines() if b":" in line)
            except OSError:
                continue
            if any(MARK in name for name in names):
                marked.append(repr(names))
            uids = [int(value) for value in fields.get(b"Uid", b"").split()]
            ppid = int(fields.get(b"PPid", b"0").strip() or 0)
            if uid in uids and pid not in (me, zygote) and ppid != zygote:
                foreign.append(f"{pid} {names!r} {fields.get(b'State', b'').strip()!r}")
        planted = sorted(name for name in os.listdir("/tmp") if name.startswith("planted"))
        return {"marked": marked, "foreign": foreign, "planted": planted}
