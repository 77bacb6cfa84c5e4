"""A pool slot's life as one state machine: every state, every event, one transition table.

Pure (no Docker, no event loop): the manager fires an event, gets the next state, and acts on the change (start a
removal, wake a waiter). What is not in the table cannot happen: `transition` raises `IllegalTransition`.
Events that may race with the slot's own progress (a container dying, a late call tainting it, a shutdown) are listed
explicitly for every state they can reach, most as "stay" entries, so the table says what is ignored and why.

    STARTING --ready--> IDLE --acquire--> LEASED --release--> RELEASING --released--> IDLE
    LEASED --taint--> TAINTED --release--> REMOVING --removed--> GONE
    LEASED/TAINTED --died--> DEAD (the lease is kept, to tell its holder) --removed--> LOST --release--> GONE
    any serving state --retire--> REMOVING (evicted, failed start, unclean release, shutdown)
"""

from __future__ import annotations

from enum import StrEnum


class SlotState(StrEnum):
    # str values: what stats, logs and tests have always called these states.
    STARTING = "starting"  # its container is being created, or has not served yet
    DIED_STARTING = "died_starting"  # the engine said it died before its start finished: the start fails
    IDLE = "idle"  # warm, serving, free to lease
    LEASED = "leased"
    TAINTED = "tainted"  # leased, and never to be leased again: replaced on release
    RELEASING = "releasing"  # its lease ended; the server is ending the episode
    DEAD = "dead"  # its container died while leased: the lease stays, to tell its holder; removal runs
    LOST = "lost"  # DEAD, and its container is removed: only the lease remains
    REMOVING = "removing"  # out of service; its container is being removed (still counts against --size)
    GONE = "gone"  # removed, and no lease refers to it: dropped from the table


class SlotEvent(StrEnum):
    READY = "ready"  # its server served and ended its first episode
    ACQUIRE = "acquire"
    TAINT = "taint"  # it failed a call in a way that makes it untrustworthy (crash, overrun, no answer)
    RELEASE = "release"  # its lease ended (Release, TTL)
    RELEASED = "released"  # the server ended the episode cleanly
    DIED = "died"  # the engine reports its container died (exit, OOM)
    RETIRE = "retire"  # take it out of service now (failed start, eviction, unclean release, shutdown)
    REMOVED = "removed"  # the engine confirmed its container is gone


S, E = SlotState, SlotEvent

TRANSITIONS: dict[tuple[SlotState, SlotEvent], SlotState] = {
    # starting
    (S.STARTING, E.READY): S.IDLE,
    (S.STARTING, E.DIED): S.DIED_STARTING,
    (S.STARTING, E.RETIRE): S.REMOVING,
    (S.DIED_STARTING, E.DIED): S.DIED_STARTING,  # an "oom" then a "die" for the same container
    (S.DIED_STARTING, E.RETIRE): S.REMOVING,
    # serving
    (S.IDLE, E.ACQUIRE): S.LEASED,
    (S.IDLE, E.DIED): S.REMOVING,
    (S.IDLE, E.RETIRE): S.REMOVING,
    (S.LEASED, E.TAINT): S.TAINTED,
    (S.LEASED, E.RELEASE): S.RELEASING,
    (S.LEASED, E.DIED): S.DEAD,
    (S.LEASED, E.RETIRE): S.REMOVING,
    (S.TAINTED, E.TAINT): S.TAINTED,  # the first cause stands
    (S.TAINTED, E.RELEASE): S.REMOVING,
    (S.TAINTED, E.DIED): S.DEAD,
    (S.TAINTED, E.RETIRE): S.REMOVING,
    (S.RELEASING, E.RELEASED): S.IDLE,
    (S.RELEASING, E.DIED): S.REMOVING,  # no lease to tell any more
    (S.RELEASING, E.RETIRE): S.REMOVING,  # it did not end its episode cleanly, or said it was broken
    # dead while leased: the removal already runs
    (S.DEAD, E.TAINT): S.DEAD,  # a call that failed because it died
    (S.DEAD, E.DIED): S.DEAD,
    (S.DEAD, E.RELEASE): S.REMOVING,
    (S.DEAD, E.RETIRE): S.REMOVING,
    (S.DEAD, E.REMOVED): S.LOST,
    (S.LOST, E.TAINT): S.LOST,
    (S.LOST, E.DIED): S.LOST,
    (S.LOST, E.RELEASE): S.GONE,
    (S.LOST, E.RETIRE): S.GONE,
    # out of service: late news changes nothing
    (S.REMOVING, E.TAINT): S.REMOVING,  # a call answered (or timed out) after its lease was given up
    (S.REMOVING, E.RELEASE): S.REMOVING,  # retired (shutdown) while leased; its holder releases later
    (S.REMOVING, E.DIED): S.REMOVING,
    (S.REMOVING, E.RETIRE): S.REMOVING,
    (S.REMOVING, E.REMOVED): S.GONE,
    (S.GONE, E.TAINT): S.GONE,
    (S.GONE, E.RELEASE): S.GONE,
    (S.GONE, E.DIED): S.GONE,
    (S.GONE, E.RETIRE): S.GONE,
}


class IllegalTransition(RuntimeError):
    """An event the slot's state does not allow: a bug in the pool, never the caller's input."""

    def __init__(self, state: SlotState, event: SlotEvent) -> None:
        allowed = ", ".join(sorted(e.value for (s, e) in TRANSITIONS if s is state)) or "none"
        super().__init__(f"a slot in state {state.value!r} cannot take event {event.value!r} (allowed: {allowed})")
        self.state = state
        self.event = event


def transition(state: SlotState, event: SlotEvent) -> SlotState:
    """The state after `event`, or IllegalTransition."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(state, event) from None


# What the states mean to the rest of the pool, so no caller lists states by hand.
SERVING = frozenset({S.IDLE, S.LEASED, S.TAINTED, S.RELEASING})  # its container serves (ready, or could be)
REMOVAL_RUNNING = frozenset({S.DEAD, S.REMOVING})  # a removal of its container is under way
OUT_OF_SERVICE = frozenset({S.DEAD, S.LOST, S.REMOVING, S.GONE})  # never leased again; death is old news
HOLDS_CONTAINER = frozenset(set(SlotState) - {S.LOST, S.GONE})  # counts against --size
# How the warm-container policy (policy.EnvCounts) counts each state that holds a container.
POLICY_BUCKET: dict[SlotState, str] = {
    S.STARTING: "starting", S.DIED_STARTING: "starting", S.IDLE: "idle",
    S.LEASED: "leased", S.TAINTED: "leased", S.RELEASING: "leased",
    S.DEAD: "removing", S.REMOVING: "removing",
}


def starts_removal(before: SlotState, after: SlotState) -> bool:
    """A change that needs its container removed, when no removal runs yet."""
    return after in REMOVAL_RUNNING and before not in REMOVAL_RUNNING
