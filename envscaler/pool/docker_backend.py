"""The pool's sandboxes as hardened Docker containers (envscaler/containers/launch.py,
envscaler/containers/owners.py)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import docker

from envscaler.containers import launch, owners
from envscaler.containers.hardening import Hardening
from envscaler.pool.backend import SandboxAddress, SandboxEvent, StartFailed


def _label_filter(labels: Mapping[str, str]) -> list[str]:
    return [f"{key}={value}" for key, value in labels.items()]


class DockerEvents:
    """The engine's container event stream, as SandboxEvents."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[SandboxEvent]:
        for event in self._stream:
            name = event.get("Actor", {}).get("Attributes", {}).get("name", "")
            yield SandboxEvent(name, "oom" if event.get("status", "die") == "oom" else "die")

    def close(self) -> None:
        self._stream.close()


class DockerBackend:
    """SandboxBackend over one Docker engine; its sandboxes are launch.EnvContainers."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    def start(self, image: str, labels: Mapping[str, str], hardening: Hardening) -> launch.EnvContainer:
        # launch.start labels it with its owner (labels name the pool's own, OWNER_LABEL and POOL_LABEL).
        return launch.start(self.client, image, labels.get(launch.OWNER_LABEL, ""), hardening, dict(labels))

    def wait_ready(self, sandbox: launch.EnvContainer, timeout: float) -> None:
        try:
            launch.wait_ready(sandbox, timeout)
        except launch.StartError as exc:
            raise StartFailed(str(exc), exc.failure) from None

    def address(self, sandbox: launch.EnvContainer) -> SandboxAddress:
        return SandboxAddress(sandbox.address, sandbox.session_socket, str(sandbox.socket_dir))

    def verify_route(self, sandbox: launch.EnvContainer, path: str) -> None:
        if sandbox.privilege_split:  # without it the server's uid is the sandbox's: nothing to tell apart
            launch.verify_socket(sandbox, Path(path))

    def died_before_serving(self, sandbox: launch.EnvContainer) -> StartFailed:
        sandbox.container.reload()
        error = launch.died_before_serving(sandbox)
        return StartFailed(str(error), error.failure)

    def remove(self, sandbox: launch.EnvContainer) -> bool:
        return launch.remove(sandbox)

    def events(self, labels: Mapping[str, str]) -> DockerEvents:
        filters = {"type": "container", "event": ["die", "oom"], "label": _label_filter(labels)}
        return DockerEvents(self.client.events(decode=True, filters=filters))

    def list_running(self, labels: Mapping[str, str]) -> set[str]:
        running = self.client.containers.list(filters={"label": _label_filter(labels), "status": "running"},
                                              ignore_removed=True)
        return {str(c.name) for c in running}

    def reap(self, labels: Mapping[str, str]) -> int:
        leftovers = self.client.containers.list(all=True, filters={"label": _label_filter(labels)}, ignore_removed=True)
        for container in leftovers:
            launch.remove_leftover(container)
        return len(leftovers)

    def reap_orphans(self) -> int:
        return owners.reap_dead(self.client)
