"""Canonical JSON for tool results and state: any Python object graph, as deterministic bytes.

Sorted keys, no whitespace, UTF-8. datetime/date/time become ISO 8601, sets sorted lists, tuples lists,
enums their value, objects (plain, `__slots__`, dataclasses, pydantic models) their attributes but dunder
ones under a `__type__` tag. A dict, list, set or object met a second time (a cycle, or one object shared
by two places) is `{"$ref": POINTER}`, a JSON pointer (RFC 6901) to where it first appears in key order.
Integers of more than 600 digits are `{"$int": "0x..."}` (hex: Python refuses long decimal conversions),
bytes that are not UTF-8 `{"$bytes": BASE64}` (a key of the data that starts with "$" gets one more "$", so
these markers are never data), NaN and infinities the strings "NaN", "Infinity",
"-Infinity", and lone surrogates `\\uXXXX` escapes. What has no other form is its repr, with memory
addresses removed. Equal values give equal bytes in any process and under any hash seed, so a state's
sha256 identifies it. Output is bounded in depth and size: beyond either, EncodeError.
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
import datetime as dt
import enum
import hashlib
import heapq
import itertools
import json
import math
import re
import types
from collections.abc import Mapping, MutableSequence
from decimal import Decimal
from typing import Any

MAX_DEPTH = 200
MAX_BYTES = 64 << 20  # a default for callers that give none
_BIG_INT_BITS = 2000  # < 640 digits: no process can lower its int-to-str limit below that
_SMALL = 1 << 64
SET_KEY_DEPTH = 3  # how deep a set item's sort key looks (the cost grows fast with it)
SET_KEY_WIDTH = 32  # and how many items of each container on the way
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
           types.CodeType, types.FrameType, types.GeneratorType)
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=True)
_SLOTS: dict[type, tuple[str, ...]] = {}


class EncodeError(ValueError):
    """The value has no canonical JSON within the bounds; `reason` is "depth" or "size"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def dumps(value: Any, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> str:
    """The canonical JSON text of `value`; EncodeError when deeper than max_depth or longer than max_bytes."""
    try:
        text = _ENCODER.encode(to_jsonable(value, max_bytes, max_depth))
    except RecursionError:
        raise EncodeError("depth", "value is nested too deeply for the interpreter's stack") from None
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:  # lone surrogates: JSON's own escape keeps the text valid UTF-8
            text = text.encode("utf-8", "backslashreplace").decode()
    if len(text) > max_bytes or (not text.isascii() and len(text.encode()) > max_bytes):
        raise EncodeError("size", f"value's canonical JSON is over the {max_bytes}-byte cap")
    return text


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def safe_repr(value: Any, limit: int = 200) -> str:
    """repr without memory addresses (they differ between processes), and never raising."""
    try:
        text = repr(value)
        if not isinstance(text, str):
            raise TypeError("__repr__ returned a non-string")
    except Exception as exc:  # a hostile or broken __repr__
        return f"<{type(value).__name__} object; repr raised {type(exc).__name__}>"
    return _ADDRESS.sub("", text[: limit * 4])[:limit]


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _big_int(value: int) -> Any:
    return {"$int": hex(value)} if value.bit_length() > _BIG_INT_BITS else value


def _pointer(entry: tuple[Any, ...]) -> str:
    parts: list[str] = []
    while entry:
        entry, key = entry
        parts.append(key.replace("~", "~0").replace("/", "~1"))
    return "".join("/" + part for part in reversed(parts))


def _attributes(value: Any) -> dict[str, Any] | None:
    """An object's own attributes but dunder ones: its __dict__, its slots, pydantic's extra fields."""
    attrs: dict[str, Any] = {}
    raw = getattr(value, "__dict__", None)
    if isinstance(raw, dict):
        attrs.update(raw)
    extra = getattr(value, "__pydantic_extra__", None)  # pydantic v2 with extra="allow"; duck-typed
    if isinstance(extra, dict):
        attrs.update(extra)
    cls = type(value)
    slots = _SLOTS.get(cls)
    if slots is None:
        names: list[str] = []
        for klass in cls.__mro__:
            declared = klass.__dict__.get("__slots__", ())
            for name in (declared,) if isinstance(declared, str) else declared:
                if name.startswith("__") and not name.endswith("__"):
                    name = f"_{klass.__name__.lstrip('_')}{name}"  # name mangling
                names.append(name)
        slots = _SLOTS[cls] = tuple(names)
    for name in slots:
        if name not in attrs:
            try:
                attrs[name] = getattr(value, name)
            except AttributeError:  # an unset slot
                continue
    if dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            if field.name not in attrs:
                try:
                    attrs[field.name] = getattr(value, field.name)
                except AttributeError:
                    continue
    if not attrs and raw is None and not slots:
        return None
    return {k: v for k, v in attrs.items() if isinstance(k, str) and not (k.startswith("__") and k.endswith("__"))}


def to_jsonable(value: Any, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH,
                _key_depth: int | None = None) -> Any:
    """`value` as plain JSON data, with shared and cyclic parts as $ref. Keys are walked in sorted order,
    the order of the output, so "first" in a $ref means the same in every process. With _key_depth (a
    set item's sort key), what lies deeper than max_depth is cut off instead, and nested sets are ordered
    by shallower keys: a graph of objects in sets that point at each other still ends."""
    set_key_depth = SET_KEY_DEPTH if _key_depth is None else _key_depth - 1
    width = None if _key_depth is None else SET_KEY_WIDTH  # a sort key looks at the first items of each container
    seen: dict[int, tuple[Any, ...]] = {}  # id -> where it first appeared, a linked path (parent, key)
    alive: list[Any] = []  # keeps every tracked object alive, so no id is reused during the walk
    budget = [max_bytes]  # a lower bound on the output's length, to stop a blow-up early

    def spend(amount: int) -> None:
        budget[0] -= amount
        if budget[0] < 0:
            raise EncodeError("size", f"value's canonical JSON is over the {max_bytes}-byte cap")

    def track(obj: Any, where: tuple[Any, ...]) -> dict[str, str] | None:
        first = seen.get(id(obj))
        if first is not None:
            return {"$ref": _pointer(first)}
        seen[id(obj)] = where
        alive.append(obj)
        return None

    def mapping(items: list[tuple[Any, Any]], depth: int, where: tuple[Any, ...]) -> dict[str, Any]:
        keyed: dict[str, Any] = {}
        for key, item in items:
            name = key if type(key) is str else _key(key)
            if name[:1] == "$":  # the data's own "$..." keys get one more "$": only markers have one
                name = "$" + name
            if name in keyed:  # two keys with one text ({1: .., "1": ..}): keep both, in a deterministic order
                keys = [to_jsonable(k, max_bytes, max_depth) for k, _ in items]
                pairs = sorted(zip(map(_ENCODER.encode, keys), keys, (v for _, v in items), strict=True),
                               key=lambda pair: pair[0])
                spend(len(pairs) * 8)
                return {"$map": [[k, walk(v, depth + 1, (((where, "$map"), str(i)), "1"))]
                                 for i, (_, k, v) in enumerate(pairs)]}
            keyed[name] = item
        spend(len(keyed) * 4)
        names = sorted(keyed) if width is None else sorted(keyed)[:width]
        return {name: walk(keyed[name], depth + 1, (where, name)) for name in names}

    def sequence(v: Any, depth: int, where: tuple[Any, ...]) -> list[Any]:
        if width is not None:
            v = list(itertools.islice(v, width))
        size = len(v) + 1
        out: list[Any] = []
        for i, item in enumerate(v):
            t = type(item)  # scalars inline: this loop is the hot path of every tool result
            if t is str:
                size += len(item) + 2
            elif not (item is None or t is bool or (t is int and -_SMALL < item < _SMALL)):
                item = _float(item) if t is float else walk(item, depth + 1, (where, str(i)))
            out.append(item)
        spend(size)
        return out

    def plain_dict(v: dict[str, Any], names: list[str], depth: int, where: tuple[Any, ...]) -> dict[str, Any]:
        size = len(names) * 4
        out: dict[str, Any] = {}
        for name in names:
            item = v[name]
            t = type(item)
            if t is str:
                size += len(item) + 2
            elif not (item is None or t is bool or (t is int and -_SMALL < item < _SMALL)):
                item = _float(item) if t is float else walk(item, depth + 1, (where, name))
            out[name] = item
        spend(size)
        return out

    def dictionary(v: dict[Any, Any], depth: int, where: tuple[Any, ...]) -> dict[str, Any]:
        try:
            names = sorted(v) if width is None else heapq.nsmallest(width, v)
        except TypeError:  # keys of types that do not compare: the general way
            return mapping(list(v.items()), depth, where)
        if names and not (type(names[0]) is str and type(names[-1]) is str):
            return mapping(list(v.items()), depth, where)
        first_dollar = bisect.bisect_left(names, "$")
        if first_dollar < len(names) and names[first_dollar][:1] == "$":  # keys to escape
            return mapping(list(v.items()), depth, where)
        return plain_dict(v, names, depth, where)

    def walk(v: Any, depth: int, where: tuple[Any, ...]) -> Any:
        t = type(v)
        if t is str:
            spend(len(v) + 2)
            return v
        if t is int:
            return v if -_SMALL < v < _SMALL else _big_int(v)
        if v is None or t is bool:
            return v
        if t is float:
            return _float(v)
        if depth > max_depth:
            if _key_depth is not None:
                return "..."
            raise EncodeError("depth", f"value is nested deeper than {max_depth} levels")
        if t is dict:
            return track(v, where) or dictionary(v, depth, where)
        if t is list:
            return track(v, where) or sequence(v, depth, where)
        if t is tuple:
            return sequence(v, depth, where)
        return other(v, depth, where)

    def other(v: Any, depth: int, where: tuple[Any, ...]) -> Any:
        try:
            return classified(v, depth, where)
        except (EncodeError, RecursionError):
            raise
        except Exception:  # a hostile __getattribute__, __class__ or descriptor: what is left is the repr
            return {"__type__": type(v).__name__, "repr": safe_repr(v)}

    def classified(v: Any, depth: int, where: tuple[Any, ...]) -> Any:
        if isinstance(v, enum.Enum):
            return walk(v.value, depth + 1, where)
        if isinstance(v, str):
            return walk(str.__str__(v), depth, where)
        if isinstance(v, int):  # bool is never subclassed
            return _big_int(int.__int__(v))
        if isinstance(v, float):
            return _float(float.__float__(v))
        if isinstance(v, dt.datetime | dt.date | dt.time):
            return v.isoformat()
        if isinstance(v, dt.timedelta):
            return v.total_seconds()
        if isinstance(v, Decimal):
            return _float(float(v)) if not v.is_snan() else "sNaN"
        if isinstance(v, bytes | bytearray | memoryview):
            data = bytes(v)
            spend(len(data))
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return {"$bytes": base64.b64encode(data).decode()}
        if isinstance(v, _OPAQUE):
            return {"__type__": type(v).__name__, "repr": safe_repr(v)}
        if isinstance(v, Mapping):
            return track(v, where) or mapping(list(v.items()), depth, where)
        if isinstance(v, tuple | frozenset | range):
            items = v if not isinstance(v, frozenset) else _set_order(v, max_bytes, set_key_depth)
            return sequence(items, depth, where)
        if isinstance(v, set):
            return track(v, where) or sequence(_set_order(v, max_bytes, set_key_depth), depth, where)
        if isinstance(v, MutableSequence):  # list subclasses, deque, array
            return track(v, where) or sequence(list(v), depth, where)
        attrs = _attributes(v)
        if attrs is None:
            return {"__type__": type(v).__name__, "repr": safe_repr(v)}
        ref = track(v, where)
        if ref is not None:
            return ref
        out = mapping(list(attrs.items()), depth, where)
        out["__type__"] = type(v).__name__
        return out

    return walk(value, 0, ())


def _set_order(items: Any, max_bytes: int, key_depth: int) -> list[Any]:
    """A set's items in a deterministic order: natural for strings or ints, else by each item's own encoding
    down to key_depth levels (which does not depend on where the item is met first). Distinct objects alike
    down to that depth keep the set's own order among themselves: the one case this cannot fix."""
    kinds = set(map(type, items))
    if len(kinds) == 1 and next(iter(kinds)) in (str, int):
        return sorted(items)
    if key_depth <= 0:
        return list(items)
    return sorted(items, key=lambda item: _ENCODER.encode(to_jsonable(item, max_bytes, key_depth, key_depth)))


def _key(key: Any) -> str:
    """A non-string dict key as text: JSON's own form for scalars, the canonical JSON of anything else."""
    if isinstance(key, enum.Enum):
        key = key.value
    if isinstance(key, str):
        return str.__str__(key)
    if key is None or isinstance(key, bool):
        return json.dumps(key)
    if isinstance(key, int):
        value = _big_int(int.__int__(key))
        return value["$int"] if isinstance(value, dict) else str(value)
    if isinstance(key, float):
        number = _float(float.__float__(key))
        return number if isinstance(number, str) else repr(number)
    if isinstance(key, dt.date | dt.time):
        return key.isoformat()
    return _ENCODER.encode(to_jsonable(key))
