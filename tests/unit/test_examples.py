"""Every bundled example: its reference solution reaches reward 1.0 through the
server, and every check fails on the initial state."""

from __future__ import annotations

import pytest

from envscaler.client import EnvClient
from envscaler.client.replay import read_calls, replay
from envscaler.spec import Corpus, load_corpus
from envscaler.spec.validate import validate_files
from tests.conftest import SOLUTIONS, serve_env

CORPUS: Corpus = load_corpus()


def test_corpus_is_large_and_valid() -> None:
    report = validate_files()
    assert report.ok, [str(p) for r in report.records for p in r.problems]
    assert report.count("warning") == 0
    assert len(CORPUS.envs) >= 8
    domains = {spec.environment_summary for spec in CORPUS.envs.values()}
    assert len(domains) == len(CORPUS.envs)
    for env_id, spec in CORPUS.envs.items():
        assert 8 <= len(spec.tools or []) <= 15, env_id
        assert len(CORPUS.scenarios_of(env_id)) >= 3, env_id


@pytest.mark.parametrize("env_id", sorted(CORPUS.envs))
def test_every_scenario_is_solved_and_not_presolved(env_id: str, sock_dir) -> None:
    spec, scenarios = CORPUS.env(env_id), CORPUS.scenarios_of(env_id)
    with serve_env(spec, scenarios, sock_dir) as running, EnvClient(running.address) as client:
        for task_id in scenarios:
            client.reset(task_id)
            initial = client.evaluate()
            assert initial.total >= 2
            assert [c.outcome for c in initial.checks] == ["FAIL"] * initial.total, (task_id, initial.checks)
            calls = read_calls(SOLUTIONS / f"{env_id}__{task_id}.jsonl")
            report = replay(client, task_id, calls)
            assert all(step.ok for step in report.steps), (task_id, [s.observation for s in report.steps])
            assert report.evaluation is not None
            assert report.evaluation.reward == 1.0, (task_id, report.evaluation.checks)
            again = replay(client, task_id, calls)
            assert again.final_sha256 == report.final_sha256
