"""The worker's hand-written codec (envscaler/runtime/sandbox/tool_wire.py) against the generated protobuf classes,
both ways:
the episode channel speaks proto/'s messages without the protobuf runtime in the sandbox."""

from __future__ import annotations

import random

import pytest
from google.protobuf.message import DecodeError

from envscaler.runtime.messages import KIND_NUMBERS
from envscaler.runtime.sandbox import tool_wire
from envscaler.v1 import env_pb2 as pb

TEXTS = ["", "a", "get_account", '{"account_id": "AC-300"}', "é中🙂", "x" * 300, "\x00\n\t\"\\", "y" * 70000]


def _random_call(rng: random.Random) -> pb.SessionRequest:
    call = pb.CallToolRequest(episode_id=rng.choice(TEXTS), name=rng.choice(TEXTS),
                              arguments_json=rng.choice(TEXTS), timeout_ms=rng.choice([0, 1, 127, 128, 2**32 - 1]))
    return pb.SessionRequest(call_tool=call, deadline_ms=rng.choice([0, 1, 300, 2**31, 2**32 - 1]))


def test_a_call_tool_request_reads_as_protobuf_writes_it() -> None:
    rng = random.Random(7)
    for _ in range(300):
        request = _random_call(rng)
        read = tool_wire.read_request(request.SerializeToString())
        assert read == tool_wire.CallTool(request.call_tool.episode_id, request.call_tool.name,
                                          request.call_tool.arguments_json, request.call_tool.timeout_ms,
                                          request.deadline_ms)


@pytest.mark.parametrize("kind", ["describe", "reset", "get_state", "evaluate", "end_episode", "episode_channel"])
def test_any_other_request_is_named(kind: str) -> None:
    request = pb.SessionRequest()
    getattr(request, kind).SetInParent()
    assert tool_wire.read_request(request.SerializeToString()) == kind


def test_the_request_kinds_are_proto_s() -> None:
    fields = pb.SessionRequest.DESCRIPTOR.oneofs_by_name["request"].fields
    assert {f.number: f.name for f in fields} == tool_wire.SESSION_REQUEST_KINDS


def test_an_empty_request_names_nothing() -> None:
    assert tool_wire.read_request(b"") == ""


def test_a_later_member_of_the_oneof_wins_and_parts_merge_as_protobuf_merges() -> None:
    first = pb.SessionRequest(call_tool=pb.CallToolRequest(name="a", arguments_json="{}")).SerializeToString()
    second = pb.SessionRequest(call_tool=pb.CallToolRequest(name="b")).SerializeToString()
    other = pb.SessionRequest(get_state=pb.GetStateRequest()).SerializeToString()
    for data in (first + second, first + other, other + first, first + other + second):
        expected = pb.SessionRequest.FromString(data)
        read = tool_wire.read_request(data)
        if expected.WhichOneof("request") == "call_tool":
            assert isinstance(read, tool_wire.CallTool)
            assert (read.name, read.arguments_json) == (expected.call_tool.name, expected.call_tool.arguments_json)
        else:
            assert read == expected.WhichOneof("request")


def test_unknown_fields_and_mistyped_known_fields_are_skipped_as_protobuf_skips_them() -> None:
    call = pb.SessionRequest(call_tool=pb.CallToolRequest(name="t")).SerializeToString()
    extras = [
        bytes([0x98, 0x06, 0x05]),  # field 99, varint
        bytes([0xA1, 0x06]) + b"12345678",  # field 100, fixed64
        bytes([0xAD, 0x06]) + b"1234",  # field 101, fixed32
        bytes([0x80, 0x01, 0x07]),  # field 16 (deadline_ms) as varint: known
        bytes([0x82, 0x01, 0x01, 0x41]),  # field 16 with a length: protobuf keeps it as unknown
    ]
    for extra in extras:
        data = call + extra
        expected = pb.SessionRequest.FromString(data)
        read = tool_wire.read_request(data)
        assert isinstance(read, tool_wire.CallTool)
        assert (read.name, read.deadline_ms) == (expected.call_tool.name, expected.deadline_ms)


def test_malformed_bytes_are_a_wire_error_where_protobuf_refuses_them() -> None:
    bad = [
        b"\x1a\x05ab",  # call_tool's length past the end
        b"\x1a\x03\x12\x01\xff",  # a name that is not UTF-8
        b"\x80",  # a truncated tag
        b"\x1a\x02\x20\xff",  # a truncated varint inside call_tool
        b"\x1b",  # wire type 3 (a group)
        b"\x00\x01",  # field number 0
    ]
    for data in bad:
        with pytest.raises(DecodeError):
            pb.SessionRequest.FromString(data).call_tool.name.encode()
        with pytest.raises(tool_wire.WireError):
            tool_wire.read_request(data)


def test_random_bytes_never_raise_anything_but_a_wire_error() -> None:
    rng = random.Random(11)
    seed = pb.SessionRequest(call_tool=pb.CallToolRequest(name="t", arguments_json="{}")).SerializeToString()
    for _ in range(3000):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            tool_wire.read_request(bytes(data))
        except tool_wire.WireError:
            continue


def _body(framed: bytes) -> bytes:
    assert tool_wire.HEADER.unpack_from(framed)[0] == len(framed) - 4
    return framed[4:]


def test_a_call_tool_response_is_byte_for_byte_protobuf_s() -> None:
    rng = random.Random(3)
    for _ in range(300):
        kind = rng.choice([0, *KIND_NUMBERS.values()])
        fields = {"result_json": rng.choice(TEXTS), "observation": rng.choice(TEXTS),
                  "episode_broken": rng.random() < 0.3, "duration_us": rng.choice([0, 1, 300, 2**40])}
        message = rng.choice(TEXTS) if kind else ""
        ours = tool_wire.call_tool_response(error_kind=kind, error_message=message, **fields)
        theirs = pb.SessionResponse(call_tool=pb.CallToolResponse(
            **fields, error=pb.ToolError(kind=kind, message=message) if kind or message else None))
        assert _body(ours) == theirs.SerializeToString()


def test_a_session_error_is_byte_for_byte_protobuf_s() -> None:
    for code in (0, 3, 9, 16):
        for message in TEXTS:
            ours = tool_wire.session_error(code, message)
            theirs = pb.SessionResponse(error=pb.SessionError(code=code, message=message))
            assert _body(ours) == theirs.SerializeToString()


def test_every_error_kind_number_is_proto_s() -> None:
    assert {name: pb.ErrorKind.Value(name) for name in KIND_NUMBERS} == KIND_NUMBERS
    assert set(KIND_NUMBERS) == set(pb.ErrorKind.keys()) - {"ERROR_KIND_UNSPECIFIED"}
