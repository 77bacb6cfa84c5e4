"""A process of the benchmark's own (an echo server, openenv-core) in a container
hardened like our sandboxes, listening on a Unix socket in its socket directory."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker

from envscaler.containers import launch
from envscaler.containers.hardening import Hardening, run_kwargs
from envscaler.images.engine import EngineError


@contextlib.contextmanager
def hardened(client: docker.DockerClient, image: str, command: list[str], socket_name: str, *,
             entrypoint: str | None = None, environment: dict[str, str] | None = None,
             timeout: float = 120.0) -> Iterator[Path]:
    """Run `command` in `image`; yields the host path of the socket it creates in /run/envscaler."""
    socket_dir = launch.socket_directory()
    kwargs: dict[str, Any] = run_kwargs(Hardening(privilege_split=False), socket_dir)  # our process, one uid
    kwargs["environment"] = {**kwargs["environment"], **(environment or {})}
    container = client.containers.run(image, command, entrypoint=entrypoint, detach=True,
                                      name=f"envscaler-bench-{uuid.uuid4().hex[:8]}",
                                      labels={launch.OWNER_LABEL: "bench"}, **kwargs)
    try:
        socket = socket_dir / socket_name
        deadline = time.monotonic() + timeout
        while not socket.exists():
            container.reload()
            if container.status in ("exited", "dead") or time.monotonic() > deadline:
                logs = container.logs(tail=20).decode(errors="replace")
                raise EngineError(f"{command[0]} in {image} did not start serving: {logs}")
            time.sleep(0.05)
        yield socket
    finally:
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)
        launch.remove_socket_directory(socket_dir)
