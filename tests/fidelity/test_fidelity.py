"""The awkward-state corpus (parent pointers, shared graph nodes, __slots__ and properties) runs identically
in process, EnvScaler's way, and through the sandbox: observations, results, final-state hashes, rewards."""

from __future__ import annotations

from pathlib import Path

import pytest

from envscaler.client import EnvClient
from envscaler.runtime.trusted.server import serving
from envscaler.spec import Corpus
from envscaler.spec.served import from_spec
from tests.fidelity import build
from tests.fidelity.replay import corpus, in_process, sandboxed, solutions

SOLUTIONS = solutions()
IDS = [f"{env_id}/{task_id}" for env_id, task_id, _ in SOLUTIONS]


@pytest.fixture(scope="module")
def fidelity_corpus() -> Corpus:
    return corpus()


def test_the_corpus_files_are_built_from_their_sources() -> None:
    assert build.stale() == []


@pytest.mark.parametrize(("env_id", "task_id", "calls"), SOLUTIONS, ids=IDS)
def test_reference_solutions_solve_their_scenarios_in_process(fidelity_corpus: Corpus, env_id: str, task_id: str,
                                                             calls: list) -> None:
    replay = in_process(fidelity_corpus, env_id, task_id, calls)
    assert replay.reward == 1.0, replay.outcomes
    assert replay.initial_sha256 != replay.final_sha256


@pytest.mark.parametrize(("env_id", "task_id", "calls"), SOLUTIONS, ids=IDS)
def test_a_server_replays_exactly_what_envscaler_does(fidelity_corpus: Corpus, sock_dir: Path, env_id: str,
                                                     task_id: str, calls: list) -> None:
    expected = in_process(fidelity_corpus, env_id, task_id, calls)
    with serving(*from_spec(fidelity_corpus.env(env_id), fidelity_corpus.scenarios_of(env_id)),
                 f"unix:{sock_dir}/env.sock") as running, EnvClient(running.address) as client:
        reset = client.reset(task_id)
        assert not reset.state_error_kind, reset.state_error_message
        assert sandboxed(client, reset.state_sha256, calls) == expected
