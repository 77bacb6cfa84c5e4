"""The drop-ins' pure parts (envscaler/integrations/envscaler_compat.py, the user simulator), no Docker: Python's
own TypeError texts against CPython itself, reply parsing against EnvScaler's recorded outcomes, the class read
from its syntax, EnvScaler's prompt found without running EnvScaler, and the user model over HTTP."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envscaler.integrations import envscaler_compat as compat
from envscaler.integrations import envscaler_gem
from envscaler.integrations.envscaler_gem import EnvScalerNonConvRLEnv, UserSimulator
from tests.integration import envscaler_gem_cases as cases
from tests.llm_server import ScriptedLLM

RECORDED = json.loads(cases.TRANSCRIPTS.read_text())

NAMES = ["a", "b", "c", "d", "e"]
KINDS = ["posonly", "normal", "kwonly"]


@st.composite
def signatures(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A method's source (parameters of every kind, with and without defaults, maybe **kwargs) and a call's
    keywords (known, unknown, positional-only, self)."""
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=5))
    kinds = sorted((draw(st.sampled_from(KINDS)) for _ in names), key=KINDS.index)
    params: dict[str, list[str]] = {k: [] for k in KINDS}
    seen_default = False
    for name, kind in zip(names, kinds, strict=True):
        default = draw(st.booleans()) if kind == "kwonly" or not seen_default else True
        seen_default = seen_default or (default and kind != "kwonly")
        params[kind].append(f"{name}=1" if default else name)
    parts = ["self", *params["posonly"]]
    text = ", ".join(parts) + (", /" if params["posonly"] else "")
    if params["normal"]:
        text += ", " + ", ".join(params["normal"])
    if params["kwonly"]:
        text += ", *, " + ", ".join(params["kwonly"])
    if draw(st.booleans()):
        text += ", **rest"
    keys = draw(st.lists(st.sampled_from([*NAMES, "zz", "yy", "self"]), unique=True, max_size=4))
    return f"class Env:\n    def tool({text}):\n        return 0\n", {k: 1 for k in keys}


@settings(max_examples=400, deadline=None)
@given(signatures())
def test_call_errors_are_cpythons_own(drawn: tuple[str, dict[str, Any]]) -> None:
    source, arguments = drawn
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # the test's own generated code
    try:
        namespace["Env"]().tool(**arguments)
        expected = None
    except TypeError as exc:
        expected = str(exc)
    model = compat.class_model(source, "Env")
    signature = model.methods["tool"]
    assert signature is not None
    assert compat.call_error(signature, arguments) == expected, source


def test_static_and_class_methods_and_non_string_keywords() -> None:
    source = ("class Env:\n    @staticmethod\n    def s(a, b=2):\n        pass\n"
              "    @classmethod\n    def k(cls, *, a):\n        pass\n")
    model = compat.class_model(source, "Env")
    assert compat.call_error(model.methods["s"], {}) == "Env.s() missing 1 required positional argument: 'a'"
    assert compat.call_error(model.methods["k"], {}) == "Env.k() missing 1 required keyword-only argument: 'a'"
    assert compat.call_error(model.methods["s"], {1: 2}) == "keywords must be strings"


def test_replies_parse_as_envscaler_parsed_them() -> None:
    """Every recorded step: a parse error where EnvScaler gave one, else the same parsed action in its info."""
    checked = 0
    for case in cases.cases():
        for record in (RECORDED["cases"][flavor][case.name] for flavor in RECORDED["cases"]):
            for action, step in zip(case.actions, record["steps"], strict=False):
                if "observation" not in step:
                    continue
                content = step["observation"].get("content")
                ok, struct = compat.parse_response(action) if isinstance(action, str) else (True, action)
                assert ok == (content != compat.PARSE_RESPONSE_FAILED), action
                if ok:
                    parsed_ok, parsed = compat.parse_action(struct)
                    assert parsed_ok == (content != compat.PARSE_ACTION_FAILED), action
                    if parsed_ok:
                        assert parsed == step["info"]["action"], action
                checked += 1
    assert checked > 300


