"""One fresh sandbox serving one environment, the strongest available: a hardened
container when an engine and the runtime image exist, else a worker process
behind a server in a child process. Used by `replay` and by synthesis."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from docker import DockerClient

from envscaler.client.env_client import EnvClient
from envscaler.containers.launch import running
from envscaler.containers.process import ProcessStartError, serving_process
from envscaler.images.build import ensure_runtime, env_image, existing_runtime
from envscaler.images.engine import EngineError, connect
from envscaler.protocol.options import ServerOptions
from envscaler.spec.loader import Corpus
from envscaler.spec.models import EnvSpec, Scenario
from envscaler.spec.served import from_spec

Mode = Literal["auto", "container", "process"]


class SandboxError(RuntimeError):
    """The sandbox could not be started; the message says why."""


def _container_runtime(mode: Mode, base: str | None, log: Path) -> tuple[DockerClient, str] | None:
    try:
        client = connect(timeout=30)
    except EngineError:
        if mode == "auto":
            return None
        raise
    runtime = existing_runtime(client, base)
    if runtime is None:
        if mode == "auto":
            return None
        runtime = ensure_runtime(client, base, log)
    return client, runtime


@contextlib.contextmanager
def open_sandbox(spec: EnvSpec, scenarios: dict[str, Scenario], mode: Mode = "auto", base: str | None = None,
                 config: ServerOptions | None = None, timeout: float = 30.0) -> Iterator[tuple[EnvClient, str]]:
    """Yields a client of the sandbox and a description of it."""
    log = Path(tempfile.gettempdir()) / "envscaler-sandbox-images.log"
    try:
        found = None if mode == "process" else _container_runtime(mode, base, log)
        if found is not None:
            client, runtime = found
            corpus = Corpus(envs={spec.env_id: spec}, scenarios={spec.env_id: scenarios})
            image = env_image(client, corpus, spec.env_id, runtime)
            with running(client, image, owner=f"sandbox-{os.getpid()}") as env, \
                    EnvClient(env.address, timeout=timeout) as env_client:
                yield env_client, f"hardened container ({image})"
            return
    except (EngineError, ValueError) as exc:
        raise SandboxError(str(exc)) from None
    try:
        with serving_process(*from_spec(spec, scenarios), config) as address, \
                EnvClient(address, timeout=timeout) as env_client:
            yield env_client, "worker process (no container available)"
    except ProcessStartError as exc:
        raise SandboxError(str(exc)) from None
