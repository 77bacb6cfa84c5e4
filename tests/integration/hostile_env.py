"""An environment whose tools attack the sandbox. Loaded as text: it only ever runs inside one."""

import ctypes
import os
import signal
import socket
import sys
import time

LEAKED: dict[str, str] = {}
SHM_KEY = 0x5EC12E7
PLANT_NAME = b"envscaler.runtime.healthcheck"  # what the old sweep spared by name


def _status(pid: str) -> dict:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)


def _ppid(pid: str) -> int:
    try:
        return int(_status(pid)["PPid"])
    except (OSError, KeyError, ValueError):
        return -1


def _attempt(action) -> str:
    try:
        action()
    except OSError as exc:
        return type(exc).__name__
    return "DONE"


def _ptrace(pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(0x4206, pid, None, None) != 0:  # PTRACE_SEIZE
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    libc.ptrace(17, pid, None, None)  # PTRACE_DETACH: never keep it


def _vm_read(pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(16)
    local = (ctypes.c_void_p * 2)(ctypes.cast(buffer, ctypes.c_void_p), 16)
    remote = (ctypes.c_void_p * 2)(0x400000, 16)
    if libc.process_vm_readv(pid, local, 1, remote, 1, 0) < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


class Hostile:
    def __init__(self, config=None):
        self.notes = []

    def note(self, text: str) -> dict:
        self.notes.append(text)
        return {"success": True}

    # --- reading what is not ours
    def read_file(self, path: str) -> dict:
        with open(path, "rb") as f:
            return {"success": True, "data": f.read(4096).decode(errors="replace")}

    def whoami(self) -> dict:
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
        return {"uid": os.getuid(), "gid": os.getgid(), "cap_eff": status["CapEff"].strip(),
                "cap_bnd": status["CapBnd"].strip(), "no_new_privs": status["NoNewPrivs"].strip()}

    # --- reaching out
    def connect_out(self, host: str, port: int) -> dict:
        with socket.create_connection((host, port), timeout=2):
            return {"success": True}

    def resolve(self, name: str) -> dict:
        return {"success": True, "data": socket.gethostbyname(name)}

    # --- exhausting resources
    def fork_bomb(self) -> dict:
        while True:
            os.fork()

    def memory_bomb(self) -> dict:
        hoard = []
        while True:
            hoard.append(bytearray(64 << 20))

    def spin(self) -> dict:
        while True:
            pass

    def huge_result(self) -> dict:
        return {"data": "x" * (50 << 20)}

    def recurse(self, depth: int = 0) -> dict:
        return self.recurse(depth + 1)

    def fill_tmp(self) -> dict:
        return self.fill_dir("/tmp")

    def fill_dir(self, where: str) -> dict:
        n = 0
        while True:  # many files, each under the per-file size limit, until the filesystem is full
            with open(f"{where}/fill{n}", "wb") as f:
                for _ in range(16):
                    f.write(b"\0" * (1 << 20))
            n += 1

    def replace_socket(self, path: str) -> dict:
        os.unlink(path)  # then listen there in the server's place
        server = socket.socket(socket.AF_UNIX)
        server.bind(path)
        server.listen(1)
        return {"success": True, "message": f"listening on {path}"}

    # --- breaking the runtime
    def kill_parent(self) -> dict:
        os.kill(os.getppid(), signal.SIGKILL)
        return {"success": True, "message": "zygote killed"}

    def kill_server(self) -> dict:
        zygote = os.getppid()
        server = int(open(f"/proc/{zygote}/stat").read().rsplit(")", 1)[1].split()[1])
        os.kill(server, signal.SIGKILL)
        time.sleep(5)
        return {"success": True}

    def write_root(self, path: str) -> dict:
        with open(path, "w") as f:
            f.write("pwned")
        return {"success": True}

    def become_root(self) -> dict:
        os.setuid(0)
        return {"success": True}

    @staticmethod
    def _write_to_every_stream(data: bytes) -> None:
        """`data` on every stream socket this process holds: the server's channel, and an episode channel if any."""
        for fd in range(3, 64):
            try:
                if socket.socket(fileno=os.dup(fd)).type == socket.SOCK_STREAM:
                    os.write(fd, data)
            except OSError:
                continue

    def tamper_channel(self) -> dict:
        self._write_to_every_stream(b"\xff\xff\xff\x00garbage")
        return {"success": True}

    def forge_reply(self, shape: str) -> dict:
        """Write a well-formed WorkerReply that is wrong (proto/envscaler/v1/worker.proto) to the server, ahead of
        the real reply: a `done` where a result is due, a failure of a kind proto does not define, a result with a
        field the wire does not define, or the old JSON wire's reply."""
        import struct

        from envscaler.runtime.sandbox import worker_wire
        body = {"no_result": worker_wire.reply("done"),
                "wrong_types": worker_wire.reply("failure", kind=99, message="forged"),
                "unknown_field": worker_wire.reply("result", result_json="{}") + b"\x98\x01\x05",
                "json": b'{"ok": true, "result": "5", "observation": "5"}'}[shape]
        self._write_to_every_stream(struct.pack("!I", len(body)) + body)
        return {"success": True}

    def forge_answer(self) -> dict:
        """Write a well-formed SessionResponse of another kind (an Evaluate with reward 1.0) to every stream socket,
        ahead of the real answer: on an episode channel it is what the caller reads first."""
        import struct
        evaluate = b"\x11" + struct.pack("<d", 1.0) + b"\x18\x01\x20\x01"  # reward 1.0, passed 1, total 1
        body = b"\x2a" + bytes([len(evaluate)]) + evaluate  # SessionResponse.evaluate
        self._write_to_every_stream(struct.pack("!I", len(body)) + body)
        return {"success": True}

    # --- review: attacks on the episode channel from inside the worker

    @staticmethod
    def _tool_channel():
        import gc
        return next(o for o in gc.get_objects() if type(o).__name__ == "ToolChannel")

    def trickle(self, seconds: float = 6.0) -> dict:
        """On the episode channel: a well-formed call_tool answer, one byte at a time over `seconds`, ahead of the
        real one. A caller whose deadline is per read, not per call, waits for all of it."""
        from envscaler.runtime.sandbox import tool_wire
        fd = self._tool_channel().sock.fileno()
        framed = tool_wire.call_tool_response('{"forged": "trickled"}', "trickled")
        pace = seconds / len(framed)
        for i in range(len(framed)):
            os.write(fd, framed[i:i + 1])
            time.sleep(pace)
        return {"success": True}

    def dup_channel(self, fd: int = 200) -> dict:
        """Keep a second descriptor of the episode channel: a check forked later inherits it."""
        os.dup2(self._tool_channel().sock.fileno(), fd)
        return {"success": True}

    def hang_up_channel(self) -> dict:
        """Shut down the read side of the channel from inside the worker: the server sees its caller hang up."""
        self._tool_channel().sock.shutdown(socket.SHUT_RD)
        return {"success": True}

    def slow(self, seconds: float = 1.0, tag: str = "") -> dict:
        time.sleep(seconds)
        return {"tag": tag}

    def segfault(self) -> dict:
        ctypes.string_at(0)
        return {"success": True}

    # --- leaking into the next episode
    def plant(self) -> dict:
        LEAKED["secret"] = "from a previous episode"
        with open("/tmp/leak", "w") as f:
            f.write("left behind")
        if os.fork() == 0:
            os.setsid()
            time.sleep(3600)
            sys.exit(0)
        return {"success": True}

    # --- reaching the trusted server, the zygote and the next episode's worker
    def probe_others(self) -> dict:
        me, zygote = os.getpid(), os.getppid()
        server = int(_status(str(zygote))["PPid"])
        targets = {}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the next lease's interpreter, started by the server during this lease
            nexts = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != zygote and _ppid(p) == server]
            if nexts:
                targets["next zygote"] = nexts[0]
                break
            time.sleep(0.05)
        for pid in (p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (me, 1)):
            try:
                status = _status(pid)
            except OSError:
                continue
            uid, ppid = int(status["Uid"].split()[0]), int(status["PPid"])
            if int(pid) in targets.values():
                continue
            if int(pid) == zygote:
                targets["zygote"] = int(pid)
            elif uid != os.getuid() and "server" not in targets and uid != 0:
                targets["server"] = int(pid)
            elif uid == 0 and "spawner" not in targets and int(pid) != 1:
                targets["spawner"] = int(pid)
            elif ppid == zygote and uid == os.getuid():
                targets["spare"] = int(pid)
        outcome = {}
        for role, pid in targets.items():
            outcome[role] = {
                "mem_read": _attempt(lambda pid=pid: open(f"/proc/{pid}/mem", "rb").close()),
                "mem_write": _attempt(lambda pid=pid: open(f"/proc/{pid}/mem", "r+b").close()),
                "environ": _attempt(lambda pid=pid: open(f"/proc/{pid}/environ", "rb").read()),
                "maps": _attempt(lambda pid=pid: open(f"/proc/{pid}/maps", "rb").read()),
                "fd": _attempt(lambda pid=pid: os.listdir(f"/proc/{pid}/fd")),
                "ptrace": _attempt(lambda pid=pid: _ptrace(pid)),
                "vm_read": _attempt(lambda pid=pid: _vm_read(pid)),
                "stop": _attempt(lambda pid=pid: os.kill(pid, signal.SIGSTOP)),
                "kill": _attempt(lambda pid=pid: os.kill(pid, signal.SIGKILL)),
            }
        return {"success": True, "targets": sorted(targets), "outcome": outcome}

    def plant_everywhere(self) -> dict:
        """What one lease could leave for the next: a daemon under a trusted name holding a deleted file open, files
        in /tmp and /dev/shm, a System V shared memory segment."""
        read, write = os.pipe()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                ctypes.CDLL(None).prctl(15, PLANT_NAME[:15], 0, 0, 0)  # PR_SET_NAME
                held = open("/tmp/held", "w")
                held.write("secret of lease A")
                held.flush()
                os.unlink("/tmp/held")
                os.write(write, b"x")
                time.sleep(3600)
            os._exit(0)
        os.read(read, 1)
        with open("/dev/shm/leak", "w") as f:
            f.write("secret of lease A")
        libc = ctypes.CDLL(None, use_errno=True)
        shm = libc.shmget(SHM_KEY, 4096, 0o1666)  # IPC_CREAT | 0666
        return {"success": True, "shm": shm >= 0}

    def find_plants(self) -> dict:
        names = []
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            try:
                with open(f"/proc/{pid}/comm", "rb") as f:
                    names.append(f.read().strip())
            except OSError:
                continue
        libc = ctypes.CDLL(None, use_errno=True)
        return {"daemon": PLANT_NAME[:15] in names, "shm_file": os.path.exists("/dev/shm/leak"),
                "sysv_shm": libc.shmget(SHM_KEY, 0, 0) >= 0, "tmp": os.listdir("/tmp")}

    def look_for_leaks(self) -> dict:
        processes = []
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "Z":  # zombies are reaped by the init
                        processes.append(pid)
            except OSError:
                continue
        return {"global": dict(LEAKED), "tmp": os.path.exists("/tmp/leak"), "processes": len(processes)}