def test_the_class_read_from_its_syntax() -> None:
    envs = json.loads(cases.ENVS.read_text())
    airline = compat.class_model(envs["env_5"]["env_class_code"], "AirlineReservations")
    assert airline.defined and not airline.open
    assert airline.constants["BAG_FEE"] == "float"
    state = {"flights": {}, "today": "2025-06-01", "count": 3, "big": {"$int": "0x1"}, "thing": {"__type__": "X"}}
    assert compat.resolve("BAG_FEE", airline, state) == ("uncallable", "float")
    assert compat.resolve("flights", airline, state) == ("uncallable", "dict")
    assert compat.resolve("big", airline, state) == ("uncallable", "int")
    assert compat.resolve("thing", airline, state)[0] == "unreachable"
    assert compat.resolve("_free_bags", airline, state)[0] == "unreachable"
    assert compat.resolve("__init__", airline, state)[0] == "unreachable"
    assert compat.resolve("__class__", airline, state)[0] == "unreachable"
    assert compat.resolve("no_such_tool", airline, state) == ("missing", "")
    tracker = compat.class_model(envs["env_6"]["env_class_code"], "IssueTracker")
    assert tracker.constants["TRANSITIONS"] == "dict"
    assert not compat.class_model("class A(:\n", "A").defined
    opened = compat.class_model("from x import Base\nclass A(Base):\n    pass\n", "A")
    assert opened.open and compat.resolve("anything", opened, {})[0] == "unreachable"


def test_envscalers_prompt_is_read_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "envscaler_env"
    (package / "utils").mkdir(parents=True)
    (package / "__init__.py").write_text("raise SystemExit('EnvScaler's package must not run')\n")
    (package / "utils" / "user_agent.py").write_text(
        "raise SystemExit('nor this module')\nuser_system_prompt = \\\n\"\"\"Play a user.\n{task}\"\"\"\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert envscaler_gem.envscaler_user_prompt() == "Play a user.\n{task}"
    assert "envscaler_env" not in sys.modules
    ast.parse((package / "utils" / "user_agent.py").read_text())


def test_without_envscaler_the_projects_prompt_plays_the_user() -> None:
    assert envscaler_gem.envscaler_user_prompt() is None
    env = envscaler_gem.EnvScalerConvRLEnv("train", "m", "openai", pool="unix:/nonexistent")
    assert env.user_agent.system_prompt.startswith("You are playing a user")
    env.close()


def test_the_user_simulator_over_http() -> None:
    replies = iter(["no format", "still none", "# Thought: ok\n# Reply:   Book it, please.  "])
    with ScriptedLLM(respond=lambda messages: {"content": next(replies)}) as llm:
        user = UserSimulator("Goal: {task}", "sim", "openai", "key", llm.base_url)
        assert user.get_init_reply("buy milk") == "Book it, please."
        assert len(llm.requests) == 3  # two replies out of the format were asked for again
        body = llm.requests[0]
        assert body["messages"] == [{"role": "system", "content": "Goal: buy milk"},
                                    {"role": "user", "content": "[Agent] Hi! How can I help you today?"}]
        assert (body["model"], body["temperature"]) == ("sim", 0.7)
        llm.respond = lambda messages: {"content": "Great.\n###STOP###"}
        assert user.user_step("Done.") == "###STOP###"
        assert [m["role"] for m in user.get_messages()] == ["system", "user", "assistant", "user", "assistant"]
        assert user.get_messages()[2]["content"] == "# Thought: ok\n# Reply:   Book it, please.  "


@pytest.mark.parametrize(("flavor", "message"), [("roll", "Unknown provider x"),
                                                 ("interact_with_env", "Invalid provider: x.")])
def test_an_unknown_provider(flavor: envscaler_gem.Flavor, message: str) -> None:
    user = UserSimulator("{task}", "m", "x", flavor=flavor)
    with pytest.raises(ValueError, match=message):
        user.get_init_reply("t")


def test_constructor_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(envscaler_gem.POOL_ENV, raising=False)
    with pytest.raises(ValueError, match="pool: give the pool's address"):
        EnvScalerNonConvRLEnv("train")
    with pytest.raises(ValueError, match="mode must be train"):
        EnvScalerNonConvRLEnv("eval", pool="unix:/nonexistent")
    with pytest.raises(ValueError, match="mode must be eval or train"):
        EnvScalerNonConvRLEnv("test", pool="unix:/nonexistent", flavor="interact_with_env")
    with pytest.raises(ValueError, match="flavor 'rol'"):
        EnvScalerNonConvRLEnv("train", pool="unix:/nonexistent", flavor="rol")  # type: ignore[arg-type]
    env = EnvScalerNonConvRLEnv("eval", pool="unix:/nonexistent", flavor="interact_with_env")
    assert len(env.task_items) == 24 and len(env.env_items) == 8
    with pytest.raises(envscaler_gem.EnvScalerGemError, match="before reset"):
        env.step("<tool_call>{\"name\": \"get_book\", \"arguments\": {}}</tool_call>")
    env.close()


def test_an_unreachable_pool_is_one_clear_error() -> None:
    with EnvScalerNonConvRLEnv("train", pool="unix:/nonexistent/pool.sock", timeout=2.0, acquire_wait=1.0) as env, \
            pytest.raises(envscaler_gem.PoolUnavailable, match="no lease for env_"):
        env.reset(seed=1)
