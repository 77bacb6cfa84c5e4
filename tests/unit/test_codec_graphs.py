"""Canonical JSON of awkward object graphs: cycles, sharing, slots, odd keys and scalars, bounds, determinism."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pydantic
import pytest

from envscaler.runtime.sandbox import codec

ROOT = Path(__file__).resolve().parents[2]


class Directory:
    def __init__(self, name: str, parent: Directory | None = None) -> None:
        self.name = name
        self.parent = parent
        self.contents: dict[str, object] = {}

    def mkdir(self, name: str) -> Directory:
        child = Directory(name, self)
        self.contents[name] = child
        return child


def test_a_tree_with_parent_pointers_encodes_its_back_references() -> None:
    root = Directory("/")
    docs = root.mkdir("docs")
    docs.mkdir("old")
    state = {"root": root, "cwd": docs}
    assert json.loads(codec.dumps(state)) == {
        "cwd": {"__type__": "Directory", "name": "docs", "parent": {
            "__type__": "Directory", "name": "/", "parent": None, "contents": {"docs": {"$ref": "/cwd"}}},
            "contents": {"old": {"__type__": "Directory", "name": "old", "parent": {"$ref": "/cwd"},
                                 "contents": {}}}},
        "root": {"$ref": "/cwd/parent"},
    }


def test_data_keys_never_pass_for_markers() -> None:
    shared: list = []
    assert codec.dumps({"$ref": "/x", "$$y": 1, "a": shared, "b": shared}) == \
        '{"$$$y":1,"$$ref":"/x","a":[],"b":{"$ref":"/a"}}'


def test_pointers_escape_slash_and_tilde() -> None:
    shared = [1]
    assert codec.dumps({"a/b~c": shared, "z": shared}) == '{"a/b~c":[1],"z":{"$ref":"/a~1b~0c"}}'


class Account:
    __slots__ = ("__pin", "_balance", "owner", "unset")

    def __init__(self, owner: str, balance: int) -> None:
        self.owner = owner
        self._balance = balance
        self.__pin = 1234

    @property
    def balance(self) -> int:  # computed: not part of the state, as deepcopy does not see it either
        return self._balance


class Savings(Account):
    __slots__ = "rate"

    def __init__(self, owner: str, balance: int) -> None:
        super().__init__(owner, balance)
        self.rate = 0.5


def test_slots_objects_show_every_set_slot_of_every_class() -> None:
    assert json.loads(codec.dumps(Savings("ana", 10))) == {
        "__type__": "Savings", "owner": "ana", "_balance": 10, "_Account__pin": 1234, "rate": 0.5}


@dataclasses.dataclass(slots=True)
class Edge:
    to: object
    weight: float


class Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    name: str
    tags: list[str] = []
    _cache: dict = pydantic.PrivateAttr(default_factory=dict)


def test_dataclasses_and_pydantic_models() -> None:
    node = {"id": "n1"}
    edges = [Edge(node, 1.0), Edge(node, 2.0)]
    assert codec.dumps(edges) == ('[{"__type__":"Edge","to":{"id":"n1"},"weight":1.0},'
                                  '{"__type__":"Edge","to":{"$ref":"/0/to"},"weight":2.0}]')
    model = Model(name="m", extra_field=3)
    assert json.loads(codec.dumps(model)) == {"__type__": "Model", "name": "m", "tags": [], "extra_field": 3}


def test_the_sandbox_side_never_imports_pydantic() -> None:
    script = "import sys, envscaler.runtime.sandbox.worker; print('pydantic' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "False"


class Level(enum.IntEnum):
    LOW = 1


class Kind(enum.Enum):
    A = "a"


def test_keys_of_every_kind() -> None:
    value = {Level.LOW: "int enum", None: "none", 2.5: "float", (1, "x"): "tuple", Kind.A: "enum",
             frozenset({2, 1}): "frozenset"}
    assert json.loads(codec.dumps(value)) == {
        "1": "int enum", "null": "none", "2.5": "float", '[1,"x"]': "tuple", "a": "enum", "[1,2]": "frozenset"}
    assert codec.dumps({True: "bool"}) == '{"true":"bool"}'
    # Keys that share a text keep both, in a fixed order, whatever the insertion order.
    assert codec.dumps({1: "int", "1": "str"}) == codec.dumps({"1": "str", 1: "int"}) == \
        '{"$map":[["1","str"],[1,"int"]]}'


def test_scalars_json_cannot_hold() -> None:
    big = 7 ** 10_000  # beyond Python's 4300-digit conversion limit
    assert json.loads(codec.dumps([big, -big])) == [{"$int": hex(big)}, {"$int": hex(-big)}]
    assert json.loads(codec.dumps({big: 1})) == {hex(big): 1}
    assert codec.dumps([float("nan"), float("-inf"), b"ok", b"\xff\x00", bytearray(b"x")]) == \
        '["NaN","-Infinity","ok",{"$bytes":"/wA="},"x"]'


def test_reprs_never_raise_and_hold_no_addresses() -> None:
    class Broken:
        __slots__ = ()

        def __repr__(self) -> str:
            raise RuntimeError("no")

    class Hostile:
        def __getattribute__(self, name: str) -> object:
            raise RuntimeError("touch me not")

    text = codec.dumps([Broken(), object(), len, Directory.mkdir, Hostile()])
    assert "0x" not in text
    assert json.loads(text)[:3] == [
        {"__type__": "Broken", "repr": "<Broken object; repr raised RuntimeError>"},
        {"__type__": "object", "repr": "<object object>"},
        {"__type__": "builtin_function_or_method", "repr": "<built-in function len>"}]


def test_lone_surrogates_stay_valid_utf8_and_round_trip() -> None:
    text = codec.dumps({"s": "a\ud800b", "é": 1})
    text.encode()  # would raise on a raw surrogate
    assert json.loads(text) == {"s": "a\ud800b", "é": 1}


def test_size_is_bounded_early_with_a_typed_error() -> None:
    blowup: object = "x" * 100
    for _ in range(40):  # a DAG of tuples: 2**40 leaves when expanded
        blowup = (blowup, blowup)
    started = time.monotonic()
    with pytest.raises(codec.EncodeError) as caught:
        codec.dumps(blowup, max_bytes=1 << 20)
    assert caught.value.reason == "size" and "1048576-byte cap" in str(caught.value)
    assert time.monotonic() - started < 1.0
    assert codec.dumps(["x" * 10], max_bytes=16) == '["xxxxxxxxxx"]'  # exactly what fits, fits
    with pytest.raises(codec.EncodeError):
        codec.dumps(["x" * 10], max_bytes=13)


class Holder:
    def __init__(self, i: int, shared: dict) -> None:
        self.i = i
        self.shared = shared


def test_sets_of_objects_over_wide_shared_data_stay_fast() -> None:
    wide = {f"k{j}": j for j in range(5000)}
    started = time.monotonic()
    text = codec.dumps({"holders": {Holder(i, wide) for i in range(2000)}}, max_bytes=64 << 20)
    assert time.monotonic() - started < 5.0  # sort keys look at a few items of each container, not all
    holders = json.loads(text)["holders"]
    assert [h["i"] for h in holders] == sorted(range(2000), key=lambda i: json.dumps(i))
    assert holders[1]["shared"] == {"$ref": "/holders/0/shared"}


def test_deep_chains_are_a_typed_error() -> None:
    head: dict = {}
    node = head
    for _ in range(1000):
        node["next"] = {}
        node = node["next"]
    with pytest.raises(codec.EncodeError) as caught:
        codec.dumps(head)
    assert caught.value.reason == "depth"


DETERMINISM = r'''
import enum, sys
sys.path.insert(0, sys.argv[1])
from envscaler.runtime.sandbox import codec

class Node:
    def __init__(self, name):
        self.name, self.links = name, set()
    def __repr__(self):
        return "Node"

class Color(enum.Enum):
    RED = 1

nodes = [Node(f"n{i}") for i in range(6)]
for i, n in enumerate(nodes):
    n.links |= {nodes[(i + 1) % 6], nodes[(i + 3) % 6]}
state = {"tags": {"b", "a", "zz", "q"}, "frozen": frozenset({("x", 1), ("y", 2)}), "nodes": set(nodes),
         "by_key": {("k", 2): 1, ("k", 1): 2, None: 3, 7: 4}, "mixed": {1, "1", 2.5, None, Color.RED},
         "order": nodes}
print(codec.sha256(codec.dumps(state)))
'''


def test_same_state_same_bytes_under_any_hash_seed() -> None:
    hashes = set()
    for seed in ("0", "1", "12345", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", DETERMINISM, str(ROOT)], capture_output=True, text=True,
                              env=env, check=True, cwd=ROOT)
        hashes.add(done.stdout.strip())
    assert len(hashes) == 1, hashes
