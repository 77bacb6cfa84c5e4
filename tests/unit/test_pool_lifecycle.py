"""The slot state machine (envscaler/pool/lifecycle.py), as a pure table: every legal transition, and every other pair
refused.

EXPECTED restates the table on purpose, with why: a transition added to envscaler/pool/lifecycle.py without an entry
here fails `test_every_transition_has_a_test`, and one that changes its target fails its own case.
"""

from __future__ import annotations

import itertools

import pytest

from envscaler.pool.lifecycle import (
    HOLDS_CONTAINER,
    OUT_OF_SERVICE,
    POLICY_BUCKET,
    REMOVAL_RUNNING,
    SERVING,
    TRANSITIONS,
    IllegalTransition,
    SlotEvent,
    SlotState,
    starts_removal,
    transition,
)

S, E = SlotState, SlotEvent

EXPECTED: dict[tuple[SlotState, SlotEvent], tuple[SlotState, str]] = {
    (S.STARTING, E.READY): (S.IDLE, "served and ended its first episode: warm"),
    (S.STARTING, E.DIED): (S.DIED_STARTING, "its start fails, with the cause"),
    (S.STARTING, E.RETIRE): (S.REMOVING, "failed start, or shutdown while starting"),
    (S.DIED_STARTING, E.DIED): (S.DIED_STARTING, "an oom and a die for one container"),
    (S.DIED_STARTING, E.RETIRE): (S.REMOVING, "its failed start is recorded"),
    (S.IDLE, E.ACQUIRE): (S.LEASED, "leased exclusively"),
    (S.IDLE, E.DIED): (S.REMOVING, "replaced at once"),
    (S.IDLE, E.RETIRE): (S.REMOVING, "evicted, or shutdown"),
    (S.LEASED, E.TAINT): (S.TAINTED, "crash, protocol error, overrun: replaced on release"),
    (S.LEASED, E.RELEASE): (S.RELEASING, "the server ends the episode"),
    (S.LEASED, E.DIED): (S.DEAD, "the lease stays to tell its holder"),
    (S.LEASED, E.RETIRE): (S.REMOVING, "shutdown while leased"),
    (S.TAINTED, E.TAINT): (S.TAINTED, "tainted once"),
    (S.TAINTED, E.RELEASE): (S.REMOVING, "never leased again"),
    (S.TAINTED, E.DIED): (S.DEAD, "death outranks taint: the holder is told it died"),
    (S.TAINTED, E.RETIRE): (S.REMOVING, "shutdown while leased"),
    (S.RELEASING, E.RELEASED): (S.IDLE, "clean episode end: warm again"),
    (S.RELEASING, E.DIED): (S.REMOVING, "no lease left to tell"),
    (S.RELEASING, E.RETIRE): (S.REMOVING, "unclean or dirty release"),
    (S.DEAD, E.TAINT): (S.DEAD, "a call failed because it died"),
    (S.DEAD, E.DIED): (S.DEAD, "the same death, reported twice"),
    (S.DEAD, E.RELEASE): (S.REMOVING, "its holder let go; the removal still runs"),
    (S.DEAD, E.RETIRE): (S.REMOVING, "shutdown; the removal still runs"),
    (S.DEAD, E.REMOVED): (S.LOST, "removed, the lease still held"),
    (S.LOST, E.TAINT): (S.LOST, "late news"),
    (S.LOST, E.DIED): (S.LOST, "late news"),
    (S.LOST, E.RELEASE): (S.GONE, "nothing left"),
    (S.LOST, E.RETIRE): (S.GONE, "nothing left"),
    (S.REMOVING, E.TAINT): (S.REMOVING, "a call answered after its lease was given up"),
    (S.REMOVING, E.RELEASE): (S.REMOVING, "retired while leased; released later"),
    (S.REMOVING, E.DIED): (S.REMOVING, "its own removal kills it"),
    (S.REMOVING, E.RETIRE): (S.REMOVING, "retired once"),
    (S.REMOVING, E.REMOVED): (S.GONE, "the engine confirmed"),
    (S.GONE, E.TAINT): (S.GONE, "late news"),
    (S.GONE, E.RELEASE): (S.GONE, "a lease that outlived a shutdown"),
    (S.GONE, E.DIED): (S.GONE, "late news"),
    (S.GONE, E.RETIRE): (S.GONE, "nothing left"),
}


def test_every_transition_has_a_test() -> None:
    assert set(TRANSITIONS) == set(EXPECTED), (
        f"untested: {sorted(set(TRANSITIONS) - set(EXPECTED))}; gone from the table: "
        f"{sorted(set(EXPECTED) - set(TRANSITIONS))}")


@pytest.mark.parametrize(("state", "event"), list(EXPECTED), ids=[f"{s.value}-{e.value}" for s, e in EXPECTED])
def test_transition(state: SlotState, event: SlotEvent) -> None:
    target, _why = EXPECTED[(state, event)]
    assert transition(state, event) is target


