"""Any language: the Node.js client (official @grpc/grpc-js + @grpc/proto-loader,
loading proto/) solves a scenario through a real pool."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from envscaler.pool.runner import LocalPool, PoolOptions
from tests.conftest import ROOT, SOLUTIONS

pytestmark = pytest.mark.integration
NODE_CLIENT = ROOT / "client" / "node"


@pytest.fixture(scope="module")
def node_pool(engine: docker.DockerClient, example_images: dict[str, str]) -> Iterator[LocalPool]:
    if shutil.which("node") is None:
        pytest.fail("the Node.js client test needs node on PATH (./dev test installs its packages with npm)")
    if not (NODE_CLIENT / "node_modules" / "@grpc" / "grpc-js").exists():
        subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=NODE_CLIENT, check=True, timeout=300)
    with LocalPool(options=PoolOptions(size=2, only=["env_2", "env_7"], acquire_wait=60)) as local:
        yield local


@pytest.mark.parametrize(("env_id", "task_id"), [("env_2", "0310-110904"), ("env_7", "1102-074512")])
def test_node_client_solves_a_scenario(node_pool: LocalPool, env_id: str, task_id: str) -> None:
    calls: Path = SOLUTIONS / f"{env_id}__{task_id}.jsonl"
    done = subprocess.run(["node", str(NODE_CLIENT / "solve.js"), node_pool.address, env_id, task_id, str(calls)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {"reward": 1, "steps": len(calls.read_text().splitlines()), "tools": result["tools"],
                      "errors": []}
    assert result["tools"] >= 8


def test_node_client_reports_errors_clearly(node_pool: LocalPool, tmp_path: Path) -> None:
    calls = tmp_path / "calls.jsonl"
    calls.write_text('{"name": "list_rooms", "arguments": {}}\n')
    done = subprocess.run(["node", str(NODE_CLIENT / "solve.js"), node_pool.address, "env_404", "x", str(calls)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("Acquire: NOT_FOUND: unknown env_id 'env_404'")


def test_the_packed_package_works_outside_the_checkout(node_pool: LocalPool, tmp_path: Path) -> None:
    """`npm pack` makes a package that carries its protos and types; installed elsewhere, `require()` finds it."""
    packed = subprocess.run(["npm", "pack", "--json", "--pack-destination", str(tmp_path)], cwd=NODE_CLIENT,
                            capture_output=True, text=True, timeout=120, check=True)
    (tarball,) = json.loads(packed.stdout)
    contents = {f["path"] for f in tarball["files"]}
    assert {"pool_client.js", "index.d.ts", "README.md", "proto/envscaler/v1/pool.proto"} <= contents
    assert not (NODE_CLIENT / "proto").exists()  # postpack removed the copy
    user = tmp_path / "user"
    user.mkdir()
    (user / "package.json").write_text('{"name": "user", "version": "1.0.0", "private": true}')
    subprocess.run(["npm", "install", "--prefer-offline", "--no-audit", "--no-fund", "--silent",
                    str(tmp_path / tarball["filename"])], cwd=user, check=True, timeout=300)
    (user / "list.js").write_text(
        'const { Pool } = require("envscaler-runtime-client");\n'
        "const pool = new Pool(process.argv[2]);\n"
        "pool.listEnvs().then((envs) => { console.log(JSON.stringify(envs.map((e) => e.env_id))); pool.close(); });\n")
    done = subprocess.run(["node", "list.js", node_pool.address], cwd=user, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(done.stdout)) == ["env_2", "env_7"]
