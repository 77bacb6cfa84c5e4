"""The trusted side of the worker protocol: start the zygote, fork episode
workers, talk to them under deadlines and kill them when they overrun.

Nothing here imports or executes environment code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from envscaler.runtime import framing

CONTROL_FRAME_BYTES = 64 << 10


class WorkerError(Exception):
    """A failure with a kind from proto ErrorKind (or LOAD_FAILED / RESET_FAILED)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class WorkerSettings:
    env_id: str
    code: str
    class_name: str
    tools: tuple[str, ...]
    observation: str = "repr"  # "repr" (EnvScaler's str(result)) or "json"
    max_result_bytes: int = 1 << 20
    memory_bytes: int = 0  # RLIMIT_AS per worker; 0 leaves it to the container
    file_bytes: int = 64 << 20
    open_files: int = 256
    load_timeout: float = 30.0

    @property
    def max_frame_bytes(self) -> int:
        # A result and its observation, with JSON escaping of both.
        return 4 * self.max_result_bytes + (64 << 10)

    def load_message(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "class_name": self.class_name,
            "env_id": self.env_id,
            "tools": list(self.tools),
            "settings": {
                "observation": self.observation,
                "max_result_bytes": self.max_result_bytes,
                "limits": {"memory_bytes": self.memory_bytes, "file_bytes": self.file_bytes,
                           "open_files": self.open_files},
            },
        }


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


@dataclass
class EpisodeWorker:
    """One forked worker holding one episode's live instance."""

    zygote: Zygote
    pid: int
    sock: socket.socket
    pidfd: int | None
    broken: str = ""  # why the episode can take no more requests
    closed: bool = field(default=False)

    def request(self, message: dict[str, Any], timeout: float, what: str) -> dict[str, Any]:
        if self.broken:
            raise WorkerError("EPISODE_BROKEN", self.broken)
        try:
            return framing.exchange(self.sock, message, self.zygote.settings.max_frame_bytes,
                                    time.monotonic() + timeout)
        except framing.FrameError as exc:
            kind = {"timeout": "DEADLINE_EXCEEDED", "eof": "WORKER_CRASHED"}.get(exc.reason, "PROTOCOL_ERROR")
            raise self._fail(kind, what, timeout, str(exc)) from None

    def _fail(self, kind: str, what: str, timeout: float = 0.0, detail: str = "") -> WorkerError:
        self.kill()
        status = self.zygote.reap(self.pid)
        if kind == "DEADLINE_EXCEEDED":
            message = f"{what} overran its {timeout:g} s deadline; the worker was killed"
        elif kind == "WORKER_CRASHED":
            message = f"the worker died during {what} ({status})"
        else:
            message = f"the worker broke the protocol during {what} ({detail}); it was killed"
        self.broken = f"the episode is broken: {message}. Reset to start a new one."
        return WorkerError(kind, message)

    def kill(self) -> None:
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        else:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
        _kill_group(self.pid)  # tools may have forked; the worker leads its own group

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.broken:
            self.kill()  # a worker never outlives its episode, whatever its code does on EOF
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)


class Zygote:
    """A worker process that loaded the environment module once; forks an episode worker per Reset."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.control: socket.socket | None = None

    def start(self) -> None:
        """Start (or restart) the zygote and load the module; raises WorkerError(LOAD_FAILED)."""
        self.stop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # -P -s: nothing from the working directory or the user's site reaches the worker's imports.
        env = {k: v for k, v in os.environ.items()
               if k in ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "HOME", "ENVSCALER_SANDBOX_SWEEP")}
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-s", "-m", "envscaler.runtime.worker", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL, cwd="/",
        )
        theirs.close()
        self.control = ours
        try:
            reply = framing.exchange(ours, self.settings.load_message(), CONTROL_FRAME_BYTES,
                                     time.monotonic() + self.settings.load_timeout)
        except framing.FrameError as exc:
            self.stop()
            reason = f"took longer than {self.settings.load_timeout:g}s" if exc.reason == "timeout" else str(exc)
            raise WorkerError("LOAD_FAILED", f"the environment module failed to load: {reason}") from None
        if not reply.get("ok"):
            self.stop()
            raise WorkerError("LOAD_FAILED", str(reply.get("message", "unknown load failure")))

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _control_request(self, message: dict[str, Any], timeout: float,
                         max_fds: int = 0) -> tuple[dict[str, Any], list[int]]:
        assert self.control is not None
        deadline = time.monotonic() + timeout
        if max_fds:
            framing.set_deadline(self.control, deadline)
            framing.send(self.control, message)
            return framing.recv_with_fds(self.control, CONTROL_FRAME_BYTES, max_fds, deadline)
        return framing.exchange(self.control, message, CONTROL_FRAME_BYTES, deadline), []

    def spawn(self, init_config: dict[str, Any], seed: int, timeout: float) -> tuple[EpisodeWorker, dict[str, Any]]:
        """Fork a fresh worker and instantiate the environment in it; returns it and its initial state."""
        with self.lock:
            if not self.alive():
                self.start()
            try:
                reply, fds = self._control_request({"op": "spawn"}, 10.0, max_fds=2)
            except (framing.FrameError, OSError) as exc:
                self.stop()
                raise WorkerError("WORKER_CRASHED", f"the zygote failed while forking a worker: {exc}") from None
        if not reply.get("ok") or not fds:
            for fd in fds:
                os.close(fd)
            raise WorkerError("PROTOCOL_ERROR", "the zygote did not hand over a worker")
        pidfd = fds[1] if reply.get("pidfd") and len(fds) > 1 else None
        worker = EpisodeWorker(self, int(reply["pid"]), socket.socket(fileno=fds[0]), pidfd)
        first = worker.request({"op": "reset", "init_config": init_config, "seed": seed}, timeout, "reset")
        if not first.get("ok"):
            worker.close()
            raise WorkerError(str(first.get("kind", "RESET_FAILED")), str(first.get("message", "reset failed")))
        return worker, first

    def sweep(self) -> None:
        """After an episode: in a container, kill what it left running and empty /tmp (see worker.sweep)."""
        with self.lock:
            if not self.alive():
                return
            try:
                self._control_request({"op": "sweep"}, 5.0)
            except (framing.FrameError, OSError):
                self.stop()

    def reap(self, pid: int) -> str:
        """How a dead worker ended (asked of the zygote, its parent)."""
        with self.lock:
            if not self.alive():
                return "its zygote is gone too"
            try:
                reply, _ = self._control_request({"op": "reap", "pid": pid}, 5.0)
            except (framing.FrameError, OSError):
                self.stop()
                return "status unknown"
        return str(reply.get("status", "status unknown"))

    def stop(self) -> None:
        if self.control is not None:
            with contextlib.suppress(OSError):
                self.control.close()
            self.control = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            self.process = None
