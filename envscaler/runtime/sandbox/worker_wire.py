"""The sandbox's side of the server <-> worker wire (proto/envscaler/v1/worker.proto), encoded and decoded by hand.

Why by hand: the zygote and its workers stay free of the protobuf runtime (as tool_wire.py's episode channel does).
proto/ stays the wire's one truth: SCHEMA below is its messages' field numbers and types, and
tests/unit/test_worker_wire.py holds these bytes equal to the generated classes' both ways, for every message. The
trusted server never uses this decoder on the sandbox's bytes: it reads WorkerReply with the generated classes
(envscaler/runtime/trusted/wire.py). Standard library only.
"""

from __future__ import annotations

from typing import Any

# A field: (name, type, repeated); a type is a scalar below or a message's name in SCHEMA.
Field = tuple[str, str, bool]
STRING, BYTES, INT, BOOL, ENUM = "string", "bytes", "int64", "bool", "enum"
_SCALARS = {STRING: "", BYTES: b"", INT: 0, BOOL: False, ENUM: 0}

SCHEMA: dict[str, dict[int, Field]] = {
    "WorkerLimits": {1: ("memory_bytes", INT, False), 2: ("file_bytes", INT, False), 3: ("open_files", INT, False)},
    "WorkerLoad": {1: ("code", STRING, False), 2: ("class_name", STRING, False), 3: ("env_id", STRING, False),
                   4: ("tools", STRING, True), 5: ("observation", STRING, False), 6: ("sandbox", STRING, False),
                   7: ("max_result_bytes", INT, False), 8: ("max_state_bytes", INT, False),
                   9: ("limits", "WorkerLimits", False)},
    "WorkerSpawn": {},
    "WorkerReap": {1: ("pid", INT, False)},
    "WorkerSweep": {1: ("keep", INT, True)},
    "WorkerRenew": {},
    "WorkerReset": {1: ("init_config_json", BYTES, False), 2: ("seed", INT, False)},
    "WorkerCall": {1: ("name", STRING, False), 2: ("arguments_json", BYTES, False)},
    "WorkerGetState": {},
    "WorkerPing": {},
    "WorkerAttach": {1: ("episode_id", STRING, False), 2: ("max_argument_bytes", INT, False)},
    "WorkerEvaluate": {1: ("checks", STRING, True)},
    "WorkerNext": {},
    "WorkerDone": {},
    "WorkerFailure": {1: ("kind", ENUM, False), 2: ("message", STRING, False)},
    "WorkerSpawned": {1: ("pid", INT, False), 2: ("pidfd", BOOL, False)},
    "WorkerReaped": {1: ("status", STRING, False)},
    "WorkerState": {1: ("state_json", STRING, False), 2: ("sha256", STRING, False),
                    3: ("state_error", "WorkerFailure", False)},
    "WorkerResult": {1: ("result_json", STRING, False), 2: ("observation", STRING, False)},
    "WorkerCheck": {1: ("pid", INT, False)},
}
# The two envelopes' oneofs: field number -> (member name, message type).
REQUESTS: dict[int, tuple[str, str]] = {
    1: ("load", "WorkerLoad"), 2: ("spawn", "WorkerSpawn"), 3: ("reap", "WorkerReap"), 4: ("sweep", "WorkerSweep"),
    5: ("renew", "WorkerRenew"), 6: ("reset", "WorkerReset"), 7: ("call", "WorkerCall"),
    8: ("state", "WorkerGetState"), 9: ("ping", "WorkerPing"), 10: ("attach", "WorkerAttach"),
    11: ("evaluate", "WorkerEvaluate"), 12: ("next", "WorkerNext"),
}
REPLIES: dict[int, tuple[str, str]] = {
    1: ("done", "WorkerDone"), 2: ("failure", "WorkerFailure"), 3: ("spawned", "WorkerSpawned"),
    4: ("reaped", "WorkerReaped"), 5: ("state", "WorkerState"), 6: ("result", "WorkerResult"),
    7: ("check", "WorkerCheck"),
}
_REPLY_NUMBERS = {name: (number, kind) for number, (name, kind) in REPLIES.items()}
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """The bytes are not a well-formed message of the expected type."""


# ---------------------------------------------------------------- encoding

def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # an int64's two's complement, as protobuf sends a negative one
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | _LENGTH) + _varint(len(data)) + data


def _scalar(kind: str, value: Any) -> bytes:
    return value.encode() if kind == STRING else bytes(value)


