"""Canonical JSON for tool results and state.

Deterministic: sorted keys, no whitespace, UTF-8. datetime/date/time become ISO
8601, sets become sorted lists, tuples lists, non-string keys strings, and any
other object its public attributes under a `__type__` tag. Equal values give
equal bytes, so a state's sha256 identifies it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

MAX_DEPTH = 200


class EncodeError(ValueError):
    """The value cannot be represented as JSON (a cycle, or nesting too deep)."""


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, enum.Enum):
        return str(key.value)
    if isinstance(key, dt.date | dt.time):
        return key.isoformat()
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)
    return str(key)


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def to_jsonable(value: Any, _depth: int = 0, _path: frozenset[int] = frozenset()) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return _float(value)
    if _depth > MAX_DEPTH:
        raise EncodeError(f"value is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, _depth + 1, _path)
    if isinstance(value, Decimal):
        return _float(float(value))
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", errors="replace")
    if id(value) in _path:
        raise EncodeError("value contains a reference cycle")
    path = _path | {id(value)}
    if isinstance(value, Mapping):
        return {_key(k): to_jsonable(v, _depth + 1, path) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v, _depth + 1, path) for v in value]
    if isinstance(value, set | frozenset):
        items = [to_jsonable(v, _depth + 1, path) for v in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True, ensure_ascii=False))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return {"__type__": type(value).__name__, **to_jsonable(fields, _depth + 1, path)}
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict):
        public = {k: v for k, v in attrs.items() if not k.startswith("_")}
        return {"__type__": type(value).__name__, **to_jsonable(public, _depth + 1, path)}
    return {"__type__": type(value).__name__, "repr": repr(value)[:200]}
