"""`build` on a corpus with one hostile record builds the others; env ids that differ only in case get
distinct images, each serving its own environment."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import pytest

from envscaler.client import EnvClient, EnvClientError
from envscaler.client.pool_client import Pool
from envscaler.containers.launch import running
from envscaler.images.build import build_envs
from envscaler.spec import Corpus
from envscaler.spec.loader import bundled_envs_path, bundled_scenarios_path, load_corpus
from tests.integration.conftest import SESSION_OWNER

pytestmark = pytest.mark.integration


def test_build_cli_fails_the_hostile_record_alone(engine: docker.DockerClient, runtime_image: str,
                                                  example_images: dict[str, str], tmp_path: Path) -> None:
    envs = json.loads(bundled_envs_path().read_text())
    chain = "A0 = int\n" + "".join(f"A{i} = A{i - 1}\n" for i in range(1, 3000))
    deep = "Deep = " + "List[" * 90 + "int" + "]" * 90 + "\n"  # parses, but nests past the limit
    envs["env_hostile"] = dict(envs["env_1"], env_id="env_hostile", env_class_code=chain + envs["env_1"][
        "env_class_code"].replace("def search_books(self, query: str", "def search_books(self, query: A2999", 1))
    envs["env_deep"] = dict(envs["env_2"], env_id="env_deep", env_class_code=deep + envs["env_2"][
        "env_class_code"].replace("def find_patient(self, ", "def find_patient(self, hostile: Deep, ", 1))
    envs["env_surrogate"] = dict(envs["env_3"], env_id="env_surrogate", environment_summary="x\ud800")
    envs["env_odd"] = dict(envs["env_4"], env_id="env_odd", tools=None)  # odd but harmless: built
    envs["env_odd"]["env_class_code"] = "from typing import Literal\n" + envs["env_4"]["env_class_code"] + (
        "\n    def odd(self, a: Literal[..., b'x', 1j, 'ok'], b: bytes = b'x', c: float = 1e400) -> dict:\n"
        "        return {'success': True}\n")
    path = tmp_path / "envs.json"
    path.write_text(json.dumps(envs))
    done = subprocess.run([sys.executable, "-m", "envscaler.cli", "build", "--envs", str(path), "--scenarios",
                           str(bundled_scenarios_path())], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "COLUMNS": "400"})
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("│")}
    assert "failed" in rows["env_hostile"] and "parameter 'query'" in rows["env_hostile"], out
    assert "failed" in rows["env_deep"] and "parameter 'hostile'" in rows["env_deep"], out
    assert "failed" in rows["env_surrogate"] and "not valid Unicode" in rows["env_surrogate"], out
    assert "built" in rows["env_odd"] or "cached" in rows["env_odd"], out
    for i in range(1, 9):
        assert "cached" in rows[f"env_{i}"] or "built" in rows[f"env_{i}"], out


def test_env_ids_differing_only_in_case_get_distinct_images(engine: docker.DockerClient,
                                                            runtime_image: str) -> None:
    bundled = load_corpus()
    spec = bundled.env("env_1")
    upper = spec.model_copy(update={"env_id": "Env_A", "environment_summary": "the upper-case one"})
    lower = spec.model_copy(update={"env_id": "env_a", "environment_summary": "the lower-case one"})
    corpus = Corpus(envs={"Env_A": upper, "env_a": lower})
    results = {r.env_id: r for r in build_envs(engine, corpus, runtime_image)}
    assert {r.status for r in results.values()} <= {"built", "cached"}, [r.message for r in results.values()]
    tags = {env_id: r.tag for env_id, r in results.items()}
    assert tags["Env_A"].split(":")[0] != tags["env_a"].split(":")[0]
    images = {env_id: engine.images.get(tag) for env_id, tag in tags.items()}
    assert images["Env_A"].id != images["env_a"].id
    try:
        for env_id, summary in (("Env_A", "the upper-case one"), ("env_a", "the lower-case one")):
            assert images[env_id].labels["envscaler.env-id"] == env_id
            with running(engine, tags[env_id], SESSION_OWNER) as env, EnvClient(env.address) as client:
                info = client.describe()
            assert (info.env_id, info.environment_summary) == (env_id, summary)
    finally:
        for tag in tags.values():
            engine.images.remove(tag)


def test_pool_serves_the_good_envs_of_a_corpus_with_bad_records(engine: docker.DockerClient,
                                                                example_images: dict[str, str],
                                                                tmp_path: Path) -> None:
    envs = json.loads(bundled_envs_path().read_text())
    chain = "A0 = int\n" + "".join(f"A{i} = A{i - 1}\n" for i in range(1, 3000))
    envs["env_hostile"] = dict(envs["env_1"], env_id="env_hostile", tools=None, env_class_code=chain + envs["env_1"][
        "env_class_code"].replace("def search_books(self, query: str", "def search_books(self, query: A2999", 1))
    envs["env_broken"] = {"env_class_name": "Missing"}  # does not even load
    path = tmp_path / "envs.json"
    path.write_text(json.dumps(envs))
    sock_dir = Path(tempfile.mkdtemp(prefix="envscaler-hostile-pool-"))
    address = f"unix:{sock_dir}/pool.sock"
    log = tmp_path / "pool.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "envscaler.cli", "pool", "--size", "1", "--listen", address,
                                    "--metrics-listen", "", "--envs", str(path), "--scenarios",
                                    str(bundled_scenarios_path()), "--only", "env_1", "env_hostile"],
                                   stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "400"})
    pool = Pool(address)
    try:
        deadline = time.monotonic() + 120
        while not (sock_dir / "pool.sock").exists():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert [e.env_id for e in pool.list_envs().envs] == ["env_1"]
        with pool.session("env_1", "0115-091204", wait=120) as session:
            assert session.call("find_member_by_name", {"name": "Ana Ruiz"}).result["success"] is True
        with pytest.raises(EnvClientError):
            pool.acquire("env_hostile", wait=1)
        text = log.read_text()
        assert "parameter 'query'" in text and "env_class_code: Field required" in text, text
        assert "Traceback" not in text
    finally:
        pool.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
        shutil.rmtree(sock_dir, ignore_errors=True)
    assert process.returncode == 0, log.read_text()
