"""What a failed container start left behind (exit status, OOM kill, last log lines), as one cause a caller can act
on. Pure: no Docker; envscaler/containers/launch.py feeds it the engine's view of a dead container."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Reason = Literal["oom", "exited", "refused", "not_ready", "engine"]
OOM_EXIT = 137  # SIGKILL: what the kernel's OOM killer leaves when the cgroup's limit is hit
NOT_SERVING_MARK = "; health reports NOT_SERVING"  # how the server says in its output why it serves nothing
_SAID = re.compile(r"^\S+: [\w.-]+: ")  # the start of that line: its program's name and the env_id


@dataclass(frozen=True)
class StartFailure:
    """What a failed start left behind."""

    reason: Reason
    exit_code: int | None = None
    memory_bytes: int = 0  # the container's limit (0: unknown)
    logs: str = ""  # its last log lines
    detail: str = ""  # the engine's or the wait's own message

    def describe(self, env_id: str) -> str:
        """One line a caller can act on."""
        if self.reason == "oom":
            limit = f"{self.memory_bytes >> 20} MiB" if self.memory_bytes else "its memory limit"
            return f"{env_id}: containers are killed for memory ({limit}): raise --memory-mb"
        if self.reason == "exited":
            tail = self.logs.strip().splitlines()[-1][:200] if self.logs.strip() else "no output"
            return f"{env_id}: containers exit with status {self.exit_code} before serving: {tail}"
        if self.reason == "refused":
            return f"{env_id}: containers refuse to serve it: {self.detail[:400]}"
        if self.reason == "not_ready":
            return f"{env_id}: containers do not start serving in time ({self.detail[:200]})"
        return f"{env_id}: containers cannot be started: {self.detail[:300]}"


def refusal(logs: str) -> str:
    """Why a server that answers NOT_SERVING serves nothing (its environment's module was refused at load: a thread
    or a descriptor left at import, an exception), from what it printed: "PROG: ENV_ID: why; health reports
    NOT_SERVING", `why` perhaps over several lines; as one line, or '' when it is not there (yet)."""
    before, mark, _ = logs.rpartition(NOT_SERVING_MARK)
    if not mark:
        return ""
    lines = before.splitlines()
    start = next((i for i in range(len(lines) - 1, -1, -1) if _SAID.match(lines[i])), len(lines) - 1)
    said = " ".join(" ".join(lines[start:]).split())
    found = _SAID.match(said)
    return said[found.end():] if found else said


def classify(state: dict | None, logs: str = "", memory_bytes: int = 0, oom_event: bool = False,
             detail: str = "") -> StartFailure:
    """A dead container's `State` (from inspect; None: never created) as a StartFailure."""
    if state is None:
        return StartFailure("engine", detail=detail, logs=logs)
    code = state.get("ExitCode")
    if state.get("OOMKilled") or oom_event or (code == OOM_EXIT and memory_bytes):
        return StartFailure("oom", exit_code=code, memory_bytes=memory_bytes, logs=logs, detail=detail)
    if state.get("Status") in ("exited", "dead"):
        return StartFailure("exited", exit_code=code, memory_bytes=memory_bytes, logs=logs, detail=detail)
    return StartFailure("not_ready", exit_code=code, memory_bytes=memory_bytes, logs=logs, detail=detail)
