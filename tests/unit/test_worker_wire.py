"""The server <-> worker wire (proto/envscaler/v1/worker.proto): the sandbox's hand codec (worker_wire.py) held equal
to the generated classes both ways, for every message; and the trusted side's one decoder (wire.read_reply) given
arbitrary bytes and well-formed-but-wrong messages, which it answers only with FrameError("protocol")."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import given, settings
from hypothesis import strategies as st

from envscaler.protocol.framing import FrameError
from envscaler.runtime.sandbox import worker_wire
from envscaler.runtime.sandbox.worker_wire import BOOL, BYTES, ENUM, INT, SCHEMA, STRING
from envscaler.runtime.trusted import wire
from envscaler.v1 import env_pb2 as pb
from envscaler.v1 import worker_pb2 as wpb

_TYPES = {STRING: FieldDescriptor.TYPE_STRING, BYTES: FieldDescriptor.TYPE_BYTES, INT: FieldDescriptor.TYPE_INT64,
          BOOL: FieldDescriptor.TYPE_BOOL, ENUM: FieldDescriptor.TYPE_ENUM}
KINDS = [number for name, number in pb.ErrorKind.items() if name != "ERROR_KIND_UNSPECIFIED"]


def test_the_hand_schema_is_the_protos() -> None:
    """Every message of worker.proto, every field's number, name, type and repetition; both oneofs' members."""
    described = {name: message for name, message in wpb.DESCRIPTOR.message_types_by_name.items()
                 if name not in ("WorkerRequest", "WorkerReply")}
    assert set(described) == set(SCHEMA)
    for name, schema in SCHEMA.items():
        fields = {f.number: f for f in described[name].fields}
        assert set(fields) == set(schema), name
        for number, (field_name, kind, repeated) in schema.items():
            field = fields[number]
            assert field.name == field_name, (name, number)
            assert field.is_repeated == repeated, (name, field_name)
            if kind in SCHEMA:
                assert field.message_type.name == kind, (name, field_name)
            else:
                assert field.type == _TYPES[kind], (name, field_name)
    for envelope, members in ((wpb.WorkerRequest, worker_wire.REQUESTS), (wpb.WorkerReply, worker_wire.REPLIES)):
        oneof = envelope.DESCRIPTOR.oneofs[0]
        assert {f.number: (f.name, f.message_type.name) for f in oneof.fields} == members
        assert len(envelope.DESCRIPTOR.fields) == len(oneof.fields)


def _scalar(kind: str) -> st.SearchStrategy[Any]:
    return {STRING: st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
            BYTES: st.binary(max_size=20), INT: st.integers(-(2**63), 2**63 - 1), BOOL: st.booleans(),
            ENUM: st.sampled_from(KINDS)}[kind]


def fields_of(message: str) -> st.SearchStrategy[dict[str, Any]]:
    """Any value of `message`, as the hand codec's dict (absent sub-messages: None)."""
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for name, kind, repeated in SCHEMA[message].values():
        if kind in SCHEMA:
            parts[name] = st.none() | st.deferred(lambda kind=kind: fields_of(kind))
        elif repeated:
            parts[name] = st.lists(_scalar(kind), max_size=4)
        else:
            parts[name] = _scalar(kind)
    return st.fixed_dictionaries(parts)


def generated(message: str, fields: dict[str, Any]) -> Any:
    """The generated class's instance of the same value."""
    values = {}
    for name, kind, _ in SCHEMA[message].values():
        value = fields[name]
        if kind in SCHEMA:
            if value is not None:
                values[name] = generated(kind, value)
        else:
            values[name] = value
    return getattr(wpb, message)(**values)


def _defaults(message: str, fields: dict[str, Any]) -> dict[str, Any]:
    """What decoding gives back: a sub-message set to its defaults stays set (present, as protobuf keeps it)."""
    return {name: _defaults(kind, fields[name]) if kind in SCHEMA and fields[name] is not None else fields[name]
            for name, kind, _ in SCHEMA[message].values()}


@pytest.mark.parametrize("message", sorted(SCHEMA))
def test_every_message_encodes_and_decodes_as_the_generated_class(message: str) -> None:
    @settings(max_examples=60, deadline=None)
    @given(fields_of(message))
    def check(fields: dict[str, Any]) -> None:
        ours = worker_wire.encode(message, fields)
        theirs = generated(message, fields).SerializeToString()
        assert ours == theirs
        assert worker_wire.decode(message, theirs) == _defaults(message, fields)

    check()


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(worker_wire.REQUESTS.values())).flatmap(
    lambda member: st.tuples(st.just(member), fields_of(member[1]))))
