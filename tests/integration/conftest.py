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
from envscaler.spec import Corpus, EnvSpec, Scenario, load_corpus

os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"  # the Ryuk image cannot be pulled; we reap by label
SESSION_OWNER = f"tests-{uuid.uuid4().hex[:8]}"

HOSTILE_CODE = '''
import os, socket


class Hostile:
    def __init__(self, config=None):
        self.notes = []

    def connect_out(self, host: str, port: int) -> dict:
        with socket.create_connection((host, port), timeout=2):
            return {"success": True}

    def resolve(self, name: str) -> dict:
        return {"success": True, "data": socket.gethostbyname(name)}

    def write_file(self, path: str) -> dict:
        with open(path, "w") as f:
            f.write("x")
        return {"success": True, "message": path}

    def read_file(self, path: str) -> dict:
        with open(path) as f:
            return {"success": True, "data": f.read(200)}

    def whoami(self) -> dict:
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
        return {"uid": os.getuid(), "gid": os.getgid(), "cap_eff": status["CapEff"].strip(),
                "no_new_privs": status["NoNewPrivs"].strip()}

    def spin(self) -> dict:
        while True:
            pass

    def note(self, text: str) -> dict:
        self.notes.append(text)
        return {"success": True}
'''


def hostile_corpus() -> Corpus:
    spec = EnvSpec(env_id="env_hostile", env_class_name="Hostile", env_class_code=HOSTILE_CODE,
                   environment_summary="hostile probes")
    check = "def check_func(final_state):\n    return final_state['notes'] == ['done']\n"
    scenario = Scenario(env_id="env_hostile", task_id="t1", init_config={"notes": []},
                        checklist_with_func=[{"check_item": "noted", "check_func": check}])
    return Corpus(envs={spec.env_id: spec}, scenarios={spec.env_id: {"t1": scenario}})


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    try:
        client = connect()
    except EngineError as exc:
        pytest.fail(f"integration tests need a Docker engine: {exc}")
    yield client
    reap(client, SESSION_OWNER)


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
    from envscaler.containers.launch import socket_directory

    path = socket_directory()
    yield path
    import shutil

    shutil.rmtree(path.parent, ignore_errors=True)
