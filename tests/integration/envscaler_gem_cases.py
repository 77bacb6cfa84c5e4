"""Action sequences for EnvScaler's RL environment classes and the drop-ins (envscaler/integrations/envscaler_gem.py).

Shared by the test (tests/integration/test_envscaler_gem.py) and the recorder that ran EnvScaler's own classes on
them (tests/integration/envscaler_gem_record.py): the standard library only, so either interpreter imports it.
A case is a reset and its steps; `run_case` drives any class of EnvScaler's shape through one and returns what it
returned, normalised the same way for both (exception observations to their last line, reset infos to a hash).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "envscaler_gem"
ENVS = ROOT / "envscaler" / "examples" / "env_metadata.json"
BUNDLED_TASKS = ROOT / "envscaler" / "examples" / "scenarios.json"
CUSTOM_TASKS = DATA / "tasks.json"
TRANSCRIPTS = DATA / "transcripts.json"
EXCEPTION_PREFIX = "Error: <Exception>\n"
USER_MODEL = "user-sim"
# The user simulator's prompt in these cases: the recorder gave EnvScaler's classes the same one (their own
# prompt is their code, not ours to copy), so the user model sees identical requests from both.
USER_PROMPT = ("You are playing a user (test prompt). Your goal:\n{task}\n"
               "Answer as '# Thought: ...' then '# Reply: ...', and write ###STOP### when the goal is reached.")


@dataclass
class Case:
    name: str
    kind: str  # "nonconv" | "conv"
    tasks: str  # "bundled" | "custom"
    actions: list[Any]
    seed: int | None = None
    task_index: int | None = None
    options: dict[str, Any] = field(default_factory=dict)  # extra constructor arguments (provider, base_url)


def _call(name: str, arguments: Any) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def _openai(name: str, arguments: Any, content: str | None = None) -> dict[str, Any]:
    return {"content": content, "reasoning_content": None,
            "tool_calls": [{"id": "call_1", "type": "function",
                            "function": {"name": name, "arguments": json.dumps(arguments)}}]}


def solutions() -> list[tuple[int, str, list[dict[str, Any]]]]:
    tasks = json.loads(BUNDLED_TASKS.read_text())
    found = []
    for index, task in enumerate(tasks):
        path = ROOT / "envscaler" / "examples" / "solutions" / f"{task['env_id']}__{task['task_id']}.jsonl"
        found.append((index, task["env_id"], [json.loads(line) for line in path.read_text().splitlines()]))
    return found


MALFORMED = [
    "", "   ", "<think>pondering", "<think>nothing to say</think>",
    '<tool_call>{"name": "get_book", "arguments": {"book_id": "B001"}',
    '<tool_call>{"name": get_book}</tool_call>',
    '<tool_call>{"name": "get_book"}</tool_call>',
    '<tool_call>{"name": "get_book", "arguments": "{oops"}</tool_call>',
    '<tool_call>{"name": "get_book", "arguments": "[1, 2]"}</tool_call>',
    '<tool_call>{"name": "get_book", "arguments": "{\\"book_id\\": \\"B003\\"}"}</tool_call>',
    _call("no_such_tool", {}), _call("chat_with_user", {}), _call("chat_with_user", {"text": "hi"}),
    _call("", {}), _call("__no_such_dunder__", {}),
    None, 5, ["get_book"], {"content": "", "tool_calls": []}, {"tool_calls": [{"name": "get_book"}]},
    {"content": None, "tool_calls": [{"function": {"name": "get_book"}}]},
    _openai("get_book", {"book_id": "B001"}),
    {"content": None, "tool_calls": [{"function": {"name": "get_member", "arguments": {"member_id": "M002"}}}]},
    "<think>look it up</think>\nLet me check.\n" + _call("get_book", {"book_id": "B404"}) + "\n"
    + _call("get_member", {"member_id": "M001"}),
    "@think@ hmm @/think@ " + _call("search_books", {"query": "dune", "genre": None}),
    "Let me look.\n" + _call("search_books", {"query": "Le Guin"}) + "<|im_end|>",
    "<THINK>upper case</THINK>" + _call("find_member_by_name", {"name": "ana"}),
]

BAD_CALLS = [
    _call("search_books", {"query": "dune", "colour": "red"}),
    _call("search_books", {}),
    _call("checkout_book", {"member_id": "M001"}),
    _call("checkout_book", {"loan_days": 3, "zz": 1}),
    _call("search_books", {"query": 5}),
    _call("get_book", {"book_id": ["B001"]}),
    _call("get_book", {"book_id": "B001"}),
    _call("books", {}),
    _call("today", {"x": 1}),
    "Finished. Task Completed",
    _call("get_member", {"member_id": "M001"}),
    "Once more: Task Completed",
]


def cases() -> list[Case]:
    found = [Case(f"solve-{i}-{env}", "nonconv", "bundled", task_index=i,
                  actions=[(_openai(c["name"], c["arguments"]) if n % 2 else
                            f"<think>step {n}</think>\n" + _call(c["name"], c["arguments"]))
                           for n, c in enumerate(calls)] + ["All done. Task Completed"])
             for i, env, calls in solutions()]
    found += [
        Case("malformed", "nonconv", "bundled", task_index=9, actions=[*MALFORMED, "I am finished here."]),
        Case("bad-calls", "nonconv", "bundled", task_index=9, actions=BAD_CALLS),
        Case("class-constants", "nonconv", "bundled", task_index=0,
             actions=[_call("BAG_FEE", {}), _call("search_flights", {"origin": "LIS"}),
                      _call("flights", {}), "Task Completed"]),
        Case("class-dict-constant", "nonconv", "bundled", task_index=18,
             actions=[_call("TRANSITIONS", {"a": 1}), "Task Completed"]),
        Case("name-types", "nonconv", "bundled", task_index=9,
             actions=[{"content": None, "tool_calls": [{"function": {"name": None, "arguments": {}}}]},
                      {"content": None, "tool_calls": [{"function": {"arguments": {}}}]},
                      {"content": None, "tool_calls": [{"function": {"name": 7, "arguments": {}}}]},
                      {"content": None, "tool_calls": [{"function": {"name": 0, "arguments": {}}}]},
                      _call("chat_with_user", {"content": 5}),
                      _call("chat_with_user", {"content": ["Task Completed"]})]),
        Case("no-step-cap", "nonconv", "bundled", task_index=11,
             actions=[_call("list_member_loans", {"member_id": "M001"})] * 45 + [_call("nope", {})] * 5
             + ["Task Completed"]),
        Case("after-the-end", "nonconv", "bundled", task_index=11,
             actions=["Task Completed", _call("renew_loan", {"loan_id": "L002"}),
                      _call("return_book", {"loan_id": "L002"}), "Task Completed"]),
        Case("task-index-negative", "nonconv", "bundled", task_index=-1, actions=["Task Completed"]),
        Case("task-index-past-the-end", "nonconv", "bundled", task_index=24, actions=[]),
        Case("checks-mixed", "nonconv", "custom", task_index=0,
             actions=[_call("checkout_book", {"member_id": "M001", "book_id": "B003", "loan_days": 21}),
                      "Task Completed"]),
        Case("checklist-empty", "nonconv", "custom", task_index=1, actions=[_call("search_flights", {}),
                                                                            "Task Completed"]),
        Case("checklist-absent", "nonconv", "custom", task_index=2, actions=["Task Completed"]),
        Case("env-unknown", "nonconv", "custom", task_index=3, actions=[]),
        Case("class-unknown", "nonconv", "custom", task_index=4, actions=[]),
    ]
    found += [Case(f"seeded-{seed}", "nonconv", "bundled", seed=seed, actions=["Task Completed"])
              for seed in (0, 1, 7, 2026)]
    found += [Case("seeded-index", "nonconv", "bundled", seed=3, task_index=5, actions=["Task Completed"])]
    # the conversational class: the user model answers from the conversation (respond below)
    (index, _, calls), = [s for s in solutions() if s[0] == 9]
    found += [
        Case("conv-solve", "conv", "bundled", task_index=index,
             actions=["Which book would you like?", *(_call(c["name"], c["arguments"]) for c in calls),
                      _openai("chat_with_user", {"content": "Anything else?"}), "It is done, STOP"]),
        Case("conv-unparsable-user", "conv", "bundled", task_index=12,
             actions=["GARBLE this", _call("search_products", {"query": "kettle"}), "STOP now"]),
        Case("conv-user-says-nothing", "conv", "bundled", task_index=12, actions=["NONE please"]),
        Case("conv-user-fails-once", "conv", "bundled", task_index=13, actions=["FAIL_ONCE then", "STOP"]),
        Case("conv-errors", "conv", "bundled", task_index=9,
             actions=[_call("chat_with_user", {}), "", _call("nope", {}), _call("search_books", {"q": 1}),
                      _call("get_book", {"book_id": "B001"}), "Task Completed (not the end here)", "STOP"]),
        Case("conv-checklist-empty", "conv", "custom", task_index=1, actions=["STOP"]),
        Case("conv-seeded", "conv", "bundled", seed=11, actions=["STOP"]),
        Case("conv-provider-unknown", "conv", "bundled", task_index=0, actions=[],
             options={"provider": "anthropic"}),
    ]
    return found


def responder() -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """The user model of the cases: a pure function of the conversation (one failure per FAIL_ONCE turn)."""
    failed: set[int] = set()

    def respond(messages: list[dict[str, Any]]) -> dict[str, Any]:
        last = str(messages[-1].get("content"))
        turn = sum(m["role"] == "assistant" for m in messages)
        if "STOP" in last:
            return {"content": "# Thought: all set\n# Reply: Thanks!\n###STOP###"}
        if "GARBLE" in last:
            return {"content": "no format at all"}
        if "NONE" in last:
            return {"content": None}
        if "FAIL_ONCE" in last and turn not in failed:
            failed.add(turn)
            return {"status": 500}
        if turn == 0:
            task = messages[0]["content"].split("\n")[1]
            return {"content": f"# Thought: start\n# Reply:  Hello! {task[:60]}  "}
        return {"content": f"# Thought: turn {turn}\n# Reply: You said: {last[8:48]}"}

    return respond


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _observation(observation: Any) -> Any:
    if isinstance(observation, dict) and isinstance(observation.get("content"), str) \
            and observation["content"].startswith(EXCEPTION_PREFIX):
        lines = observation["content"].rstrip("\n").splitlines()
        return {"type": observation.get("type"), "exception": lines[-1]}
    return observation


def _raised(exc: BaseException) -> dict[str, Any]:
    return {"raises": type(exc).__name__, "message": str(exc)}


def run_case(make: Callable[..., Any], case: Case, tasks_path: Path) -> dict[str, Any]:
    """Construct the class with `make(kind, tasks_path, options)`, reset, step; what came back, normalised."""
    env = make(case.kind, tasks_path, case.options)
    record: dict[str, Any] = {"steps": []}
    try:
        try:
            observation, info = env.reset(seed=case.seed, task_index=case.task_index)
        except Exception as exc:
            record["reset"] = _raised(exc)
            return record
        record["reset"] = {"observation": observation, "info_keys": sorted(info), "info_sha256": _digest(info),
                           "env_name": info.get("env_name"), "task_id": info["task"]["task_id"]}
        for action in case.actions:
            try:
                observation, reward, terminated, truncated, info = env.step(action)
            except Exception as exc:
                record["steps"].append(_raised(exc))
                continue
            record["steps"].append({"observation": _observation(observation), "reward": reward,
                                    "terminated": terminated, "truncated": truncated, "info": info})
        return record
    finally:
        close = getattr(env, "close", None)
        if callable(close):
            close()


def llm_environment(base_url: str) -> dict[str, str]:
    """What both classes read for the user model when no api_key/base_url is passed (EnvScaler's variables)."""
    return {"USER_OPENAI_API_KEY": "test-key", "USER_OPENAI_BASE_URL": base_url}


def set_llm_environment(base_url: str) -> None:
    os.environ.update(llm_environment(base_url))
