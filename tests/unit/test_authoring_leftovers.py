"""Leftovers of issue 31: a corpus path given as text, `LocalPool.session`, and ad-hoc checks given as
EnvScaler's own {check_item, check_func} records (never unpacked into their keys)."""

from __future__ import annotations

from pathlib import Path

import pytest

from envscaler.client import EnvClient
from envscaler.client.env_client import evaluate_request
from envscaler.pool.runner import LocalPool
from envscaler.spec import Corpus
from envscaler.spec.loader import bundled_envs_path, bundled_scenarios_path
from tests.conftest import serve_env

PASSES = "def check_func(final_state):\n    return True\n"
FAILS = "def check_func(final_state):\n    return False\n"


def test_local_pool_takes_corpus_paths_as_text() -> None:
    local = LocalPool(size=1, envs=str(bundled_envs_path()), scenarios=str(bundled_scenarios_path()))
    assert len(local.corpus.envs) == 8 and local.corpus.scenarios_of("env_1")
    with pytest.raises(TypeError, match="envs: expected a path"):
        LocalPool(envs=["a.json"])  # type: ignore[arg-type]


def test_local_pool_session_says_when_the_pool_is_not_running() -> None:
    from envscaler.images.engine import EngineError

    with pytest.raises(EngineError, match="not running: use it inside `with LocalPool"):
        LocalPool(size=1).session("env_1")


def test_ad_hoc_checks_as_pairs_or_records_and_a_clear_error_otherwise() -> None:
    pairs = evaluate_request("e", None, [("passes", PASSES)])
    records = evaluate_request("e", None, [{"check_item": "passes", "check_func": PASSES}])
    assert pairs == records and records.checks[0].check_func == PASSES
    with pytest.raises(TypeError, match=r"checks: expected a list of checks, got one dict"):
        evaluate_request("e", None, {"check_item": "x", "check_func": PASSES})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"checks\[0\]: expected a \(check_item, check_func source\) pair"):
        evaluate_request("e", None, [PASSES])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"checks\[1\]: check_item and check_func must be text"):
        evaluate_request("e", None, [("a", PASSES), {"check_item": "b"}])


def test_a_record_check_is_evaluated_by_a_real_server(corpus: Corpus, sock_dir: Path) -> None:
    spec, scenarios = corpus.env("env_1"), corpus.scenarios_of("env_1")
    with serve_env(spec, scenarios, sock_dir) as running, EnvClient(running.address) as client:
        client.reset(next(iter(scenarios)))
        evaluation = client.evaluate(checks=[{"check_item": "passes", "check_func": PASSES},
                                             {"check_item": "fails", "check_func": FAILS}])
    assert [(c.check_item, c.outcome) for c in evaluation.checks] == [("passes", "PASS"), ("fails", "FAIL")]
