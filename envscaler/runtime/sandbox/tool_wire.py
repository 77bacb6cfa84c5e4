"""The few protobuf messages an episode's worker speaks on its episode channel (proto/envscaler/v1/env.proto:
EpisodeChannelRequest), encoded and decoded by hand.

Why by hand: the worker and its zygote stay free of the protobuf runtime (some 4 MiB in every sandbox, and its
import in every fresh interpreter). proto/ stays the wire's one truth: tests/unit/test_tool_wire.py holds these
bytes equal to the generated classes' both ways. Only what the channel carries is here: a SessionRequest whose
call_tool is read (any other request is only named), and a SessionResponse holding a CallToolResponse or a
SessionError. Input is the caller's, so every malformed byte is a WireError, never an exception of another kind.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = struct.Struct("!I")

# Field numbers, from proto/envscaler/v1/env.proto.
SESSION_REQUEST_KINDS = {1: "describe", 2: "reset", 3: "call_tool", 4: "get_state", 5: "evaluate",
                         6: "end_episode", 7: "episode_channel"}
_CALL_TOOL = 3
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """The bytes are not a well-formed message of the expected type."""


@dataclass(frozen=True)
class CallTool:
    """A SessionRequest's call_tool (CallToolRequest), and the request's deadline_ms."""

    episode_id: str = ""
    name: str = ""
    arguments_json: str = ""
    timeout_ms: int = 0
    deadline_ms: int = 0


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint over 10 bytes")


def _fields(data: bytes) -> list[tuple[int, int, int | bytes]]:
    """Every (field number, wire type, value) of one message, in order; groups are refused (proto3 has none)."""
    fields: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise WireError("field number 0")
        value: int | bytes
        if wire_type == _VARINT:
            value, pos = _varint(data, pos)
        elif wire_type == _LENGTH:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise WireError("truncated length-delimited field")
            value, pos = data[pos:pos + size], pos + size
        elif wire_type in (_FIXED64, _FIXED32):
            width = 8 if wire_type == _FIXED64 else 4
            if pos + width > len(data):
                raise WireError("truncated fixed-width field")
            value, pos = data[pos:pos + width], pos + width
        else:
            raise WireError(f"wire type {wire_type}")
        fields.append((number, wire_type, value))
    return fields


def _text(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise WireError("a string field that is not UTF-8") from None


def _uint32(value: int) -> int:
    return value & 0xFFFFFFFF  # protobuf truncates a wider varint the same way


def read_request(body: bytes) -> CallTool | str:
    """A SessionRequest: its call_tool, or the name of the other request it holds ('' for none)."""
    kind_number, kind_body, deadline_ms = 0, b"", 0
    # A known field with another wire type is an unknown field, as protobuf reads it.
    for number, wire_type, value in _fields(body):
        if number in SESSION_REQUEST_KINDS and wire_type == _LENGTH and isinstance(value, bytes):
            # A oneof: the last member wins; a repeated member's parts merge (only call_tool's are read).
            kind_body = kind_body + value if number == kind_number else value
            kind_number = number
        elif number == 16 and wire_type == _VARINT and isinstance(value, int):
            deadline_ms = _uint32(value)
    if kind_number != _CALL_TOOL:
        return SESSION_REQUEST_KINDS.get(kind_number, "")
    episode_id = name = arguments_json = ""
    timeout_ms = 0
    for number, wire_type, value in _fields(kind_body):
        if isinstance(value, int):
            if number == 4 and wire_type == _VARINT:
                timeout_ms = _uint32(value)
        elif wire_type != _LENGTH:
            continue
        elif number == 1:
            episode_id = _text(value)
        elif number == 2:
            name = _text(value)
        elif number == 3:
            arguments_json = _text(value)
    return CallTool(episode_id, name, arguments_json, timeout_ms, deadline_ms)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _string(number: int, text: str) -> bytes:
    if not text:
        return b""  # proto3: a default value is not written
    data = text.encode()
    return _encode_varint(number << 3 | _LENGTH) + _encode_varint(len(data)) + data


def _message(number: int, body: bytes) -> bytes:
    return _encode_varint(number << 3 | _LENGTH) + _encode_varint(len(body)) + body


def _integer(number: int, value: int) -> bytes:
    return _encode_varint(number << 3 | _VARINT) + _encode_varint(value) if value else b""


def _framed(body: bytes) -> bytes:
    return HEADER.pack(len(body)) + body


def call_tool_response(result_json: str = "", observation: str = "", error_kind: int = 0, error_message: str = "",
                       episode_broken: bool = False, duration_us: int = 0) -> bytes:
    """A framed SessionResponse holding a CallToolResponse."""
    error = _integer(1, error_kind) + _string(2, error_message)
    body = (_string(1, result_json) + _string(2, observation)
            + (_message(3, error) if error_kind or error_message else b"")
            + _integer(4, int(episode_broken)) + _integer(5, duration_us))
    return _framed(_message(3, body))


def session_error(code: int, message: str) -> bytes:
    """A framed SessionResponse holding a SessionError (a google.rpc.Code and its message)."""
    return _framed(_message(15, _integer(1, code) + _string(2, message)))
