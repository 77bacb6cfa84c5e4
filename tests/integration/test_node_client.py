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
def node_modules() -> None:
    if shutil.which("node") is None:
        pytest.fail("the Node.js client test needs node on PATH (./dev test installs its packages with npm)")
    if not (NODE_CLIENT / "node_modules" / "@grpc" / "grpc-js").exists():
        subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=NODE_CLIENT, check=True, timeout=300)


@pytest.fixture(scope="module")
def node_pool(engine: docker.DockerClient, example_images: dict[str, str], node_modules: None) -> Iterator[LocalPool]:
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


LEASE_JS = """
const { Pool } = require(process.argv[2]);
const options = process.argv[4] === "env" ? undefined : JSON.parse(process.argv[4]);
(async () => {
  const pool = new Pool(process.argv[3], options);
  try {
    const envs = (await pool.listEnvs()).map((e) => e.env_id);
    const session = await pool.acquire("env_1", { waitSeconds: 10 });
    const result = await session.call("anything", {});
    await session.release();
    console.log(JSON.stringify({ envs, observation: result.observation }));
  } finally {
    pool.close();
  }
})().catch((error) => { console.error(error.message); process.exit(1); });
"""


def test_node_client_with_a_token_and_tls(node_modules: None, tmp_path: Path) -> None:
    """The Node client on a pool that other machines can reach: TLS trusting the test's CA, the bearer token (as an
    option and from ENVSCALER_TOKEN / ENVSCALER_CA_FILE); a missing or wrong token gets UNAUTHENTICATED in one line.
    The pool is the real serve_pool on the in-memory backend (what is under test is who may talk to it)."""
    import os

    from tests.certs import make_pki, outside_ip
    from tests.unit.test_pool_auth import TOKEN, pool_serving, secure_options

    ip = outside_ip()
    pki = make_pki(tmp_path / "pki", ["127.0.0.1", ip])
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    script = tmp_path / "lease.js"
    script.write_text(LEASE_JS)

    def lease(address: str, options: dict[str, str] | None, env: dict[str, str] | None = None) -> \
            subprocess.CompletedProcess[str]:
        argv = ["node", str(script), str(NODE_CLIENT / "pool_client.js"), address,
                "env" if options is None else json.dumps(options)]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("ENVSCALER_")}
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=clean | (env or {}))

    with pool_serving(secure_options(ip, pki, token_file), tmp_path / "sandboxes") as address:
        for done in (lease(address, {"token": TOKEN, "caFile": str(pki.ca)}),
                     lease(address, None, {"ENVSCALER_TOKEN": TOKEN, "ENVSCALER_CA_FILE": str(pki.ca)})):
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout) == {"envs": ["env_1"], "observation": "ok"}
        # (node warns on stderr about a TLS server name that is an IP address: the client's own line is the last)
        missing = lease(address, {"caFile": str(pki.ca)})
        assert missing.returncode == 1
        assert last_line(missing) == ("ListEnvs: UNAUTHENTICATED: this server requires a bearer token: pass token= (or "
                                      "set ENVSCALER_TOKEN)")
        wrong = lease(address, {"token": "not-the-token-0123456789", "caFile": str(pki.ca)})
        assert last_line(wrong) == "ListEnvs: UNAUTHENTICATED: the bearer token is not this server's"
        clear = lease(address, {"token": TOKEN})
        assert clear.returncode == 1 and last_line(clear).startswith(f"a token goes to {address} only over TLS")


def last_line(done: subprocess.CompletedProcess[str]) -> str:
    return done.stderr.strip().splitlines()[-1]
