from __future__ import annotations

import time

from envscaler.protocol.deadlines import SHORTEST, Deadline, Margin


def test_no_deadline_bounds_nothing_and_margins_keep_it_none() -> None:
    none = Deadline.none()
    assert none.bound(7.0) == 7.0 and none.remaining() is None and not none.expired()
    assert none.shrink(Margin.ANSWER_FIRST) == none and none.grow(Margin.HOP) == none
    assert Deadline.from_ms(0) == none


def test_margins_move_a_deadline_by_their_named_amounts() -> None:
    deadline = Deadline.after(10.0)
    assert deadline.at is not None
    assert deadline.shrink(Margin.ANSWER_FIRST).at == deadline.at - 0.05
    assert deadline.grow(Margin.HOP).at == deadline.at + 1.0


def test_bound_takes_the_earlier_and_never_goes_below_the_shortest_wait() -> None:
    assert Deadline.after(0.5).bound(10.0) <= 0.5
    assert Deadline.after(100.0).bound(10.0) == 10.0
    past = Deadline(time.monotonic() - 1)
    assert past.expired() and past.bound(10.0) == SHORTEST
    assert 1.9 < Deadline.from_ms(2000).remaining() <= 2.0  # type: ignore[operator]
