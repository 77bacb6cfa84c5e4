"""When to try an environment's containers again after failed starts (the causes: envscaler/containers/failures.py).

Pure bookkeeping (no Docker, no event loop): the manager feeds it each failed start and asks whether to start
another container yet and whether the environment is `failing`. An environment is failing after a few consecutive
failed starts; then Acquire is refused at once with the cause, instead of waiting for a container that will never
come.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from envscaler.containers.failures import StartFailure, classify

__all__ = ["EnvFailures", "FailureBook", "StartFailure", "classify"]


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
        delay = min(self.max_delay, self.base_delay * 2.0 ** (env.consecutive - 1))
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
