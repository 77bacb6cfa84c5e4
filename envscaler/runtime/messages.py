"""The worker's replies, typed. Every failure a worker or the supervisor reports has a kind that is exactly one
ErrorKind of proto/ (a unit test holds the two lists equal), so nothing is renamed or lost on the way to a client;
a kind outside the list can only come from a worker that broke the protocol, and is reported as that."""

from __future__ import annotations

from typing import Any, Literal, cast, get_args

WorkerKind = Literal[
    "UNKNOWN_TOOL", "INVALID_ARGUMENTS", "TOOL_EXCEPTION", "DEADLINE_EXCEEDED", "WORKER_CRASHED",
    "RESULT_TOO_LARGE", "ARGUMENTS_TOO_LARGE", "UNSERIALIZABLE_RESULT", "PROTOCOL_ERROR", "UNSERIALIZABLE_STATE",
    "WORKER_ERROR", "EPISODE_BROKEN", "LOAD_FAILED", "RESET_FAILED",
]
WORKER_KINDS: frozenset[str] = frozenset(get_args(WorkerKind))
# Each kind's ErrorKind number, for the worker's own encoder (envscaler/runtime/sandbox/tool_wire.py): the order of
# proto/'s
# enum.
KIND_NUMBERS: dict[str, int] = {kind: number for number, kind in enumerate(get_args(WorkerKind), start=1)}
IN_BAND_STATE_ERRORS: frozenset[WorkerKind] = frozenset({"UNSERIALIZABLE_STATE", "WORKER_ERROR"})  # episode goes on


# A broken channel to a worker, by the framer's reason: what the caller is told.
CHANNEL_FAILURES: dict[str, WorkerKind] = {"timeout": "DEADLINE_EXCEEDED", "eof": "WORKER_CRASHED",
                                           "too_large": "PROTOCOL_ERROR", "protocol": "PROTOCOL_ERROR"}


def failure(kind: WorkerKind, message: str) -> dict[str, Any]:
    """A worker's failure reply: {"ok": false, "kind": <WorkerKind>, "message": str}."""
    return {"ok": False, "kind": kind, "message": message}


def kind_of(reply: dict[str, Any]) -> tuple[WorkerKind, str]:
    """A failure reply's kind and message; an unknown kind is the worker's protocol error, named."""
    kind, message = reply.get("kind"), str(reply.get("message", ""))
    if isinstance(kind, str) and kind in WORKER_KINDS:
        return cast(WorkerKind, kind), message  # narrowed by the membership test
    return "PROTOCOL_ERROR", f"the worker reported an unknown kind of failure ({str(kind)[:40]!r}): {message}"
