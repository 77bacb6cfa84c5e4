"""Synthesis parts that need no sandbox: the LLM layer (real openai client against a
scripted server), parsing and repair, caching, de-duplication, code assembly."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from envscaler.spec.toolschema import SchemaError
from envscaler.synth.llm import LLM, LLMFailure, extract_json
from envscaler.synth.skel import (
    Inferred,
    Judge,
    SkelSettings,
    Topic,
    assemble,
    contract_problem,
    dedupe_by_embeddings,
    method_problem,
    read_tasks,
)
from tests.llm_server import ScriptedLLM


def make_llm(server: ScriptedLLM, tmp_path: Path, max_repairs: int = 2) -> LLM:
    client = AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    return LLM(client=client, model="scripted", cache_dir=tmp_path / "cache", max_repairs=max_repairs)


def test_extract_json_from_chatty_replies() -> None:
    assert extract_json('{"a": 1}') == {"a": 1}
    assert extract_json('Here you go:\n```json\n{"a": 2}\n```') == {"a": 2}
    assert extract_json('Sure. {"a": 3} Hope that helps.') == {"a": 3}
    with pytest.raises(ValueError):
        extract_json("no json here")


def test_malformed_replies_are_repaired_then_cached(tmp_path: Path) -> None:
    replies = iter(['not json at all', '{"stateful": "maybe"}', '{"stateful": true, "reason": "books"}'])
    with ScriptedLLM(respond=lambda messages: {"content": next(replies)}) as server:
        llm = make_llm(server, tmp_path)
        judge = asyncio.run(llm.structured(Judge, "judge_stateful", task="Book a room"))
        assert judge.stateful is True and llm.usage.repairs == 2 and llm.usage.requests == 3
        repair = server.requests[1]["messages"][-1]["content"]
        assert "not usable" in repair and "no JSON object" in repair
        again = make_llm(server, tmp_path)
        assert asyncio.run(again.structured(Judge, "judge_stateful", task="Book a room")).stateful
        assert again.usage.requests == 0 and again.usage.cached == 3
        assert len(server.requests) == 3


def test_repairs_are_capped(tmp_path: Path) -> None:
    with ScriptedLLM(respond=lambda messages: {"content": "still not json"}) as server:
        llm = make_llm(server, tmp_path, max_repairs=1)
        with pytest.raises(LLMFailure, match="no valid answer after 2 tries"):
            asyncio.run(llm.structured(Judge, "judge_stateful", task="x"))
        assert len(server.requests) == 2


def test_endpoint_errors_are_failures_not_crashes(tmp_path: Path) -> None:
    with ScriptedLLM({"": [{"status": 500, "times": 99}]}) as server, \
            pytest.raises(LLMFailure, match="the model endpoint failed"):
        asyncio.run(make_llm(server, tmp_path).complete([{"role": "user", "content": "hi"}]))


def test_near_duplicates_by_embeddings(tmp_path: Path) -> None:
    def topic(summary: str, intro: str) -> Topic:
        return Topic(task=summary, kept=True, inferred=Inferred(environment_summary=summary,
                                                                environment_introduction=intro,
                                                                usefulness=8, modelability=8).model_dump())

    topics = [topic("Hotel booking", "rooms guests bookings and stays at a hotel"),
              topic("Hotel reservations", "rooms guests bookings and stays at a hotel"),
              topic("Library", "books members loans and holds at a library branch")]
    with ScriptedLLM() as server:
        asyncio.run(dedupe_by_embeddings(make_llm(server, tmp_path), topics,
                                         SkelSettings(embed_model="embed", duplicate_similarity=0.9)))
    assert [t.kept for t in topics] == [True, False, True]
    assert topics[1].reason == "near-duplicate of 'Hotel booking'"


def test_method_checks_and_assembly() -> None:
    assert method_problem("def add(self, x: int) -> dict:\n    return {}", "add") is None
    assert "does not parse" in method_problem("def add(self:\n", "add")
    assert "exactly one method named add" in method_problem("def other(self):\n    pass", "add")
    assert "first parameter must be self" in method_problem("def add(x):\n    pass", "add")
    module = assemble("class Env:\n    def __init__(self):\n        self.items = {}\n", "Env",
                      {"add": "def add(self, key: str) -> dict:\n    self.items[key] = 1\n"
                              "    return {'success': True, 'message': 'ok'}"})
    assert "    def add(self, key: str)" in module
    with pytest.raises(SchemaError):
        assemble("class Other:\n    pass\n", "Env", {})


def test_return_contract() -> None:
    assert contract_problem({"success": True, "data": []}) is None
    assert contract_problem({"success": False, "error": "no"}) is None
    assert "neither" in contract_problem({"success": True})
    assert "no \"error\"" in contract_problem({"success": False})
    assert "not {" in contract_problem(["success"])


def test_reading_task_datasets(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(["Book a room", {"query": "Cancel order 5"}, {"other": 1}, " "]))
    (tmp_path / "b.jsonl").write_text('{"question": "Move my flight"}\n\n{"task": "Move my flight"}\n')
    assert read_tasks(tmp_path / "a.json") == ["Book a room", "Cancel order 5"]
    assert read_tasks(tmp_path / "b.jsonl") == ["Move my flight"]
