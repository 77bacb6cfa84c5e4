"""The drop-ins for EnvScaler's RL environment classes, through real pools, against what EnvScaler's own classes
returned on the same data and actions (tests/data/envscaler_gem/transcripts.json, recorded from EnvScaler commit
87e66739 by tests/integration/envscaler_gem_record.py): observations, error texts, termination, rewards, infos,
and the user model's requests, for both of EnvScaler's copies (ROLL's and interact_with_env's).

With ENVSCALER_REFERENCE=/path/to/EnvScaler (a checkout, and python-dotenv installed), the same cases also run
side by side with EnvScaler's classes loaded from there.
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import gem
import pytest

from envscaler.containers.hardening import Hardening
from envscaler.integrations.envscaler_gem import EnvScalerConvRLEnv, EnvScalerNonConvRLEnv, PoolMismatch
from envscaler.pool.runner import LocalPool, PoolOptions
from tests.integration import envscaler_gem_cases as cases
from tests.integration.conftest import NOTED
from tests.llm_server import ScriptedLLM

pytestmark = pytest.mark.integration

RECORDED = json.loads(cases.TRANSCRIPTS.read_text())
FLAVORS = ("roll", "interact_with_env")
CASES = {case.name: case for case in cases.cases()}
# Custom task items (checks the pool does not hold) need a pool that takes checks from clients.
CHECKS_ENVS = ["env_1", "env_5"]
BOTH_MODES = ["malformed", "bad-calls", "class-constants", "after-the-end", "solve-0-env_5", "solve-9-env_1",
              "solve-10-env_1", "conv-solve", "conv-errors"]


@pytest.fixture(scope="module")
def scenario_pool(engine: docker.DockerClient, example_images: dict[str, str]) -> Iterator[LocalPool]:
    """A pool as `pool` starts one: its own scenarios' checks only."""
    with LocalPool(options=PoolOptions(size=8, acquire_wait=300)) as local:
        yield local


@pytest.fixture(scope="module")
def checks_pool(engine: docker.DockerClient, example_images: dict[str, str]) -> Iterator[LocalPool]:
    """A pool started with --allow-client-checks: the drop-in sends each task's own init_config and checks."""
    options = PoolOptions(size=2, acquire_wait=300, only=CHECKS_ENVS, hardening=Hardening(client_checks=True))
    with LocalPool(options=options) as local:
        yield local


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM(respond=cases.responder()) as server:
        saved = {k: os.environ.get(k) for k in cases.llm_environment(server.base_url)}
        cases.set_llm_environment(server.base_url)
        yield server
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def ours(address: str, flavor: str) -> Any:
    def make(kind: str, tasks: Path, options: dict[str, Any]) -> Any:
        if kind == "nonconv":
            return EnvScalerNonConvRLEnv(mode="train", env_items_path=str(cases.ENVS), task_items_path=str(tasks),
                                         pool=address, flavor=flavor)
        return EnvScalerConvRLEnv(mode="train", user_model=cases.USER_MODEL,
                                  provider=options.get("provider", "openai"), env_items_path=str(cases.ENVS),
                                  task_items_path=str(tasks), pool=address, flavor=flavor,
                                  user_system_prompt=cases.USER_PROMPT)
    return make


def assert_same_raise(got: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    assert "raises" in got, f"{where}: EnvScaler raised {expected}, the drop-in returned {got}"
    if expected["raises"] == "ZeroDivisionError":  # ours is a ZeroDivisionError that names the task
        assert got["raises"] == "EmptyChecklist" and got["message"].startswith(expected["message"]), where
    else:
        assert (got["raises"], got["message"]) == (expected["raises"], expected["message"]), where


def assert_same(got: dict[str, Any], expected: dict[str, Any], name: str) -> None:
    if "raises" in expected["reset"]:
        assert_same_raise(got["reset"], expected["reset"], f"{name}: reset")
        return
    assert got["reset"] == expected["reset"], f"{name}: reset"
    assert len(got["steps"]) == len(expected["steps"])
    for index, (mine, theirs) in enumerate(zip(got["steps"], expected["steps"], strict=True)):
        if "raises" in theirs:
            assert_same_raise(mine, theirs, f"{name}: step {index}")
        else:
            assert mine == theirs, f"{name}: step {index}"


def run(make: Any, llm: ScriptedLLM, name: str) -> dict[str, Any]:
    case = CASES[name]
    llm.respond = cases.responder()
    start = len(llm.requests)
    record = cases.run_case(make, case, cases.CUSTOM_TASKS if case.tasks == "custom" else cases.BUNDLED_TASKS)
    record["llm_requests"] = llm.requests[start:]
    return record


def test_the_transcripts_cover_every_case() -> None:
    assert RECORDED["envscaler_commit"].startswith("87e66739")
    for flavor in FLAVORS:
        assert sorted(RECORDED["cases"][flavor]) == sorted(CASES), "cases changed: re-run envscaler_gem_record"


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.tasks == "bundled"])
def test_bundled_tasks_through_a_pool_of_scenarios(scenario_pool: LocalPool, llm: ScriptedLLM, flavor: str,
                                                   name: str) -> None:
    got = run(ours(scenario_pool.address, flavor), llm, name)
    expected = RECORDED["cases"][flavor][name]
    assert_same(got, expected, name)
    assert got["llm_requests"] == expected["llm_requests"]


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.tasks == "custom"] + BOTH_MODES)
def test_tasks_with_their_own_checks_through_a_pool_that_takes_them(checks_pool: LocalPool, llm: ScriptedLLM,
                                                                     flavor: str, name: str) -> None:
    got = run(ours(checks_pool.address, flavor), llm, name)
    expected = RECORDED["cases"][flavor][name]
    assert_same(got, expected, name)
    assert got["llm_requests"] == expected["llm_requests"]


