"""The warm-container policy, as a pure function."""

from __future__ import annotations

from collections import Counter

from envscaler.pool.policy import EnvCounts, plan

ENVS = ["a", "b", "c", "d"]


def test_an_empty_pool_is_spread_evenly() -> None:
    decided = plan(10, ENVS, {}, {}, min_idle=2)
    assert Counter(decided.start) == {"a": 3, "b": 3, "c": 2, "d": 2}
    assert decided.evict == []


def test_size_is_a_hard_cap() -> None:
    counts = {e: EnvCounts(idle=2, leased=1) for e in ENVS}
    assert plan(12, ENVS, counts, {}, min_idle=2).start == []
    assert plan(12, ENVS, counts, {"a": 5}, min_idle=2).start.count("a") <= 4


def test_waiters_come_first() -> None:
    counts = {"a": EnvCounts(leased=3), "b": EnvCounts(idle=1), "c": EnvCounts(), "d": EnvCounts()}
    decided = plan(6, ENVS, counts, {"a": 2}, min_idle=1)
    assert decided.start[:2] == ["a", "a"]
    assert len(decided.start) == 2


def test_a_full_pool_evicts_surplus_idle_for_waiters() -> None:
    counts = {"a": EnvCounts(leased=2), "b": EnvCounts(idle=3), "c": EnvCounts(idle=1), "d": EnvCounts(leased=2)}
    decided = plan(8, ENVS, counts, {"a": 1}, min_idle=1)
    assert decided.evict == ["b"]
    assert decided.start == ["a"]


def test_no_eviction_without_idle_donors() -> None:
    counts = {e: EnvCounts(leased=2) for e in ENVS}
    decided = plan(8, ENVS, counts, {"a": 3}, min_idle=1)
    assert decided.start == [] and decided.evict == []


def test_starting_containers_count_as_coming() -> None:
    counts = {"a": EnvCounts(starting=2), "b": EnvCounts(idle=2), "c": EnvCounts(idle=2), "d": EnvCounts(idle=2)}
    assert plan(8, ENVS, counts, {"a": 2}, min_idle=2).start == []


def test_removing_containers_hold_their_capacity() -> None:
    counts = {"a": EnvCounts(removing=4), "b": EnvCounts(idle=4)}
    assert plan(8, ["a", "b"], counts, {}, min_idle=1).start == []
