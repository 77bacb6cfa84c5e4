"""Integration tests: a real Docker engine, real images, real hardened containers.

Every container started here carries `envscaler.owner=<this session>`; the
session reaps them at the end, whatever happened.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from envscaler.containers.launch import reap
from envscaler.images.build import build_envs, ensure_runtime
from envscaler.images.engine import EngineError, connect
from envscaler.pool.liveness import reap_dead_pools
from envscaler.spec import Corpus, EnvSpec, Scenario, load_corpus

os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"  # the Ryuk image cannot be pulled; we reap by label
SESSION_OWNER = f"tests-{uuid.uuid4().hex[:8]}"

HOSTILE_CODE = (Path(__file__).parent / "hostile_env.py").read_text()
LOOPING_CHECK = "def check_func(final_state):\n    while True:\n        pass\n"
NOTED = "def check_func(final_state):\n    return final_state['notes'] == ['done']\n"
# Checks that attack: each must get ERROR alone; the honest ones are scored from their own results.
HOSTILE_CHECKS = [
    ("honest pass", NOTED),
    ("kills the episode's worker", "import os, signal\ndef check_func(final_state):\n"
                                   "    os.kill(os.getppid(), signal.SIGKILL)\n    return True\n"),
    ("writes the episode's memory", "import os\ndef check_func(final_state):\n"
                                    "    open(f'/proc/{os.getppid()}/mem', 'r+b').close()\n    return True\n"),
    ("forges results", "import os\ndef check_func(final_state):\n    for fd in range(3, 64):\n        try:\n"
                       "            os.write(fd, b'{\"outcome\": \"PASS\", \"message\": \"\"}\\n' * 4)\n"
                       "        except OSError:\n            pass\n    return False\n"),
    ("honest fail", "def check_func(final_state):\n    return final_state['notes'] == ['never']\n"),
    ("writes a file for the episode", "def check_func(final_state):\n"
                                      "    open('/tmp/from-check', 'w').write('x')\n    return True\n"),
    ("honest pass again", NOTED),
]


def hostile_corpus() -> Corpus:
    spec = EnvSpec(env_id="env_hostile", env_class_name="Hostile", env_class_code=HOSTILE_CODE,
                   environment_summary="hostile probes")
    check = NOTED
    scenarios = {
        "t1": Scenario(env_id="env_hostile", task_id="t1", init_config={"notes": []},
                       checklist_with_func=[{"check_item": "noted", "check_func": check}]),
        "t_loop": Scenario(env_id="env_hostile", task_id="t_loop", init_config={"notes": []},
                           checklist_with_func=[{"check_item": "noted", "check_func": check},
                                                {"check_item": "loops", "check_func": LOOPING_CHECK}]),
        "t_checks": Scenario(env_id="env_hostile", task_id="t_checks", init_config={"notes": []},
                             checklist_with_func=[{"check_item": item, "check_func": func}
                                                  for item, func in HOSTILE_CHECKS]),
    }
    return Corpus(envs={spec.env_id: spec}, scenarios={spec.env_id: scenarios})


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    try:
        client = connect()
    except EngineError as exc:
        pytest.fail(f"integration tests need a Docker engine: {exc}")
    yield client
    reap(client, SESSION_OWNER)
    reap_dead_pools(client)  # pools of tests that failed before their own cleanup


@pytest.fixture(scope="session")
def runtime_image(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> str:
    log = tmp_path_factory.mktemp("images") / "images.log"
    try:
        return ensure_runtime(engine, None, log)
    except EngineError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def example_images(engine: docker.DockerClient, runtime_image: str) -> dict[str, str]:
    results = build_envs(engine, load_corpus(), runtime_image)
    assert all(r.status != "failed" for r in results), [r.message for r in results]
    return {r.env_id: r.tag for r in results}


@pytest.fixture(scope="session")
def hostile_image(engine: docker.DockerClient, runtime_image: str) -> str:
    (result,) = build_envs(engine, hostile_corpus(), runtime_image)
    assert result.status != "failed", result.message
    return result.tag


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    from envscaler.containers.launch import remove_socket_directory, socket_directory

    path = socket_directory()
    yield path

    remove_socket_directory(path)