ILLEGAL = [pair for pair in itertools.product(SlotState, SlotEvent) if pair not in EXPECTED]


@pytest.mark.parametrize(("state", "event"), ILLEGAL, ids=[f"{s.value}-{e.value}" for s, e in ILLEGAL])
def test_every_other_pair_is_illegal(state: SlotState, event: SlotEvent) -> None:
    with pytest.raises(IllegalTransition) as raised:
        transition(state, event)
    assert raised.value.state is state and raised.value.event is event
    assert f"state {state.value!r}" in str(raised.value) and f"event {event.value!r}" in str(raised.value)


@pytest.mark.parametrize(("state", "event", "bug"), [
    (S.IDLE, E.RELEASE, "a release of a slot that is not leased"),
    (S.LEASED, E.ACQUIRE, "two leases on one container"),
    (S.TAINTED, E.ACQUIRE, "a tainted container leased again"),
    (S.REMOVING, E.ACQUIRE, "a retired container leased"),
    (S.DEAD, E.RELEASED, "a dead container back in service"),
    (S.GONE, E.READY, "a removed container warm again"),
    (S.DIED_STARTING, E.READY, "a container that died while starting put in service"),
    (S.STARTING, E.ACQUIRE, "a lease on a container that does not serve yet"),
    (S.IDLE, E.REMOVED, "a removal that nobody started"),
    (S.RELEASING, E.TAINT, "a taint after the calls settled"),
])
def test_representative_bugs_are_refused_with_what_was_allowed(state: SlotState, event: SlotEvent, bug: str) -> None:
    with pytest.raises(IllegalTransition, match="allowed: "):
        transition(state, event)


def test_the_table_only_names_known_states_and_events() -> None:
    for (state, event), target in TRANSITIONS.items():
        assert isinstance(state, SlotState) and isinstance(event, SlotEvent) and isinstance(target, SlotState)


def test_out_of_service_is_for_good() -> None:
    """No event brings a removed, removing or dead slot back to serving (nor to the policy's idle count)."""
    for (state, _event), target in TRANSITIONS.items():
        if state in OUT_OF_SERVICE:
            assert target in OUT_OF_SERVICE


def test_retire_takes_every_slot_out_of_service() -> None:
    for state in SlotState:
        assert transition(state, E.RETIRE) in {S.REMOVING, S.GONE}


def _reachable(start: SlotState) -> set[SlotState]:
    seen, todo = {start}, [start]
    while todo:
        state = todo.pop()
        for (source, _event), target in TRANSITIONS.items():
            if source is state and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_every_state_is_reachable_from_starting_and_every_slot_can_end() -> None:
    assert _reachable(S.STARTING) == set(SlotState)
    for state in SlotState:
        assert S.GONE in _reachable(state), f"{state.value} can never be removed"


def test_a_removal_starts_once_per_container() -> None:
    """Entering DEAD or REMOVING starts a removal; moving between them (dead, then released) does not start another."""
    starts = {(s, e) for (s, e), t in TRANSITIONS.items() if starts_removal(s, t)}
    assert (S.LEASED, E.DIED) in starts and (S.TAINTED, E.RELEASE) in starts and (S.IDLE, E.RETIRE) in starts
    assert (S.DEAD, E.RELEASE) not in starts and (S.REMOVING, E.RETIRE) not in starts
    for (state, _event), target in TRANSITIONS.items():
        if state in REMOVAL_RUNNING:
            assert not starts_removal(state, target)


@pytest.mark.parametrize(("path", "end"), [
    ([E.READY, E.ACQUIRE, E.RELEASE, E.RELEASED, E.ACQUIRE], S.LEASED),
    ([E.READY, E.ACQUIRE, E.TAINT, E.TAINT, E.RELEASE, E.REMOVED], S.GONE),
    ([E.READY, E.ACQUIRE, E.DIED, E.TAINT, E.REMOVED, E.RELEASE], S.GONE),
    ([E.READY, E.ACQUIRE, E.DIED, E.RELEASE, E.REMOVED], S.GONE),
    ([E.DIED, E.RETIRE, E.REMOVED], S.GONE),
    ([E.READY, E.ACQUIRE, E.RETIRE, E.REMOVED, E.RELEASE], S.GONE),
], ids=["reuse", "taint", "death-then-release", "release-then-removed", "death-while-starting", "shutdown-leased"])
def test_lives(path: list[SlotEvent], end: SlotState) -> None:
    state = S.STARTING
    for event in path:
        state = transition(state, event)
    assert state is end


def test_policy_counts_and_readiness_cover_every_state() -> None:
    assert set(POLICY_BUCKET) == HOLDS_CONTAINER
    assert set(POLICY_BUCKET.values()) == {"starting", "idle", "leased", "removing"}
    assert SERVING <= HOLDS_CONTAINER and not SERVING & OUT_OF_SERVICE
    assert S.IDLE == "idle" and S.REMOVING == "removing"  # what stats and logs have always said