def encode(message: str, fields: dict[str, Any]) -> bytes:
    """`fields` (by name; absent ones default) as the generated class would serialize them: in field order,
    defaults left out, repeated integers packed."""
    out = []
    for number, (name, kind, repeated) in sorted(SCHEMA[message].items()):
        value = fields.get(name)
        if value is None:
            continue
        if kind in SCHEMA:
            out.append(_length(number, encode(kind, value)))
        elif repeated and kind in (INT, BOOL, ENUM):
            if value:
                out.append(_length(number, b"".join(_varint(int(v)) for v in value)))
        elif repeated:
            out += [_length(number, _scalar(kind, v)) for v in value]
        elif kind in (INT, BOOL, ENUM):
            if value:
                out.append(_varint(number << 3 | _VARINT) + _varint(int(value)))
        elif value:
            out.append(_length(number, _scalar(kind, value)))
    return b"".join(out)


def reply(member: str, /, **fields: Any) -> bytes:
    """A WorkerReply holding its `member` (done, failure, spawned, reaped, state, result, check)."""
    number, message = _REPLY_NUMBERS[member]
    return _length(number, encode(message, fields))


# ---------------------------------------------------------------- decoding

Data = bytes | memoryview  # decoding slices a memoryview: a large init_config is copied once, into its value


def _read_varint(data: Data, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("a truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result & ((1 << 64) - 1), pos


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _fields(data: Data) -> list[tuple[int, int, Any]]:
    """Every (number, wire type, value) in `data`; a length-delimited value as a memoryview."""
    data = memoryview(data)
    found: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise WireError("a field numbered 0")
        value: int | memoryview
        if wire == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire == _LENGTH:
            size, pos = _read_varint(data, pos)
            if pos + size > len(data):
                raise WireError("a length past the end")
            value, pos = data[pos:pos + size], pos + size
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            if pos + size > len(data):
                raise WireError("a fixed-size field past the end")
            value, pos = data[pos:pos + size], pos + size
        else:
            raise WireError(f"wire type {wire}")
        found.append((number, wire, value))
    return found


def _one(kind: str, wire: int, value: Any) -> Any:
    if kind in (INT, BOOL, ENUM):
        if wire != _VARINT:
            raise WireError(f"a {kind} that is not a varint")
        return bool(value) if kind == BOOL else _signed(value)
    if wire != _LENGTH:
        raise WireError(f"a {kind} that is not length-delimited")
    if kind == STRING:
        try:
            return str(value, "utf-8")
        except UnicodeDecodeError:
            raise WireError("a string that is not UTF-8") from None
    return bytes(value)


def decode(message: str, data: Data) -> dict[str, Any]:
    """Every field of `message` by name (absent ones at their defaults); an unknown field is a WireError (this wire
    is closed: both ends ship in one image)."""
    schema = SCHEMA[message]
    out: dict[str, Any] = {}
    for name, kind, repeated in schema.values():
        out[name] = [] if repeated else None if kind in SCHEMA else _SCALARS[kind]
    for number, wire, value in _fields(data):
        if number not in schema:
            raise WireError(f"{message} has no field {number}")
        name, kind, repeated = schema[number]
        if kind in SCHEMA:
            if wire != _LENGTH:
                raise WireError(f"{message}.{name} is not length-delimited")
            out[name] = decode(kind, value)  # a repeated sub-message field would merge; none is repeated
        elif repeated and kind in (INT, BOOL, ENUM) and wire == _LENGTH:
            packed, pos = value, 0
            while pos < len(packed):
                item, pos = _read_varint(packed, pos)
                out[name].append(_one(kind, _VARINT, item))
        elif repeated:
            out[name].append(_one(kind, wire, value))
        else:
            out[name] = _one(kind, wire, value)
    return out


def _envelope(data: Data, members: dict[int, tuple[str, str]], what: str) -> tuple[str, dict[str, Any]]:
    chosen: tuple[str, dict[str, Any]] | None = None
    for number, wire, value in _fields(data):
        if number not in members or wire != _LENGTH:
            raise WireError(f"{what} has no member {number} of wire type {wire}")
        name, message = members[number]
        chosen = (name, decode(message, value))  # the last member set wins, as for any oneof
    if chosen is None:
        raise WireError(f"an empty {what}")
    return chosen


def read_request(data: Data) -> tuple[str, dict[str, Any]]:
    """A WorkerRequest: its member's name (load, spawn, ..., next) and fields."""
    return _envelope(data, REQUESTS, "WorkerRequest")


def read_reply(data: Data) -> tuple[str, dict[str, Any]]:
    """A WorkerReply (for tests: the server reads replies with the generated classes,
    envscaler/runtime/trusted/wire.py)."""
    return _envelope(data, REPLIES, "WorkerReply")


def request(member: str, /, **fields: Any) -> bytes:
    """A WorkerRequest (for tests: the server builds requests with the generated classes)."""
    number, message = next((n, m) for n, (name, m) in REQUESTS.items() if name == member)
    return _length(number, encode(message, fields))