def test_every_request_the_server_sends_is_read_in_the_sandbox(member: tuple[tuple[str, str], dict[str, Any]]) -> None:
    (name, message), fields = member
    body = wpb.WorkerRequest(**{name: generated(message, fields)}).SerializeToString()
    assert worker_wire.read_request(body) == (name, _defaults(message, fields))
    assert worker_wire.request(name, **fields) == body


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(worker_wire.REPLIES.values())).flatmap(
    lambda member: st.tuples(st.just(member), fields_of(member[1]))))
def test_every_reply_the_sandbox_sends_is_the_generated_one(member: tuple[tuple[str, str], dict[str, Any]]) -> None:
    (name, message), fields = member
    ours = worker_wire.reply(name, **fields)
    assert ours == wpb.WorkerReply(**{name: generated(message, fields)}).SerializeToString()
    assert wire.read_reply(ours, (name,)).WhichOneof("reply") == name  # type: ignore[arg-type]


# ---------------------------------------------------------------- the trusted side's decoder

ALL: tuple[wire.ReplyKind, ...] = ("done", "spawned", "reaped", "state", "result", "check")


def _protocol_error(body: bytes, expect: tuple[wire.ReplyKind, ...]) -> str:
    with pytest.raises(FrameError) as raised:
        wire.read_reply(body, expect)
    assert raised.value.reason == "protocol"
    return str(raised.value)


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=200), st.lists(st.sampled_from(ALL), max_size=3).map(tuple))
def test_arbitrary_bytes_are_a_reply_or_a_protocol_error(body: bytes, expect: tuple[wire.ReplyKind, ...]) -> None:
    try:
        reply = wire.read_reply(body, expect)
    except FrameError as exc:
        assert exc.reason == "protocol" and str(exc)
        return
    kind = reply.WhichOneof("reply")
    assert kind == "failure" or kind in expect


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=200))
def test_the_sandboxs_decoder_takes_arbitrary_bytes(body: bytes) -> None:
    with contextlib.suppress(worker_wire.WireError):  # and nothing else
        worker_wire.read_request(body)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(worker_wire.REPLIES.values())).flatmap(
    lambda member: st.tuples(st.just(member), fields_of(member[1]))), st.sampled_from(ALL))
def test_a_well_formed_reply_of_another_kind_is_named(member: tuple[tuple[str, str], dict[str, Any]],
                                                       due: wire.ReplyKind) -> None:
    (name, _), fields = member
    body = worker_wire.reply(name, **fields)
    if name in (due, "failure"):
        assert wire.read_reply(body, (due,)).WhichOneof("reply") == name
    else:
        assert _protocol_error(body, (due,)) == f"a {name} reply where {due} was due"


@pytest.mark.parametrize("body, problem", [
    (b"", "an empty WorkerReply"),
    (worker_wire.reply("failure", kind=99, message="x"), "a failure of an unknown kind (99)"),
    (worker_wire.reply("failure", message="no kind"), "a failure of an unknown kind (0)"),
    (worker_wire.reply("state", state_json="{}", state_error={"kind": 77}), "a failure of an unknown kind (77)"),
    (worker_wire.reply("result") + b"\x98\x01\x05", "a result reply with a field the wire does not define"),
    (b"\x32\x03\x98\x01\x05", "a result reply with a field the wire does not define"),  # inside the member
    (b"\x32\x02\x0a\x01\xff", "a reply that is not a WorkerReply"),  # a string that is not UTF-8
    (b'{"ok": true, "result": "5"}', "a reply that is not a WorkerReply"),  # the old JSON wire
])
def test_wrong_replies_get_a_specific_error(body: bytes, problem: str) -> None:
    assert _protocol_error(body, ("result", "state")).startswith(problem)


def test_a_known_failure_is_a_reply() -> None:
    body = worker_wire.reply("failure", kind=pb.TOOL_EXCEPTION, message="boom")
    assert wire.failure_of(wire.read_reply(body, ("result",)).failure) == ("TOOL_EXCEPTION", "boom")
