"""Wheel-first: the built wheel, installed into a fresh venv outside the checkout, bootstraps the same runtime
image as the checkout, stages the runtime venv from its own installed files, builds, pools and replays."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from envscaler.images.runtime_image import package_files
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

SCRIPT_HASHES = """
import hashlib, json
from envscaler.images.runtime_image import package_files
print(json.dumps({name: [str(path), hashlib.sha256(path.read_bytes()).hexdigest()]
                  for name, path in package_files().items()}))
"""
SCRIPT_STAGE = """
import sys
from pathlib import Path
from envscaler.images.runtime_image import stage
stage(Path(sys.argv[1]), "/usr/bin/python3", "{0}.{1}".format(*sys.version_info[:2]), Path(sys.argv[2]))
"""


def run(command: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{command[:3]}: {done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def built_wheel() -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """The wheel, built from a clean copy of the sources in /tmp (outside the checkout); (work, wheel, env)."""
    work = Path(tempfile.mkdtemp(prefix="envscaler-wheel-"))
    assert ROOT not in work.parents
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    try:
        # From a clean copy of the sources, as a release would be: setuptools reuses a checkout's build/ folder, so a
        # module removed since the last build would otherwise ride along.
        source = work / "source"
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "node_modules", ".pytest_cache",
            ".ruff_cache", ".hypothesis", ".mypy_cache", ".import_linter_cache", "artifacts"))
        built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                                str(work / "dist"), str(source)], cwd=work, env=env, capture_output=True, text=True,
                               timeout=300, check=False)
        assert built.returncode == 0, built.stderr[-2000:]
        assert "warning" not in built.stderr.lower().replace("warning: location", "")  # a quiet build
        (wheel,) = (work / "dist").glob("envscaler_runtime-*.whl")
        yield work, wheel, env
    finally:
        shutil.rmtree(work, ignore_errors=True)


def venv_with(work: Path, wheel: Path, env: dict[str, str], name: str, extras: str) -> Path:
    venv = work / name
    run([sys.executable, "-m", "venv", venv], work, env)
    run([venv / "bin/pip", "install", "--quiet", "--disable-pip-version-check", "-c",
         ROOT / "envscaler/images/runtime.lock", f"{wheel}{extras}"], work, env, timeout=600)
    return venv


@pytest.fixture(scope="module")
def wheel_venv(built_wheel: tuple[Path, Path, dict[str, str]]) -> tuple[Path, dict[str, str]]:
    """A fresh venv in /tmp with the wheel and its [server] extra: what runs pools."""
    work, wheel, env = built_wheel
    venv_with(work, wheel, env, "venv", "[server]")
    return work, env


def test_the_wheel_has_the_same_runtime_identity_and_stages_from_its_own_files(
        wheel_venv: tuple[Path, dict[str, str]], runtime_image: str) -> None:
    work, env = wheel_venv
    python = work / "venv/bin/python"
    installed = json.loads(run([python, "-c", SCRIPT_HASHES], work, env))
    checkout = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in package_files().items()}
    assert {name: digest for name, (_, digest) in installed.items()} == checkout
    assert all(Path(path).is_relative_to(work / "venv") for path, _ in installed.values())  # not the checkout
    out = run([work / "venv/bin/envscaler-runtime", "images", "bootstrap"], work, env)
    assert out.strip() == f"runtime image: {runtime_image}"  # same sources, same image: nothing to rebuild
    staged = work / "staged"
    run([python, "-c", SCRIPT_STAGE, staged, work / "stage.log"], work, env)
    site = next(staged.glob("opt/envscaler/lib/python*/site-packages"))
    for name, digest in checkout.items():
        assert hashlib.sha256((site / name).read_bytes()).hexdigest() == digest, name
    assert not (site / "envscaler/images").exists()  # host-side parts stay out of the image
    (metadata,) = site.glob("envscaler_runtime-*.dist-info/METADATA")
    assert "Name: envscaler-runtime" in metadata.read_text()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_build_pool_and_replay_from_the_wheel(wheel_venv: tuple[Path, dict[str, str]], runtime_image: str,
                                              engine: docker.DockerClient) -> None:
    work, env = wheel_venv
    cli = work / "venv/bin/envscaler-runtime"
    out = run([cli, "build", "--only", "env_1"], work, {**env, "COLUMNS": "200"})
    assert "env_1" in out and " 0 failed" in out
    address = f"tcp:127.0.0.1:{free_port()}"
    log = (work / "pool.log").open("wb")
    pool = subprocess.Popen([str(cli), "pool", "--size", "2", "--listen", address, "--metrics-listen", "",
                             "--only", "env_1"], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        site = next((work / "venv/lib").glob("python*/site-packages"))
        calls = site / "envscaler/examples/solutions/env_1__0115-091204.jsonl"
        deadline = time.monotonic() + 120
        while True:
            assert pool.poll() is None, (work / "pool.log").read_text()
            done = subprocess.run([str(cli), "replay", "--pool", address, "--env", "env_1", "--scenario",
                                   "0115-091204", "--calls", str(calls), "--json"], cwd=work, env=env,
                                  capture_output=True, text=True, timeout=120, check=False)
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1.0)  # the pool is still starting
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["evaluation"]["reward"] == 1.0
    finally:
        pool.send_signal(signal.SIGTERM)
        pool.wait(timeout=120)
        log.close()
    assert pool.returncode == 0, (work / "pool.log").read_text()


SLIM_CLIENT = """
import json, sys
from envscaler.client.pool_client import Pool
pool = Pool(sys.argv[1])
with pool.session("env_1", scenario="0115-091204", wait=120) as session:
    for line in open(sys.argv[2]):
        call = json.loads(line)
        assert session.call(call["name"], call["arguments"]).ok
    print(session.evaluate().reward)
"""


def test_the_slim_core_install_is_a_client_that_solves_a_scenario_through_a_pool(
        built_wheel: tuple[Path, Path, dict[str, str]], example_images: dict[str, str]) -> None:
    """`pip install envscaler-runtime` (no extra) in a fresh venv: the clients, protos and models with only what they
    need, against a pool run from the full install (this test's process)."""
    from envscaler.pool.runner import LocalPool, PoolOptions

    work, wheel, env = built_wheel
    venv = venv_with(work, wheel, env, "slim", "")
    installed = {line.split("==")[0].lower() for line in run([venv / "bin/pip", "freeze"], work, env).splitlines()}
    assert installed.isdisjoint({"docker", "rich", "openai", "mcp", "starlette", "uvicorn", "jinja2", "pygments",
                                 "jsonschema", "prometheus-client", "pyyaml", "ray"}), installed
    assert {"grpcio", "protobuf", "pydantic"} <= installed
    # The commands that serve say what to install, in one line.
    refused = subprocess.run([str(venv / "bin/envscaler-runtime"), "pool"], cwd=work, env=env, capture_output=True,
                             text=True, timeout=60, check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "pip install 'envscaler-runtime[server]'" in refused.stderr.strip().splitlines()[-1]
    calls = ROOT / "envscaler/examples/solutions/env_1__0115-091204.jsonl"
    with LocalPool(options=PoolOptions(size=1, only=["env_1"], acquire_wait=120)) as local:
        reward = run([venv / "bin/python", "-c", SLIM_CLIENT, local.address, calls], work, env, timeout=180)
    assert float(reward.strip()) == 1.0
