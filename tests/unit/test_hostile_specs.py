"""Host-side tools survive hostile specs: a pathological annotation is a SchemaError for its own record,
naming the tool and parameter, in bounded time; `validate` goes on with the other records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envscaler.spec.loader import SpecError, bundled_envs_path, bundled_scenarios_path, read_records
from envscaler.spec.toolschema import MAX_ANNOTATION_DEPTH, SchemaError, derive_tools
from envscaler.spec.validate import validate_files

SECONDS = 10.0  # any one derivation, however hostile, ends well within this (even on a loaded machine)


def tool_class(annotation: str, prelude: str = "") -> str:
    return f"{prelude}\nclass E:\n    def tool(self, x: {annotation}) -> dict:\n        return {{}}\n"


def alias_chain(n: int) -> str:
    return "A0 = int\n" + "".join(f"A{i} = A{i - 1}\n" for i in range(1, n))


HOSTILE = {
    "alias chain 3000": tool_class("A2999", alias_chain(3000)),
    "exponential aliases": tool_class("A24", "A0 = int\n" + "".join(
        f"A{i} = Union[A{i - 1}, List[A{i - 1}]]\n" for i in range(1, 25))),
    "Literal of 20000": tool_class("Literal[" + ",".join(map(str, range(20_000))) + "]"),
    "TypedDict chain 3000": "class T0(TypedDict):\n    x: int\n" + "".join(
        f"class T{i}(T{i - 1}):\n    x{i}: int\n" for i in range(1, 3000)) + tool_class("T2999"),
    "string annotation chain": tool_class("A200", "A0 = int\n" + "".join(
        f"A{i} = List['A{i - 1}']\n" for i in range(1, 201))),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_pathological_annotation_is_a_schema_error_naming_tool_and_parameter(name: str) -> None:
    started = time.perf_counter()
    with pytest.raises(SchemaError) as caught:
        derive_tools(HOSTILE[name], "E")
    assert time.perf_counter() - started < SECONDS
    assert "tool 'tool', parameter 'x'" in str(caught.value)


def test_deep_nesting_reports_the_limit() -> None:
    with pytest.raises(SchemaError, match=f"nests deeper than {MAX_ANNOTATION_DEPTH} levels"):
        derive_tools(HOSTILE["alias chain 3000"], "E")
    with pytest.raises(SchemaError, match="more than 5000 type nodes"):
        derive_tools(HOSTILE["Literal of 20000"], "E")


@pytest.mark.parametrize(("annotation", "prelude"), [
    ("A", "A = List[B]\nB = Dict[str, A]\n"),  # recursive aliases: resolved to an open schema
    ("(lambda: 1)() + [1, 2][0] if True else {1: 2}", ""),  # an expression that is not a type
    ("'" + "List[" * 2000 + "int" + "]" * 2000 + "'", ""),  # a string that cannot be parsed
    (" | ".join(f"Literal[{i}]" for i in range(200)), ""),  # a long but flat union is fine
    ("A40", alias_chain(41)),  # a chain within the limit still resolves to int
])
def test_odd_but_bounded_annotations_still_give_a_schema(annotation: str, prelude: str) -> None:
    (tool,) = derive_tools(tool_class(annotation, prelude), "E")
    json.dumps(tool)
    assert "x" in tool["function"]["parameters"]["properties"]


def test_alias_chain_within_the_limit_resolves() -> None:
    (tool,) = derive_tools(tool_class("A40", alias_chain(41)), "E")
    assert tool["function"]["parameters"]["properties"]["x"] == {"type": "integer"}


def test_inheritance_chains_and_cycles_do_not_crash() -> None:
    chain = "class C0:\n    pass\n" + "".join(f"class C{i}(C{i - 1}):\n    def m{i}(self): pass\n"
                                              for i in range(1, 3000)) + "class E(C2999):\n    pass\n"
    with pytest.raises(SchemaError, match="inherits through more than"):
        derive_tools(chain, "E")
    cycle = "class A(B):\n    def a(self): pass\nclass B(A):\n    def b(self): pass\nclass E(A):\n    pass\n"
    assert sorted(t["function"]["name"] for t in derive_tools(cycle, "E")) == ["a", "b"]


def test_many_tools_share_one_budget() -> None:
    fields = "".join(f"    f{i}: int\n" for i in range(4000))
    code = f"class T(TypedDict):\n{fields}class E:\n" + "".join(
        f"    def t{j}(self, a: T, b: T): pass\n" for j in range(500))
    started = time.perf_counter()
    with pytest.raises(SchemaError, match="the class's annotations have more than"):
        derive_tools(code, "E")
    assert time.perf_counter() - started < SECONDS


# Any annotation built from names, aliases, subscripts, unions, Literals and strings: a schema or a SchemaError.
NAMES = st.sampled_from(["int", "str", "List", "Dict", "Optional", "Union", "Literal", "Tuple", "A0", "A1", "A2",
                         "T", "Any", "None", "x.y", "Annotated"])


# Constants that Python parses but JSON cannot carry (or carries only as a non-standard extension).
ODD_CONSTANTS = ["...", "b'x'", "1j", "1e400", "-1e400", "9" * 5000, "'\\ud800'"]


def annotations(depth: int = 0) -> st.SearchStrategy[str]:
    leaf = st.one_of(NAMES, st.integers(-5, 5).map(str), st.sampled_from(ODD_CONSTANTS), st.just("'A1'"))
    if depth > 6:
        return leaf
    inner = st.deferred(lambda: annotations(depth + 1))
    return st.one_of(
        leaf,
        st.tuples(NAMES, st.lists(inner, min_size=1, max_size=4)).map(lambda p: f"{p[0]}[{', '.join(p[1])}]"),
        st.lists(inner, min_size=2, max_size=4).map(" | ".join),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(annotation=annotations(), a0=annotations(), a1=annotations(), a2=annotations(),
       chain=st.integers(0, 400), default=st.sampled_from(["", "None", "(1, 'a')", "[]", *ODD_CONSTANTS,
                                                            "{1, 2}", "{'k': b''}"]))
def test_any_annotation_gives_a_schema_or_a_schema_error(annotation: str, a0: str, a1: str, a2: str,
                                                           chain: int, default: str) -> None:
    prelude = (f"A0 = {a0}\nA1 = {a1}\nA2 = {a2}\nclass T(TypedDict):\n    k: A1\n"
               + "".join(f"B{i} = Union[B{i - 1}, A{i % 3}]\n" if i else "B0 = A2\n" for i in range(chain)))
    code = tool_class(f"Union[{annotation}, B{chain - 1}]" if chain else annotation, prelude)
    if default:
        code = code.replace("]) -> dict:", f"] = {default}) -> dict:").replace(
            f"x: {annotation}) -> dict:", f"x: {annotation} = {default}) -> dict:")
    started = time.perf_counter()
    try:
        tools = derive_tools(code, "E")
    except SchemaError as exc:
        assert "tool 'tool', parameter 'x'" in str(exc) or "does not parse" in str(exc)
    else:
        # What is served must be strict JSON, UTF-8 encodable: it goes into the image and over the wire.
        json.dumps(tools, allow_nan=False, ensure_ascii=False).encode()
    assert time.perf_counter() - started < SECONDS


def hostile_corpus(tmp_path: Path) -> Path:
    """The bundled environments plus one whose tool takes a 3,000-long alias chain."""
    envs = json.loads(bundled_envs_path().read_text())
    code = alias_chain(3000) + envs["env_1"]["env_class_code"].replace("def search_books(self, query: str",
                                                                         "def search_books(self, query: A2999", 1)
    assert code != alias_chain(3000) + envs["env_1"]["env_class_code"]
    envs["env_hostile"] = dict(envs["env_1"], env_id="env_hostile", env_class_code=code)
    path = tmp_path / "envs.json"
    path.write_text(json.dumps(envs))
    return path


def test_validate_reports_the_hostile_record_alone(tmp_path: Path) -> None:
    report = validate_files(hostile_corpus(tmp_path), bundled_scenarios_path())
    statuses = {r.record_id: r.status for r in report.records if r.kind == "env"}
    assert statuses.pop("env_hostile") == "error"
    assert set(statuses.values()) <= {"ok", "warning"} and len(statuses) == 8
    (hostile,) = [r for r in report.records if r.record_id == "env_hostile"]
    assert "tool 'search_books', parameter 'query'" in hostile.problems[0].message
    assert hostile.problems[0].field == "env_class_code"


def test_validate_cli_on_a_corpus_with_one_hostile_record(tmp_path: Path) -> None:
    envs = hostile_corpus(tmp_path)
    done = subprocess.run([sys.executable, "-m", "envscaler.cli", "validate", "--envs", str(envs), "--scenarios",
                           str(bundled_scenarios_path()), "--json"], capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    records = {r["id"]: r for r in json.loads(done.stdout) if r["kind"] == "env"}
    assert records["env_hostile"]["status"] == "error"
    assert "parameter 'query'" in records["env_hostile"]["problems"][0]["message"]
    assert all(r["status"] != "error" for env_id, r in records.items() if env_id != "env_hostile")


def test_json_nested_too_deeply_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SpecError, match=r"deep\.json: JSON nests too deeply"):
        read_records(path)
    lines = tmp_path / "deep.jsonl"
    lines.write_text('{"env_id": "a"}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(SpecError, match=r"deep\.jsonl:2: JSON nests too deeply"):
        read_records(lines)


def hostile_scenarios(tmp_path: Path) -> Path:
    scenarios = [dict(s, env_id="env_hostile") for s in json.loads(bundled_scenarios_path().read_text())
                 if s["env_id"] == "env_1"]
    path = tmp_path / "scenarios.json"
    path.write_text(json.dumps(scenarios))
    return path


@pytest.mark.parametrize("command", [
    ["schema", "--env", "env_hostile"],
    ["serve", "--env", "env_hostile", "--listen", "tcp:127.0.0.1:0"],
    ["replay", "--env", "env_hostile", "--scenario", "0115-091204", "--sandbox", "process", "--calls",
     "envscaler/examples/solutions/env_1__0115-091204.jsonl"],
])
def test_single_env_commands_refuse_a_hostile_env_in_one_line(command: list[str], tmp_path: Path) -> None:
    envs = json.loads(hostile_corpus(tmp_path).read_text())
    envs["env_hostile"]["tools"] = None  # derived from the code, as for EnvScaler records without tools
    (tmp_path / "envs.json").write_text(json.dumps(envs))
    done = subprocess.run([sys.executable, "-m", "envscaler.cli", *command, "--envs", str(tmp_path / "envs.json"),
                           "--scenarios", str(hostile_scenarios(tmp_path))], capture_output=True, text=True,
                          timeout=60, check=False, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 2
    assert done.stderr.strip() == (f"envscaler-runtime {command[0]}: env_hostile: tool 'search_books', parameter "
                                   f"'query': annotation nests deeper than {MAX_ANNOTATION_DEPTH} levels (aliases "
                                   "and TypedDict bases included)"), done.stderr


def test_values_json_cannot_carry_are_left_out_of_schemas() -> None:
    code = ("class E:\n    def t(self, a: Literal[..., b'x', 1j, 1e400, 'ok', 2, None, '\\ud800'], b: bytes = b'x', "
            "c: set = {1, 2}, d: float = 1e400, e: tuple = (1, 'a'), f: str = '\\ud800') -> dict:\n        return {}\n")
    (tool,) = derive_tools(code, "E")
    properties = tool["function"]["parameters"]["properties"]
    assert properties["a"]["enum"] == ["ok", 2, None]
    assert [name for name, schema in properties.items() if "default" in schema] == ["e"]
    json.dumps(tool, allow_nan=False, ensure_ascii=False).encode()


def test_a_lone_surrogate_in_a_record_is_reported_for_that_record(tmp_path: Path) -> None:
    envs = json.loads(bundled_envs_path().read_text())
    envs["env_bad"] = dict(envs["env_1"], env_id="env_bad", environment_summary="x\ud800")
    scenarios = json.loads(bundled_scenarios_path().read_text())
    scenarios[0]["task"] += "\udfff"
    (tmp_path / "envs.json").write_text(json.dumps(envs))  # ensure_ascii: the escape survives as JSON text
    (tmp_path / "scenarios.json").write_text(json.dumps(scenarios))
    report = validate_files(tmp_path / "envs.json", tmp_path / "scenarios.json")
    errors = {r.record_id: r.problems[0].message for r in report.records if r.status == "error"}
    assert set(errors) == {"env_bad", f"{scenarios[0]['env_id']}/{scenarios[0]['task_id']}"}
    assert all("not valid Unicode" in message for message in errors.values())