def test_an_exception_observation_has_a_traceback_shape(scenario_pool: LocalPool) -> None:
    with EnvScalerNonConvRLEnv("train", pool=scenario_pool.address) as env:
        env.reset(task_index=9)
        observation, reward, terminated, truncated, _ = env.step(
            '<tool_call>{"name": "search_books", "arguments": {"query": 5}}</tool_call>')
    assert observation["content"] == ('Error: <Exception>\nTraceback (most recent call last):\n'
                                      '  File "<envscaler-runtime sandbox>", in search_books\n'
                                      "AttributeError: 'int' object has no attribute 'lower'\n")
    assert (reward, terminated, truncated) == (0.0, True, False)


def test_a_private_helper_is_no_action_here(scenario_pool: LocalPool) -> None:
    """The one documented difference these environments show: EnvScaler would run `_active_loans`."""
    with EnvScalerNonConvRLEnv("train", pool=scenario_pool.address) as env:
        env.reset(task_index=9)
        observation, *_ = env.step('<tool_call>{"name": "_active_loans", "arguments": {"member_id": "M001"}}'
                                   '</tool_call>')
    assert observation == {"type": "user", "content": "Error: Invalid action"}


def test_one_lease_per_episode_and_none_after_close(scenario_pool: LocalPool) -> None:
    def leased() -> int:
        return sum(e.leased for e in scenario_pool.pool.stats().envs)

    env = EnvScalerNonConvRLEnv("train", pool=scenario_pool.address)
    assert isinstance(env, gem.Env)
    env.reset(task_index=0)
    env.reset(task_index=9)
    assert leased() == 1
    env.close()
    assert leased() == 0


def test_a_slow_trainer_keeps_its_lease_and_a_dropped_env_gives_it_back(scenario_pool: LocalPool) -> None:
    def leased() -> int:
        return sum(e.leased for e in scenario_pool.pool.stats().envs)

    env = EnvScalerNonConvRLEnv("train", pool=scenario_pool.address, lease_ttl=2.0)
    env.reset(task_index=11)
    time.sleep(5)  # past the TTL: the lease is renewed in the background meanwhile
    observation, *_ = env.step('<tool_call>{"name": "list_member_loans", "arguments": {"member_id": "M001"}}'
                               "</tool_call>")
    assert observation["type"] == "tool"
    del env
    gc.collect()
    assert leased() == 0


def test_task_items_the_pool_cannot_check(scenario_pool: LocalPool) -> None:
    env = EnvScalerNonConvRLEnv("train", task_items_path=str(cases.CUSTOM_TASKS), pool=scenario_pool.address)
    with pytest.raises(PoolMismatch, match="--allow-client-checks"):
        env.reset(task_index=0)
    env.close()


def test_env_items_with_other_code(scenario_pool: LocalPool, tmp_path: Path) -> None:
    envs = json.loads(cases.ENVS.read_text())
    envs["env_1"]["env_class_code"] += "\n# changed\n"
    path = tmp_path / "envs.json"
    path.write_text(json.dumps(envs))
    with EnvScalerNonConvRLEnv("train", env_items_path=str(path), pool=scenario_pool.address) as env, \
            pytest.raises(PoolMismatch, match="other code for env_1"):
        env.reset(task_index=9)


def test_registered_with_gem_as_roll_registers_envscaler(scenario_pool: LocalPool) -> None:
    gem.register(env_id="envscaler_non_conv_env_sandboxed",
                 entry_point="envscaler.integrations.envscaler_gem:EnvScalerNonConvRLEnv")
    env = gem.make(env_id="envscaler_non_conv_env_sandboxed", mode="train", pool=scenario_pool.address)
    try:
        observation, info = env.reset(seed=5)
        assert observation["type"] == "user" and info["env_name"] == "envscaler_non_conversation_rl"
        assert env.step("Task Completed")[2] is True
    finally:
        env.unwrapped.close()


