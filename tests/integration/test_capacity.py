"""Capacity: a realistic corpus (every scenario carries a multi-megabyte database) replays through a pool
exactly as in process, and a container killed for memory at start is reported with that cause, backed off,
and refused at Acquire with FAILED_PRECONDITION."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from bench.bigcorpus import ENV_ID, solution, write_corpus
from envscaler.client import EnvClient, EnvClientError
from envscaler.client.models import ResetResult
from envscaler.containers.hardening import Hardening
from envscaler.pool.runner import LocalPool, PoolOptions
from envscaler.runtime.trusted.server import ServerConfig, serving
from envscaler.spec import load_corpus
from envscaler.spec.loader import bundled_envs_path, bundled_scenarios_path
from envscaler.spec.served import from_spec

pytestmark = pytest.mark.integration
# The suite's size; issue 19's acceptance run is ENVSCALER_CAPACITY_SCENARIOS=100 ENVSCALER_CAPACITY_STATE_MB=3.
SCENARIOS = int(os.environ.get("ENVSCALER_CAPACITY_SCENARIOS", "60"))
STATE_BYTES = int(float(os.environ.get("ENVSCALER_CAPACITY_STATE_MB", "2")) * (1 << 20))


def run_scenario(env: Any, reset: ResetResult, scenario: dict[str, Any]) -> dict[str, Any]:
    """What a replay compares: the initial and final state hashes, every observation, and the checks."""
    calls = [env.call(name, arguments) for name, arguments in solution(scenario)]
    final = env.state()
    evaluation = env.evaluate()
    return {"task": reset.task, "initial": reset.state_sha256, "final": final.sha256,
            "observations": [(c.ok, c.observation, c.error_kind) for c in calls],
            "checks": [(c.outcome, c.message) for c in evaluation.checks], "reward": evaluation.reward}


@pytest.mark.timeout(1200)  # about 2 min on 2 idle cores; the 100 x 3 MB acceptance run takes longer
def test_a_multi_megabyte_corpus_replays_through_a_pool_as_in_process(runtime_image: str, tmp_path: Path,
                                                                      sock_dir: Path) -> None:
    envs, scenario_file = write_corpus(tmp_path, SCENARIOS, STATE_BYTES)
    corpus = load_corpus(envs, scenario_file)
    scenarios = {s.task_id: s.model_dump(mode="json") for s in corpus.scenarios_of(ENV_ID).values()}
    assert len(scenarios) == SCENARIOS and scenario_file.stat().st_size > SCENARIOS * STATE_BYTES * 0.9
    expected = {}
    with serving(*from_spec(corpus.env(ENV_ID), corpus.scenarios_of(ENV_ID)), f"unix:{sock_dir}/env.sock",
                 ServerConfig(reset_timeout=60.0)) as running, EnvClient(running.address) as client:
        for task_id, scenario in scenarios.items():
            expected[task_id] = run_scenario(client, client.reset(task_id), scenario)
    assert all(e["reward"] == 1.0 for e in expected.values())
    # The default memory limit (512 MiB), two containers serving every scenario in turn.
    with LocalPool(envs=envs, scenarios=scenario_file, options=PoolOptions(size=2, acquire_wait=120)) as local:
        for task_id, scenario in scenarios.items():
            with local.pool.session(ENV_ID, scenario=task_id, wait=120) as env:
                assert env.initial is not None
                assert run_scenario(env, env.initial, scenario) == expected[task_id], task_id
        stats = local.pool.stats()
        assert [(e.env_id, e.failed, e.failing) for e in stats.envs] == [(ENV_ID, 0, "")]
        assert stats.replaced == 0  # no container died or broke


def test_a_container_killed_for_memory_at_start_is_named_backed_off_and_refused(
        engine: docker.DockerClient, runtime_image: str) -> None:
    options = PoolOptions(size=2, acquire_wait=60, only=["env_4"], hardening=Hardening(memory_bytes=16 << 20))
    with LocalPool(envs=bundled_envs_path(), scenarios=bundled_scenarios_path(), options=options,
                   ready_timeout=0) as local:
        started = time.monotonic()
        with pytest.raises(EnvClientError) as refused:
            local.pool.acquire("env_4", wait=60)
        seconds = time.monotonic() - started
        assert refused.value.code == "FAILED_PRECONDITION"
        assert refused.value.details.startswith("env_4: containers are killed for memory (16 MiB): raise "
                                                 "--memory-mb"), refused.value.details
        assert "--size" not in refused.value.details
        assert seconds < 20, f"the cause took {seconds:.1f} s to reach Acquire"
        time.sleep(10)
        (env,) = local.pool.stats().envs
        assert env.failing.startswith("env_4: containers are killed for memory (16 MiB)")
        # Backed off (1, 2, 4, 8 s ...): a handful of starts in ~20 s, not one every 2 s per slot.
        elapsed = time.monotonic() - started
        assert 2 <= env.failed <= 8, f"{env.failed} failed starts in {elapsed:.0f} s"
        assert local.manager is not None
        assert local.manager.book.reasons[("env_4", "oom")] == env.failed
        # A waiting Acquire is refused as soon as the environment is failing, not after its wait.
        started = time.monotonic()
        with pytest.raises(EnvClientError) as again:
            local.pool.acquire("env_4", wait=60)
        assert again.value.code == "FAILED_PRECONDITION" and time.monotonic() - started < 2


def test_only_the_servers_uid_can_read_the_bundle(engine: docker.DockerClient, example_images: dict[str, str]) -> None:
    probe = ("import os, sys\nroot = '/opt/envscaler/env/served'\n"
             "try:\n    data = open(root + '/scenarios/0.checks.json').read()\n    print('read', len(data))\n"
             "except PermissionError as exc:\n    print('denied', exc.errno)\n")
    image = example_images["env_4"]

    def run(user: str) -> str:
        return engine.containers.run(image, entrypoint=["/opt/envscaler/bin/python3", "-c", probe], user=user,
                                     network_mode="none", remove=True).decode().strip()

    assert run("10001:10001").startswith("read ")
    assert run("10002:10002") == "denied 13"  # environment code's uid: not its tasks or checks


def test_environment_code_is_what_the_kernel_kills_first(engine: docker.DockerClient,
                                                         example_images: dict[str, str]) -> None:
    from envscaler.containers import launch

    with launch.running(engine, example_images["env_4"], "test-capacity") as env:
        with EnvClient(env.address) as client:
            client.reset(next(iter(load_corpus().scenarios_of("env_4"))))
        adjust = {}
        for pid, user, *_ in env.container.top(ps_args="-o pid,user,args")["Processes"]:
            adjust.setdefault(user, set()).add(Path(f"/proc/{pid}/oom_score_adj").read_text().strip())
    assert adjust["10002"] == {"1000"}  # zygote, workers: killed first when the container runs out of memory
    assert adjust["10001"] == {"0"}  # the server is not
