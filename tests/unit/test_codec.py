"""Canonical JSON: deterministic bytes for equal values, every Python value mapped."""

from __future__ import annotations

import datetime as dt
import enum
import json
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envscaler.runtime.sandbox import codec


class Color(enum.Enum):
    RED = "red"


@dataclass
class Point:
    x: int
    y: int


class Thing:
    def __init__(self) -> None:
        self.name = "t"
        self._secret = "hidden"


def test_scalars_and_containers() -> None:
    value = {"b": (1, 2), "a": {3, 1, 2}, "c": frozenset({"y", "x"}), 2: None, "f": 1.5}
    assert codec.dumps(value) == '{"2":null,"a":[1,2,3],"b":[1,2],"c":["x","y"],"f":1.5}'


def test_dates_enums_objects() -> None:
    value = [dt.datetime(2025, 1, 2, 3, 4, 5), dt.date(2025, 1, 2), Color.RED, Point(1, 2), Thing()]
    assert json.loads(codec.dumps(value)) == [
        "2025-01-02T03:04:05", "2025-01-02", "red", {"__type__": "Point", "x": 1, "y": 2},
        {"__type__": "Thing", "_secret": "hidden", "name": "t"},  # a state's attributes, private ones too
    ]


def test_non_finite_floats_become_text() -> None:
    assert codec.dumps([float("nan"), float("inf"), float("-inf")]) == '["NaN","Infinity","-Infinity"]'


def test_cycles_are_references_and_depth_is_a_typed_error() -> None:
    loop: list = []
    loop.append(loop)
    assert codec.dumps(loop) == '[{"$ref":""}]'
    deep: list = []
    for _ in range(codec.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(codec.EncodeError, match="deeper") as caught:
        codec.dumps(deep)
    assert caught.value.reason == "depth"


def test_shared_references_point_at_their_first_appearance() -> None:
    shared = {"k": 1}
    assert codec.dumps([shared, shared]) == '[{"k":1},{"$ref":"/0"}]'
    assert codec.dumps([{"k": 1}, {"k": 1}]) == '[{"k":1},{"k":1}]'  # equal but distinct: no reference


def test_unicode_is_kept() -> None:
    assert codec.dumps({"name": "Inês"}) == '{"name":"Inês"}'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    # Keys starting with "$" come back with one more "$" (markers are never data): test_codec_graphs has them.
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.text(max_size=5).filter(lambda key: not key.startswith("$")), children, max_size=4),
    max_leaves=25,
)


@given(json_values)
def test_json_values_round_trip(value: object) -> None:
    assert json.loads(codec.dumps(value)) == value


@given(st.dictionaries(st.text(max_size=5), st.integers(), max_size=8))
def test_key_order_does_not_change_the_bytes(value: dict) -> None:
    reversed_order = dict(reversed(list(value.items())))
    assert codec.dumps(value) == codec.dumps(reversed_order)
    assert codec.sha256(codec.dumps(value)) == codec.sha256(codec.dumps(reversed_order))


@given(st.sets(st.integers() | st.text(max_size=3), max_size=8))
def test_sets_are_order_free(value: set) -> None:
    assert codec.dumps(value) == codec.dumps(set(reversed(sorted(value, key=str))))