def test_user_model_arguments_instead_of_the_environment(scenario_pool: LocalPool, llm: ScriptedLLM,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("USER_OPENAI_API_KEY")
    monkeypatch.delenv("USER_OPENAI_BASE_URL")
    llm.respond = cases.responder()
    with EnvScalerConvRLEnv("train", cases.USER_MODEL, "openai", None, None, "key", llm.base_url,
                            pool=scenario_pool.address, flavor="interact_with_env",
                            user_system_prompt=cases.USER_PROMPT) as env:
        observation, _ = env.reset(task_index=9)
        assert observation.startswith("Hello! Hi, this is Ana Ruiz")
        observation, reward, terminated, _, info = env.step("STOP")
    assert (observation, reward, terminated) == ({"type": "user", "content": "###STOP###"}, 0.0, True)
    assert [m["role"] for m in info["user_messages"]] == ["system", "user", "assistant", "user", "assistant"]


@pytest.mark.skipif(not os.environ.get("ENVSCALER_REFERENCE"), reason="ENVSCALER_REFERENCE names no checkout")
@pytest.mark.parametrize("flavor", FLAVORS)
def test_side_by_side_with_envscaler_itself(scenario_pool: LocalPool, checks_pool: LocalPool, llm: ScriptedLLM,
                                            flavor: str) -> None:
    pytest.importorskip("dotenv", reason="EnvScaler's classes import python-dotenv")
    from tests.integration import envscaler_gem_record

    package = envscaler_gem_record.load(Path(os.environ["ENVSCALER_REFERENCE"]))[flavor]
    for name, case in CASES.items():
        theirs = run(envscaler_gem_record.maker(package), llm, name)
        address = checks_pool.address if case.tasks == "custom" else scenario_pool.address
        assert_same(run(ours(address, flavor), llm, name), theirs, name)



@pytest.fixture(scope="module")
def hostile_pool(engine: docker.DockerClient, runtime_image: str,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalPool, Path, Path]]:
    """The attacker's environment (tests/integration/hostile_env.py), as EnvScaler's files describe it."""
    from envscaler.spec.toolschema import derive_tools
    from tests.integration.conftest import HOSTILE_CODE

    folder = tmp_path_factory.mktemp("hostile")
    envs, tasks = folder / "envs.json", folder / "tasks.json"
    envs.write_text(json.dumps({"env_hostile": {
        "env_id": "env_hostile", "env_class_name": "Hostile", "env_class_code": HOSTILE_CODE,
        "environment_introduction": "Probes.", "constraints_rules": [],
        "tools": derive_tools(HOSTILE_CODE, "Hostile")}}))
    tasks.write_text(json.dumps([{"env_id": "env_hostile", "env_class_name": "Hostile", "task_id": "h1",
                                  "task": "Write a note.", "init_config": {"notes": []},
                                  "checklist_with_func": [{"check_item": "noted", "check_func": NOTED}]}]))
    options = PoolOptions(size=1, acquire_wait=300, hardening=Hardening(client_checks=True))
    with LocalPool(envs=envs, scenarios=tasks, options=options) as local:
        yield local, envs, tasks


def test_what_would_kill_envscalers_trainer_ends_the_episode(hostile_pool: tuple[LocalPool, Path, Path]) -> None:
    local, envs, tasks = hostile_pool
    with EnvScalerNonConvRLEnv("train", str(envs), str(tasks), pool=local.address) as env:
        env.reset(task_index=0)
        assert env.step('<tool_call>{"name": "note", "arguments": {"text": "done"}}</tool_call>')[0]["type"] == "tool"
        observation, reward, terminated, _, _ = env.step('<tool_call>{"name": "huge_result", "arguments": {}}'
                                                         '</tool_call>')
        assert compat_last_line(observation).startswith("RESULT_TOO_LARGE: ") and (reward, terminated) == (0, True)
        observation, reward, terminated, _, _ = env.step('<tool_call>{"name": "segfault", "arguments": {}}'
                                                         '</tool_call>')
        assert compat_last_line(observation).startswith("WORKER_CRASHED: ") and terminated
        observation, _, terminated, _, _ = env.step('<tool_call>{"name": "note", "arguments": {"text": "x"}}'
                                                    '</tool_call>')
        assert compat_last_line(observation).startswith("EPISODE_BROKEN: ") and terminated
        assert env.step("Task Completed")[:3] == ({"type": "user", "content": "Task finished"}, 0.0, True)
        env.reset(task_index=0)  # a new lease, a new worker
        env.step('<tool_call>{"name": "note", "arguments": {"text": "done"}}</tool_call>')
        assert env.step("Task Completed")[1] == 1.0


def compat_last_line(observation: dict[str, Any]) -> str:
    assert observation["content"].startswith(cases.EXCEPTION_PREFIX), observation
    return observation["content"].rstrip("\n").splitlines()[-1]
