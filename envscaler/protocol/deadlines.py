"""One deadline type for every hop (client -> pool -> container server -> worker). A caller's deadline travels
as time remaining (gRPC's own, or a session message's deadline_ms); each hop turns it into a Deadline and shrinks
or grows it by a named margin, so the margins are all here and each says why."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

SHORTEST = 0.001  # a deadline already past still gets one try at the shortest wait, then fails as overrun


class Margin(float, Enum):
    ANSWER_FIRST = 0.05  # a server answers this long before its caller's deadline, so the answer is not too late
    HOP = 1.0  # a forwarder (the pool) waits this long past its caller's deadline for the answer on its way
    TOOL_HOP = 5.0  # a forwarder waits this long past a call's own tool timeout (no caller deadline) for the answer
    SETTLE = 2.0  # a release waits this long for the lease's calls still in flight (HOP, and then some)
    EVALUATE_SLACK = 5.0  # an Evaluate's whole deadline, past the sum of its checks' own


@dataclass(frozen=True)
class Deadline:
    at: float | None  # time.monotonic(); None: no deadline

    @classmethod
    def none(cls) -> Deadline:
        return cls(None)

    @classmethod
    def after(cls, seconds: float | None) -> Deadline:
        """`seconds` from now (None: no deadline), e.g. a gRPC context's time_remaining()."""
        return cls(None if seconds is None else time.monotonic() + seconds)

    @classmethod
    def from_ms(cls, ms: int) -> Deadline:
        """A wire field in milliseconds, where 0 means none (SessionRequest.deadline_ms, timeout_ms)."""
        return cls.after(ms / 1000) if ms else cls(None)

    def remaining(self) -> float | None:
        return None if self.at is None else self.at - time.monotonic()

    def expired(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def shrink(self, margin: Margin) -> Deadline:
        return self if self.at is None else Deadline(self.at - margin.value)

    def grow(self, margin: Margin) -> Deadline:
        return self if self.at is None else Deadline(self.at + margin.value)

    def bound(self, seconds: float) -> float:
        """`seconds`, or less when this deadline comes first (never below SHORTEST)."""
        remaining = self.remaining()
        return seconds if remaining is None else min(seconds, max(remaining, SHORTEST))
