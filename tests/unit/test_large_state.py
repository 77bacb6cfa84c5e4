"""A 30 MB state is first-class: Reset, GetState, tool calls and Evaluate work under the container's default
worker memory limit, served from a bundle directory; a state over the state cap is refused in band, naming the
cap and the flag that raises it, and the 1 MiB cap stays on tool results only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.bigcorpus import ENV_ID, scenarios, solution, write_corpus
from envscaler.client import EnvClient
from envscaler.protocol import bundle
from envscaler.runtime.sandbox.codec import dumps, sha256
from envscaler.runtime.trusted import served
from envscaler.runtime.trusted.server import ServerConfig, serving
from envscaler.spec import load_corpus
from envscaler.spec.served import from_spec

DEFAULT_WORKER_MEMORY = (512 << 20) * 3 // 4  # what a container at the default --memory-mb gives each worker


@pytest.fixture(scope="module")
def big_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("big")
    envs, scenario_file = write_corpus(folder, 2, 30 << 20)
    corpus = load_corpus(envs, scenario_file)
    env, scenario_map = from_spec(corpus.env(ENV_ID), corpus.scenarios_of(ENV_ID))
    first = next(scenarios(1, 30 << 20))
    return bundle.write_bundle(folder / "bundle", env, scenario_map), first


def test_a_30_mb_state_resets_reads_changes_and_evaluates(big_bundle: tuple[Path, dict], sock_dir: Path) -> None:
    bundle, scenario = big_bundle
    env, store = served.load_bundle(bundle)
    expected = dumps(scenario["init_config"], max_bytes=64 << 20)
    assert len(expected) > 27 << 20  # compact; 30 MiB as the corpus file writes it
    # A container of --memory-mb 1024 (3/4 of it per worker); 2 shared cores, hence the long deadlines.
    config = ServerConfig(memory_bytes=768 << 20, call_timeout=60.0, reset_timeout=60.0)
    with serving(env, store, f"unix:{sock_dir}/env.sock", config) as running, EnvClient(running.address) as client:
        reset = client.reset(scenario["task_id"])
        assert reset.state_sha256 == sha256(expected), reset.state_error_message
        observations = [client.call(name, arguments) for name, arguments in solution(scenario)]
        assert [o.ok for o in observations] == [True, True, True, True, True]
        assert "is cancelled" in observations[-1].observation  # the second cancel fails inside the tool
        state = client.state()
        assert state.state is not None
        assert len(json.dumps(state.state)) > 27 << 20  # far over the 1 MiB tool-result cap: a state is not a result
        evaluation = client.evaluate()
        assert (evaluation.passed, evaluation.total, evaluation.reward) == (2, 2, 1.0), evaluation.checks


def test_at_the_default_memory_a_30_mb_state_works_or_names_the_limit(big_bundle: tuple[Path, dict],
                                                                      sock_dir: Path) -> None:
    bundle, scenario = big_bundle
    env, store = served.load_bundle(bundle)
    config = ServerConfig(memory_bytes=DEFAULT_WORKER_MEMORY, reset_timeout=60.0)
    with serving(env, store, f"unix:{sock_dir}/env.sock", config) as running, EnvClient(running.address) as client:
        reset = client.reset(scenario["task_id"])
        if reset.state is None:  # the episode runs; its state is refused in band with the limit and the flag
            assert "384 MiB" in reset.state_error_message and "raise --memory-mb" in reset.state_error_message
        assert client.call("get_order", {"order_id": "O0000000"}).ok


def test_a_state_over_the_cap_names_the_cap_and_its_flag(big_bundle: tuple[Path, dict], sock_dir: Path) -> None:
    bundle, scenario = big_bundle
    env, store = served.load_bundle(bundle)
    config = ServerConfig(max_state_bytes=8 << 20, reset_timeout=60.0)
    with serving(env, store, f"unix:{sock_dir}/env.sock", config) as running, EnvClient(running.address) as client:
        reset = client.reset(scenario["task_id"])  # the episode runs; only its state is refused, in band
        assert reset.state is None and reset.state_error_kind == "UNSERIALIZABLE_STATE"
        assert f"over the {8 << 20}-byte state cap" in reset.state_error_message
        assert "--max-state-bytes" in reset.state_error_message
        state = client.state()
        assert state.state is None and "--max-state-bytes" in state.error_message
        assert client.call("get_order", {"order_id": "O0000000"}).ok
