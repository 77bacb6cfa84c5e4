"""An episode the environment's own code breaks (here its worker segfaults, in the sandbox) ends the rollout in both
trainers' adapters and scores 0, although the checks would pass on the state left behind; the lease goes back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import verifiers as vf
from openai import AsyncOpenAI

from envscaler.integrations.trl import PoolEnvironment, sandboxed_checks
from envscaler.integrations.verifiers import PoolToolEnv
from envscaler.pool.runner import LocalPool, PoolOptions
from tests.integration.conftest import hostile_corpus
from tests.llm_server import ScriptedLLM

pytestmark = pytest.mark.integration
ENV, SCENARIO = "env_hostile", "t1"  # t1's one check: notes == ["done"]


@pytest.fixture(scope="module")
def hostile_pool(engine: docker.DockerClient, runtime_image: str, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[LocalPool]:
    folder: Path = tmp_path_factory.mktemp("integrations-hostile")
    corpus = hostile_corpus()
    (folder / "envs.json").write_text(json.dumps({ENV: corpus.envs[ENV].model_dump(mode="json")}))
    (folder / "scenarios.json").write_text(json.dumps([corpus.scenarios[ENV][SCENARIO].model_dump(mode="json")]))
    with LocalPool(envs=folder / "envs.json", scenarios=folder / "scenarios.json",
                   options=PoolOptions(size=2, acquire_wait=120)) as local:
        yield local


def test_trl_a_broken_episode_scores_zero(hostile_pool: LocalPool) -> None:
    with PoolEnvironment(hostile_pool.pool, ENV) as environment:
        rollout, solved = environment(), environment()
        for one in (rollout, solved):
            one.reset(scenario=SCENARIO)
            assert not one.note(text="done").startswith("Error")
        assert "SIGSEGV" in rollout.segfault() and rollout.broken
        with pytest.raises(RuntimeError, match="the episode is over"):
            rollout.note(text="again")
        assert sandboxed_checks([rollout, solved]) == [0.0, 1.0]
        assert solved.evaluation is not None and solved.evaluation.passed == 1
    assert hostile_pool.pool.stats().envs[0].leased == 0


def test_verifiers_a_broken_episode_ends_the_rollout_and_scores_zero(hostile_pool: LocalPool) -> None:
    env = PoolToolEnv(hostile_pool.address, env_ids=[ENV])
    script = [{"tool_calls": [("note", '{"text": "done"}'), ("segfault", "{}"), ("note", '{"text": "x"}')]},
              {"content": "Task Completed"}]
    with ScriptedLLM(respond=lambda messages: script[sum(m["role"] == "assistant" for m in messages)]) as llm:
        client = vf.clients.OpenAIChatCompletionsClient(AsyncOpenAI(base_url=llm.base_url, api_key="test"))
        (output,) = env.evaluate_sync(client, model="scripted")["outputs"]
        assert len(llm.requests) == 1  # no model turn after the break
    tools = [m for m in output["completion"] if (m if isinstance(m, dict) else m.model_dump())["role"] == "tool"]
    assert len(tools) == 2  # the call after the break never ran
    assert output["reward"] == 0.0 and output["stop_condition"] == "has_final_env_response"
    assert hostile_pool.pool.stats().envs[0].leased == 0
