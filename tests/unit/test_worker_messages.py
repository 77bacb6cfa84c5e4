"""The worker's failure kinds are exactly proto's ErrorKinds: nothing a worker reports is renamed on the way to a
client, and a kind outside the list is the worker's protocol error, named."""

from __future__ import annotations

from envscaler.runtime.messages import CHANNEL_FAILURES, WORKER_KINDS, kind_of
from envscaler.v1 import env_pb2 as pb


def test_worker_kinds_are_the_error_kinds_one_to_one() -> None:
    assert set(WORKER_KINDS) == set(pb.ErrorKind.keys()) - {"ERROR_KIND_UNSPECIFIED"}


def test_every_framing_reason_has_a_kind() -> None:
    from typing import get_args

    from envscaler.protocol.framing import Reason

    assert set(CHANNEL_FAILURES) == set(get_args(Reason))
    assert set(CHANNEL_FAILURES.values()) <= WORKER_KINDS


def test_an_unknown_kind_is_a_protocol_error_that_names_it() -> None:
    assert kind_of({"ok": False, "kind": "TOOL_EXCEPTION", "message": "boom"}) == ("TOOL_EXCEPTION", "boom")
    kind, message = kind_of({"ok": False, "kind": "FORGED", "message": "x"})
    assert kind == "PROTOCOL_ERROR" and "'FORGED'" in message
