"""openenv-core in a container built from our base image, serving the same
environment and scenario as the benchmark's EnvService, hardened the same way.

The image is built once per (openenv-core version, adapter, environment, base):
openenv-core and its dependencies are installed from PyPI on the host into a
staging directory, then copied over the base.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import docker

from bench.sandboxed import hardened
from envscaler.images.engine import EngineError, image_exists
from envscaler.protocol.addresses import SOCKET_DIR
from envscaler.spec.models import EnvSpec, Scenario

OPENENV = "openenv-core==0.3.0"
HERE = Path(__file__).resolve().parent
SITE = Path.home() / ".cache" / "envscaler-runtime" / OPENENV.replace("==", "-") / "site"
DOCKERFILE = """FROM {base}
COPY site /opt/openenv
COPY adapter.py env.json /opt/bench/
ENV PYTHONPATH=/opt/openenv:/opt/bench HOME=/tmp PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/bench
"""


def stage_site(log: Path) -> Path:
    """openenv-core with every dependency it declares, installed from PyPI for this host's Python."""
    if (SITE / "openenv").is_dir():
        return SITE
    staging = SITE.with_name(f"site-{uuid.uuid4().hex[:8]}")
    with log.open("ab") as out:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                               "--no-compile", "--target", str(staging), OPENENV],
                              stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise EngineError(f"pip install {OPENENV} failed; see {log}")
    staging.rename(SITE)
    return SITE


def build_image(client: docker.DockerClient, base: str, spec: EnvSpec, scenario: Scenario, log: Path) -> str:
    env_json = json.dumps({"env_class_code": spec.env_class_code, "env_class_name": spec.env_class_name,
                           "init_config": scenario.init_config, "task": scenario.task}, sort_keys=True)
    base_id = client.images.get(base).id
    digest = hashlib.sha256("\0".join([OPENENV, (HERE / "adapter.py").read_text(), env_json, base_id,
                                       DOCKERFILE]).encode()).hexdigest()
    tag = f"envscaler-bench-openenv:{digest[:12]}"
    if image_exists(client, tag):
        return tag
    site = stage_site(log)
    with tempfile.TemporaryDirectory(prefix="envscaler-openenv-") as tmp:
        context = Path(tmp)
        shutil.copytree(site, context / "site", copy_function=os.link)
        shutil.copy(HERE / "adapter.py", context / "adapter.py")
        (context / "env.json").write_text(env_json)
        (context / "Dockerfile").write_text(DOCKERFILE.format(base=base))
        client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    return tag


def serving(client: docker.DockerClient, image: str) -> contextlib.AbstractContextManager[Path]:
    """Run the OpenEnv server under the sandbox's hardening; yields its Unix socket on the host."""
    command = ["python3", "-m", "uvicorn", "adapter:app", "--uds", f"{SOCKET_DIR}/openenv.sock",
               "--log-level", "warning", "--no-access-log"]
    return hardened(client, image, command, "openenv.sock",
                    environment={"PYTHONPATH": "/opt/openenv:/opt/bench", "HOME": "/tmp"})


class OpenEnvCaller:
    """The client (bench/openenv/client.py) in its own process: `samples(n)` times n steps."""

    def __init__(self, socket: Path, tool: str, arguments: dict[str, Any]) -> None:
        env = {**os.environ, "PYTHONPATH": str(SITE)}
        self.process = subprocess.Popen([sys.executable, str(HERE / "client.py"), str(socket), tool,
                                         json.dumps(arguments)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=env)
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        if not ready:
            raise EngineError("the openenv-core client could not start a session")

    def samples(self, n: int) -> list[float]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{n}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise EngineError("the openenv-core client stopped")
        return [float(x) for x in json.loads(line)]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=10)
