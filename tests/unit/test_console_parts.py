"""The console's pure parts: tool forms from JSON schemas (and back to validated arguments), state diffs, the
pool's metrics, trajectory filters, and the gate (token cookie, same-origin writes) as a real ASGI middleware."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from typing import Any

import pytest

from envscaler.console.cli import listen_address
from envscaler.console.diff import DiffRow, state_diff
from envscaler.console.forms import arguments_from_form, form_fields
from envscaler.console.guard import COOKIE, Guard
from envscaler.console.poolview import parse_metrics
from envscaler.console.rollouts import Filters
from envscaler.spec import load_corpus
from envscaler.spec.toolschema import served_tools

SCHEMA = {"type": "object", "properties": {
    "note": {"type": ["string", "null"], "default": None, "description": "a note"},
    "sku": {"type": "string", "description": "The SKU."},
    "delta": {"type": "integer"},
    "price": {"type": "number", "minimum": 0},
    "urgent": {"type": "boolean"},
    "priority": {"enum": ["low", "high"], "type": "string", "default": "low"},
    "status": {"anyOf": [{"enum": ["open", "done"], "type": "string"}, {"type": "null"}], "default": None},
    "labels": {"type": "array", "items": {"type": "string"}},
    "items": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}}}},
}, "required": ["sku", "delta"]}


def test_fields_follow_the_schema_required_first() -> None:
    fields = {f.name: f for f in form_fields(SCHEMA)}
    assert [f.name for f in form_fields(SCHEMA)][:2] == ["sku", "delta"]
    assert fields["sku"].widget == "text" and fields["sku"].required and fields["sku"].description == "The SKU."
    assert fields["note"].widget == "text" and fields["note"].nullable and fields["note"].type_label == "string or null"
    assert (fields["delta"].widget, fields["price"].widget, fields["urgent"].widget) == ("integer", "number", "boolean")
    assert fields["priority"].widget == "select" and fields["priority"].options == ("low", "high")
    assert fields["priority"].default == "low"
    assert fields["status"].widget == "select" and fields["status"].nullable
    assert fields["status"].options == ("open", "done")
    assert fields["labels"].widget == "lines" and fields["labels"].type_label == "array of string"
    assert fields["items"].widget == "json"


def test_no_parameters_no_fields() -> None:
    assert form_fields({"type": "object", "properties": {}}) == []
    assert form_fields(None) == []
    assert arguments_from_form({"type": "object", "properties": {}}, {}) == ({}, {})


def test_values_become_typed_arguments() -> None:
    arguments, errors = arguments_from_form(SCHEMA, {
        "sku": "SKU-1", "delta": "-8", "price": "17.0", "urgent": "true", "priority": "high", "status": "",
        "labels": "billing\n\n urgent \n", "items": '[{"id": "a"}]', "note": ""})
    assert errors == {}
    assert arguments == {"sku": "SKU-1", "delta": -8, "price": 17.0, "urgent": True, "priority": "high",
                         "labels": ["billing", "urgent"], "items": [{"id": "a"}]}
    assert isinstance(arguments["price"], float)
    assert arguments_from_form(SCHEMA, {"sku": "", "delta": "3", "price": "2"})[0]["price"] == 2  # whole: an int


def test_errors_name_the_field_and_the_problem() -> None:
    _, errors = arguments_from_form(SCHEMA, {"sku": "x", "delta": "eight", "price": "-1", "urgent": "maybe",
                                             "items": "[{"})
    assert errors["delta"] == "expected a whole number, got 'eight'"
    assert errors["urgent"] == "expected true or false, got 'maybe'"
    assert errors["items"].startswith("not valid JSON")
    assert "price" not in errors  # parsed; the schema's minimum is checked once everything parses
    _, errors = arguments_from_form(SCHEMA, {"sku": "x", "delta": "1", "price": "-1"})
    assert errors == {"price": "-1 is less than the minimum of 0"}
    _, errors = arguments_from_form(SCHEMA, {"sku": "x"})
    assert errors == {"delta": "required"}
    _, errors = arguments_from_form(SCHEMA, {"sku": "x", "delta": "1", "priority": "urgent"})
    assert "priority" in errors and "'urgent' is not one of" in errors["priority"]
    _, errors = arguments_from_form(SCHEMA, {"sku": "x", "delta": "1", "price": "nan"})
    assert errors == {"price": "expected a finite number, got 'nan'"}


def test_nested_values_are_left_to_the_tool() -> None:
    line = {"type": "object", "properties": {"id": {"type": "string"}, "price": {"type": "number"}},
            "required": ["price"]}
    schema = {"type": "object", "properties": {"lines": {"type": "array", "items": line}}}
    assert arguments_from_form(schema, {"lines": '[{"id": "a"}]'}) == ({"lines": [{"id": "a"}]}, {})
    assert arguments_from_form(schema, {"lines": '{"id": "a"}'})[1] == {"lines": "{'id': 'a'} is not of type 'array'"}


def test_a_broken_synthesized_schema_is_left_to_the_sandbox() -> None:
    broken = {"type": "object", "properties": {"n": {"type": "integer", "minimum": "zero"}}}
    assert arguments_from_form(broken, {"n": "3"}) == ({"n": 3}, {})


def test_every_bundled_tool_gets_a_form_that_accepts_its_solution_arguments() -> None:
    import json

    from tests.conftest import SOLUTIONS

    corpus = load_corpus()
    for path in sorted(SOLUTIONS.glob("*.jsonl")):
        env_id = path.name.split("__")[0]
        spec = corpus.envs[env_id]
        tools = {t["function"]["name"]: t["function"]["parameters"]
                 for t in served_tools(spec.tools, spec.env_class_code, spec.env_class_name)}
        for call in map(json.loads, path.read_text().splitlines()):
            schema = tools[call["name"]]
            widgets = {f.name: f.widget for f in form_fields(schema)}
            values = {k: "\n".join(v) if widgets[k] == "lines" else
                      json.dumps(v) if widgets[k] == "json" else str(v).lower() if isinstance(v, bool) else str(v)
                      for k, v in call["arguments"].items()}
            arguments, errors = arguments_from_form(schema, values)
            assert errors == {}, (path.name, call)
            assert arguments == call["arguments"], (path.name, call)


def test_state_diff_rows() -> None:
    before = {"stock": {"WH-LYON": {"SKU-1": 40}}, "orders": {"PO1": {"status": "open"}}, "log": ["a"], "gone": 1}
    after = {"stock": {"WH-LYON": {"SKU-1": 240}}, "orders": {"PO1": {"status": "received"}}, "log": ["a", "b"],
             "new": {"x": 1}}
    assert state_diff(before, after) == [
        DiffRow('stock["WH-LYON"]["SKU-1"]', "changed", "40", "240"),
        DiffRow("orders.PO1.status", "changed", '"open"', '"received"'),
        DiffRow("log[1]", "added", "", '"b"'),
        DiffRow("gone", "removed", "1", ""),
        DiffRow("new.x", "added", "", "1"),
    ]
    assert state_diff({"m": []}, {"m": [{"id": "MV1", "qty": -8}]}) == [
        DiffRow("m[0].id", "added", "", '"MV1"'), DiffRow("m[0].qty", "added", "", "-8")]
    assert state_diff({"u": {"a": {"n": 1}}}, {"u": {}}) == [DiffRow("u.a.n", "removed", "1", "")]
    assert state_diff({"u": {}}, {"u": {"a": {}}}) == [DiffRow("u.a", "added", "", "{}")]
    assert state_diff({}, {"tags": ["a", "b"], "none": []}) == [
        DiffRow("tags[0]", "added", "", '"a"'), DiffRow("tags[1]", "added", "", '"b"'),
        DiffRow("none", "added", "", "[]")]
    assert state_diff(before, before) == []
    assert state_diff({"a": [1, 2]}, {"a": [1]}) == [DiffRow("a[1]", "removed", "2", "")]
    assert state_diff({"a": 1}, {"a": "1"}) == [DiffRow("a", "changed", "1", '"1"')]
    assert state_diff(1, 2) == [DiffRow("(state)", "changed", "1", "2")]


def test_state_rows_list_every_leaf() -> None:
    from envscaler.console.diff import state_rows

    assert [(r.path, r.after) for r in state_rows({"a": {"b": 1}, "c": [{"d": None}]})] == [("a.b", "1"),
                                                                                          ("c[0].d", "null")]
    assert [(r.path, r.after) for r in state_rows([1])] == [("(state)", "[1]")]


METRICS = """\
# TYPE envscaler_pool_acquire_wait_seconds histogram
envscaler_pool_acquire_wait_seconds_bucket{le="0.001"} 2.0
envscaler_pool_acquire_wait_seconds_bucket{le="0.01"} 3.0
envscaler_pool_acquire_wait_seconds_bucket{le="+Inf"} 3.0
envscaler_pool_acquire_wait_seconds_count 3.0
envscaler_pool_acquire_wait_seconds_sum 0.01
# TYPE envscaler_pool_call_seconds histogram
envscaler_pool_call_seconds_bucket{le="0.001",method="CallTool"} 4.0
envscaler_pool_call_seconds_bucket{le="+Inf",method="CallTool"} 5.0
envscaler_pool_call_seconds_count{method="CallTool"} 5.0
envscaler_pool_call_seconds_bucket{le="0.001",method="Reset"} 1.0
envscaler_pool_call_seconds_bucket{le="+Inf",method="Reset"} 1.0
envscaler_pool_call_seconds_count{method="Reset"} 1.0
# TYPE envscaler_pool_replacements_total counter
envscaler_pool_replacements_total{reason="episode_broken"} 2.0
# TYPE envscaler_pool_errors_total counter
envscaler_pool_errors_total{kind="UNAVAILABLE"} 1.0
"""


def test_metrics_become_histograms_and_counts() -> None:
    m = parse_metrics(METRICS)
    assert m["acquire_wait"] == [{"le": "≤0.001s", "count": 2}, {"le": "≤0.01s", "count": 1},
                                 {"le": "+Inf", "count": 0}]
    assert m["call_latency"] == [{"le": "≤0.001s", "count": 5}, {"le": "+Inf", "count": 1}]
    assert m["calls_by_method"] == {"CallTool": 5, "Reset": 1}
    assert m["replacements"] == {"episode_broken": 2} and m["errors"] == {"UNAVAILABLE": 1}
    assert parse_metrics("")["acquire_wait"] == []


def test_trajectory_filters() -> None:
    records = [{"task_info": {"env_id": "env_1"}, "total_reward": 1.0},
               {"task_info": {"env_id": "env_1"}, "total_reward": 0.5, "error_kind": "max_steps"},
               {"task_info": {"env_id": "env_2"}, "total_reward": 0.0}]
    keep = lambda **q: [i for i, r in enumerate(records) if Filters.from_query(q)[0].keep(r)]  # noqa: E731
    assert keep() == [0, 1, 2]
    assert keep(env="env_1") == [0, 1]
    assert keep(min_reward="0.5") == [0, 1] and keep(max_reward="0.5") == [1, 2]
    assert keep(error_kind="max_steps") == [1] and keep(error_kind="none") == [0, 2]
    assert Filters.from_query({"min_reward": "high"})[1] == ["min_reward: expected a number, got 'high'"]


def test_listen_address() -> None:
    assert listen_address("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert listen_address("[::1]:9") == ("::1", 9)
    for bad in ("8080", "host:", "host:99999", "host:x"):
        with pytest.raises(ValueError, match="expected HOST:PORT"):
            listen_address(bad)


def _request(app: Any, method: str, path: str, query: str = "", headers: dict[str, str] | None = None
             ) -> tuple[int, dict[str, str]]:
    sent: list[dict[str, Any]] = []
    scope = {"type": "http", "method": method, "path": path, "query_string": query.encode(),
             "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_the_gate_token_cookie_and_origin() -> None:
    token = "t" * 20
    app = Guard(_ok, token)
    assert _request(app, "GET", "/envs")[0] == 401
    status, headers = _request(app, "GET", "/envs", f"q=bank&token={token}")
    assert status == 303 and headers["location"] == "/envs?q=bank"  # the token leaves the address
    assert headers["set-cookie"].startswith(f"{COOKIE}={token};") and "HttpOnly" in headers["set-cookie"]
    assert "SameSite=Strict" in headers["set-cookie"]
    assert _request(app, "GET", "/envs", "token=wrong")[0] == 401
    status, headers = _request(app, "GET", "/envs", headers={"cookie": f"a=b; {COOKIE}={token}"})
    assert status == 200 and "script-src 'self'" in headers["content-security-policy"]
    assert _request(app, "GET", "/envs", headers={"cookie": f"{COOKIE}=nope"})[0] == 401
    # writes from another site are refused, same-origin ones pass
    open_app = Guard(_ok, None)
    assert _request(open_app, "POST", "/play", headers={"origin": "http://evil.example", "host": "127.0.0.1:8080"}
                    )[0] == 403
    assert _request(open_app, "POST", "/play", headers={"origin": "http://127.0.0.1:8080",
                                                        "host": "127.0.0.1:8080"})[0] == 200


def _console(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "envscaler.cli", "console", "--pool", "unix:/nonexistent/pool.sock",
                           *args], capture_output=True, text=True, timeout=60, check=False)


def test_the_console_refuses_a_busy_port_and_an_open_address_without_token() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _console("--listen", f"127.0.0.1:{port}")
    assert done.returncode == 2
    assert done.stderr.strip() == (f"envscaler-runtime console: --listen: address 127.0.0.1:{port} is in use; "
                                   "choose another with --listen HOST:PORT")
    done = _console("--listen", "0.0.0.0:8080")
    assert done.returncode == 2 and "a non-loopback address needs --token" in done.stderr
    assert "Traceback" not in done.stderr
    done = _console("--token", "short")
    assert done.returncode == 2 and "--token: use at least 16 characters" in done.stderr
    done = _console("--trajectories", "/nonexistent/t.jsonl")
    assert done.returncode == 2 and "--trajectories /nonexistent/t.jsonl: no such file" in done.stderr


def test_what_an_environment_or_llm_wrote_is_escaped_in_the_pages() -> None:
    from envscaler.client.models import ToolResult
    from envscaler.console.app import templates
    from envscaler.console.catalog import highlighted
    from envscaler.console.play import Step

    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    step = Step(number=1, tool="t", arguments={"q": evil}, diff=[DiffRow(evil, "added", "", evil)],
                result=ToolResult(name="t", observation=evil, error_kind="EXECUTION_ERROR", error_message=evil))
    page = templates().get_template("step.html").render(step=step)
    assert "<script>" not in page and "<img" not in page and "&lt;script&gt;" in page
    assert "<script>" not in highlighted(f"x = '{evil}'") and "<img" not in highlighted(f"# {evil}")
