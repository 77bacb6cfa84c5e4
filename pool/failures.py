"""Why an environment's containers fail to start, and when to try again.

Pure bookkeeping (no Docker, no event loop): the manager feeds it what a failed
start left behind (exit status, OOM kill, last log lines) and asks whether to
start another container yet and whether the environment is `failing`. An
environment is failing after a few consecutive failed starts; then Acquire is
refused at once with the cause, instead of waiting for a container that will
never come.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

Reason = Literal["oom", "exited", "not_ready", "engine"]
OOM_EXIT = 137  # SIGKILL: what the kernel's OOM killer leaves when the cgroup's limit is hit


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
        if self.reason == "not_ready":
            return f"{env_id}: containers do not start serving in time ({self.detail[:200]})"
        return f"{env_id}: containers cannot be started: {self.detail[:300]}"


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


@dataclass
class EnvFailures:
    consecutive: int = 0
    total: int = 0
    retry_at: float = 0.0
    last: StartFailure | None = None


@dataclass
class FailureBook:
    """Per environment: consecutive failed starts, exponential backoff, and the cause once it is failing."""

    failing_after: int = 2  # consecutive failed starts
    base_delay: float = 1.0
    max_delay: float = 60.0
    envs: dict[str, EnvFailures] = field(default_factory=dict)
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)  # (env, reason) -> failed starts

    def _of(self, env_id: str) -> EnvFailures:
        return self.envs.setdefault(env_id, EnvFailures())

    def failed(self, env_id: str, failure: StartFailure, now: float) -> float:
        """Record a failed start; returns the backoff before the next start of this environment."""
        env = self._of(env_id)
        env.consecutive += 1
        env.total += 1
        env.last = failure
        self.reasons[(env_id, failure.reason)] += 1
        delay = min(self.max_delay, self.base_delay * 2 ** (env.consecutive - 1))
        env.retry_at = max(env.retry_at, now + delay)
        return delay

    def started(self, env_id: str) -> None:
        """A container served: the environment is healthy again."""
        env = self._of(env_id)
        env.consecutive, env.retry_at = 0, 0.0

    def may_start(self, env_id: str, now: float) -> bool:
        return self._of(env_id).retry_at <= now

    def failing(self, env_id: str) -> str:
        """The cause, when this environment is failing; '' otherwise."""
        env = self._of(env_id)
        if env.consecutive < self.failing_after or env.last is None:
            return ""
        return f"{env.last.describe(env_id)} ({env.consecutive} failed starts in a row; retrying with backoff)"

    def last_cause(self, env_id: str) -> str:
        env = self._of(env_id)
        return env.last.describe(env_id) if env.last is not None and env.consecutive else ""

    def total(self, env_id: str) -> int:
        return self._of(env_id).total
