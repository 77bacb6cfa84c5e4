"""An environment whose tools attack the sandbox. Loaded as text: it only ever runs inside one."""

import ctypes
import os
import signal
import socket
import sys
import time

LEAKED: dict[str, str] = {}


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

    def tamper_channel(self) -> dict:
        for fd in range(3, 64):
            try:
                if socket.socket(fileno=os.dup(fd)).type == socket.SOCK_STREAM:
                    os.write(fd, b"\xff\xff\xff\x00garbage")
            except OSError:
                continue
        return {"success": True}

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
