"""verifiers' own evaluate loop over PoolToolEnv: a local OpenAI-compatible server plays scripted tool calls (the
real `openai` client, real HTTP), the tools run in a real pool's containers, and the rubric's rewards are the
scenarios' sandboxed checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import docker
import pytest
import verifiers as vf
from datasets import Dataset
from openai import AsyncOpenAI

from envscaler.integrations.common import IntegrationError
from envscaler.integrations.verifiers import PoolToolEnv, load_environment
from envscaler.pool.runner import LocalPool, PoolOptions
from envscaler.spec import load_corpus
from tests.conftest import SOLUTIONS
from tests.llm_server import ScriptedLLM

pytestmark = pytest.mark.integration
ENV = "env_4"
SCENARIOS = load_corpus().scenarios_of(ENV)
SOLVED, HALF, REFUSED, SILENT = "0502-091533", "0502-113020", "0502-142201", "0502-113020"


def solution(scenario: str) -> list[tuple[str, str]]:
    path = SOLUTIONS / f"{ENV}__{scenario}.jsonl"
    return [(c["name"], json.dumps(c["arguments"])) for c in map(json.loads, path.read_text().splitlines())]


def key(scenario: str) -> str:
    return SCENARIOS[scenario].task[:60]


SCRIPTS = {
    # every call in one turn, then the final answer
    key(SOLVED): [{"tool_calls": solution(SOLVED)}, {"content": "Done. Task Completed"}],
    # one call a turn, and only the first half of the task
    key(HALF): [{"tool_calls": [("freeze_account", '{"account_id": "AC-200", "reason": "card stolen"}')]},
                {"content": "Frozen. Task Completed"}],
    # calls that fail in the sandbox (bad JSON, an unknown tool, a type the code chokes on), then the solution
    key(REFUSED): [{"tool_calls": [("deposit", "{not json"), ("teleport", "{}"),
                                   ("deposit", '{"account_id": "AC-300", "amount": "lots", "memo": "x"}')]},
                   {"tool_calls": solution(REFUSED)}, {"content": "Task Completed"}],
}


@pytest.fixture(scope="module")
def bank_pool(engine: docker.DockerClient, runtime_image: str) -> Iterator[LocalPool]:
    with LocalPool(options=PoolOptions(size=3, only=[ENV], acquire_wait=300)) as local:
        yield local


def replayed(local: LocalPool, scenario: str, completion: list[Any]) -> tuple[float, int, int]:
    """The rollout's tool calls again in a fresh lease, scored by the pool's Evaluate."""
    with local.pool.session(ENV, scenario) as session:
        for message in completion:
            for call in (message.get("tool_calls") or []) if message["role"] == "assistant" else []:
                call = json.loads(call) if isinstance(call, str) else call  # verifiers' outputs keep them as JSON
                session.call(call["name"], call["arguments"])
        evaluation = session.evaluate()
    return evaluation.reward, evaluation.passed, evaluation.total


def as_dict(message: Any) -> dict[str, Any]:
    return message if isinstance(message, dict) else message.model_dump()


def test_evaluate_scores_with_the_sandboxed_checks(bank_pool: LocalPool) -> None:
    env = PoolToolEnv(bank_pool.address, env_ids=[ENV], scenarios=[SOLVED, HALF, REFUSED], max_turns=6)
    assert [json.loads(r)["scenario_id"] for r in env.get_eval_dataset()["info"]] == [SOLVED, HALF, REFUSED]
    with ScriptedLLM(SCRIPTS) as llm:
        client = vf.clients.OpenAIChatCompletionsClient(AsyncOpenAI(base_url=llm.base_url, api_key="test"))
        results = env.evaluate_sync(client, model="scripted", max_concurrent=3)
        # the model was shown the environment's own tool schemas, as the sandbox serves them
        with bank_pool.pool.session(ENV) as session:
            served = [t["function"] for t in session.tools]
        assert [t["function"] for t in llm.requests[0]["tools"]] == served
    outputs = {json.loads(o["info"])["scenario_id"] if isinstance(o["info"], str) else o["info"]["scenario_id"]: o
               for o in results["outputs"]}
    assert set(outputs) == {SOLVED, HALF, REFUSED}
    rewards = {s: o["reward"] for s, o in outputs.items()}
    assert rewards == {SOLVED: 1.0, HALF: 0.5, REFUSED: 1.0}
    for scenario, output in outputs.items():
        completion = [as_dict(m) for m in output["completion"]]
        reward, passed, total = replayed(bank_pool, scenario, completion)
        assert output["reward"] == reward
        assert output["metrics"]["checks_passed"] == passed and output["metrics"]["checks_total"] == total
        assert output["stop_condition"] == "answered_without_tools" and not output.get("error")
    refused = [m["content"] for m in map(as_dict, outputs[REFUSED]["completion"]) if m["role"] == "tool"][:3]
    assert "not valid JSON" in refused[0] and "unknown tool 'teleport'" in refused[1], refused
    assert "deposit' raised TypeError" in refused[2], refused  # the environment's own code failed, in the sandbox
    assert bank_pool.pool.stats().envs[0].leased == 0  # every rollout gave its lease back


def test_a_silent_model_scores_zero_and_bad_names_are_refused(bank_pool: LocalPool) -> None:
    env = load_environment(bank_pool.address, env_ids=[ENV], scenarios=[SILENT])
    with ScriptedLLM({key(SILENT): [{"content": "Task Completed"}]}) as llm:
        client = vf.clients.OpenAIChatCompletionsClient(AsyncOpenAI(base_url=llm.base_url, api_key="test"))
        (output,) = env.evaluate_sync(client, model="scripted")["outputs"]
    assert output["reward"] == 0.0 and output["metrics"]["checks_total"] == 2
    with pytest.raises(IntegrationError, match="serves no 'env_nope'"):
        PoolToolEnv(bank_pool.address, env_ids=["env_nope"])
    with pytest.raises(IntegrationError, match="env_4: no scenario 'nope'"):
        PoolToolEnv(bank_pool.address, env_ids=[ENV], scenarios=["nope"])
    rows = Dataset.from_list([{"prompt": [{"role": "user", "content": "hi"}], "info": json.dumps({"env_id": ENV})}])
    with pytest.raises(IntegrationError, match="dataset row 0: its 'info' needs 'env_id' and 'scenario_id'"):
        PoolToolEnv(bank_pool.address, dataset=rows)
