"""Test your own environments against real hardened containers (the third front door).

    from envscaler.testing import EnvScalerContainer

    with EnvScalerContainer("env_todo", envs="envs.jsonl", scenarios="scenarios.jsonl") as container:
        with container.client() as env:
            env.reset("t1")

`EnvScalerContainer` is a testcontainers container: the environment's image is built on demand by the project's
own image code, it runs with the full default hardening, and it needs no Ryuk. Its containers carry a pool label
whose lock this process holds, so whatever a crashed test leaves behind is reaped by the next pool or test session
(envscaler/pool/liveness.py). Needs testcontainers (`pip install 'envscaler-runtime[testing]'`).
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer

from envscaler.client import EnvClient
from envscaler.containers.hardening import Hardening, run_kwargs
from envscaler.containers.launch import (
    EnvContainer,
    remove_socket_directory,
    socket_directory,
    wait_ready,
)
from envscaler.containers.owners import process_owner
from envscaler.images.build import ensure_runtime, env_image
from envscaler.images.engine import connect
from envscaler.pool.liveness import pool_labels, reap_dead_pools
from envscaler.spec import Corpus, load_corpus

__all__ = ["EnvScalerContainer", "owner"]

_ryuk_lock = threading.Lock()


def owner() -> str:
    """This process's lock id: its containers are labelled with it and reaped once the process is gone."""
    return process_owner()


@contextlib.contextmanager
def _without_ryuk() -> Iterator[None]:
    """Our containers need no Ryuk (they are reaped by label); other containers of the process keep its setting."""
    with _ryuk_lock:
        previous = testcontainers_config._ryuk_disabled
        testcontainers_config.ryuk_disabled = True
        try:
            yield
        finally:
            testcontainers_config._ryuk_disabled = previous


def _corpus(envs: str | Path | None, scenarios: str | Path | None) -> Corpus:
    return load_corpus(Path(envs) if envs else None, Path(scenarios) if scenarios else None)


class EnvScalerContainer(DockerContainer):
    """One environment's image in a hardened container; `client()` is an `EnvClient` connected to it.

    `envs`/`scenarios` are EnvScaler JSON/JSONL files (the bundled example corpus when omitted), or pass `corpus`.
    """

    def __init__(self, env_id: str, envs: str | Path | None = None, scenarios: str | Path | None = None, *,
                 corpus: Corpus | None = None, hardening: Hardening | None = None, base: str | None = None,
                 ready_timeout: float = 60.0) -> None:
        self.env_id = env_id
        self.corpus = corpus if corpus is not None else _corpus(envs, scenarios)
        if env_id not in self.corpus.envs:
            raise ValueError(f"no environment {env_id!r} in the corpus (it has {', '.join(sorted(self.corpus.envs))})")
        self.hardening = hardening or Hardening()
        self.base = base
        self.ready_timeout = ready_timeout
        self.socket_dir: Path | None = None
        super().__init__("envscaler-env/unbuilt")  # the real tag is known once the image is built, in start()

    def _configure_hardening(self, socket_dir: Path) -> None:
        kwargs = run_kwargs(self.hardening, socket_dir)
        volumes, tmpfs, environment = kwargs.pop("volumes"), kwargs.pop("tmpfs"), kwargs.pop("environment")
        self.env = environment
        self.volumes, self.tmpfs = {}, {}
        for host, mount in volumes.items():
            self.with_volume_mapping(host, mount["bind"], mount["mode"])
        for path, options in tmpfs.items():
            self.with_tmpfs_mount(path, options)  # testcontainers passes it through as the options
        # network=None: testcontainers would otherwise attach its own network when run inside a container.
        self.with_kwargs(labels=pool_labels(owner()), network=None, **kwargs)

    def start(self) -> EnvScalerContainer:
        engine = connect()
        reap_dead_pools(engine)  # what crashed test processes left behind
        log = Path(tempfile.gettempdir()) / "envscaler-testing-images.log"
        self.image = env_image(engine, self.corpus, self.env_id, ensure_runtime(engine, self.base, log))
        self.socket_dir = socket_directory()
        try:
            self._configure_hardening(self.socket_dir)
            with _without_ryuk():
                super().start()
            wait_ready(EnvContainer(self.get_wrapped_container(), self.socket_dir, self.hardening.privilege_split),
                       self.ready_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def address(self) -> str:
        if self.socket_dir is None:
            raise RuntimeError("the container is not started")
        return f"unix:{self.socket_dir}/env.sock"

    def client(self, timeout: float = 30.0) -> EnvClient:
        """A connected client of this container's server (close it, or use it as a context manager)."""
        return EnvClient(self.address, timeout=timeout)

    def stop(self, force: bool = True, delete_volume: bool = True) -> None:
        try:
            super().stop(force, delete_volume)
        finally:
            if self.socket_dir is not None:
                remove_socket_directory(self.socket_dir)
                self.socket_dir = None

