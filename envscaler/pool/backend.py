"""What the pool needs from whatever runs its sandboxes: the seam between the pool's logic and Docker (today),
Ray or Kubernetes (later).

Every method blocks (the manager runs them in threads): engines' clients are synchronous, and an event stream is a
blocking iterator. A backend owns isolation (it applies the Hardening it is given) and cleanup of sandboxes whose
owner is gone; the pool owns which sandboxes exist and who may use them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from envscaler.containers.hardening import Hardening
from envscaler.pool.failures import StartFailure


class Sandbox(Protocol):
    """A backend's handle on one sandbox; `name` is what its events and listings call it."""

    @property
    def name(self) -> str: ...


SandboxT = TypeVar("SandboxT", bound=Sandbox)


@dataclass(frozen=True)
class SandboxAddress:
    """Where the pool reaches a serving sandbox's server, on the host."""

    grpc: str  # a gRPC target, e.g. "unix:/tmp/envscaler-…/sock/env.sock"
    session_socket: str  # the path of its session socket (envscaler/protocol/framing.py)
    route_dir: str  # the directory the direct session sockets it opens (EndEpisode.route) appear in


@dataclass(frozen=True)
class SandboxEvent:
    """The engine says a sandbox died (`oom`: killed for memory)."""

    name: str
    kind: Literal["die", "oom"]


class EventStream(Protocol):
    """A blocking iterator of events that `close` ends (from another thread); it raises when the engine is lost."""

    def __iter__(self) -> Iterator[SandboxEvent]: ...

    def close(self) -> None: ...


class StartFailed(Exception):
    """A sandbox that did not come to serve, with what it left behind (why it died, its last log lines)."""

    def __init__(self, message: str, failure: StartFailure) -> None:
        super().__init__(message)
        self.failure = failure


class SandboxBackend(Protocol[SandboxT]):
    def start(self, image: str, labels: Mapping[str, str], hardening: Hardening) -> SandboxT:
        """Create and start a sandbox of `image` carrying `labels`; raises on a refusal (any exception)."""
        ...

    def wait_ready(self, sandbox: SandboxT, timeout: float) -> None:
        """Until its server serves, verified as the trusted server; StartFailed if it dies or is not ready in time."""
        ...

    def address(self, sandbox: SandboxT) -> SandboxAddress: ...

    def verify_route(self, sandbox: SandboxT, path: str) -> None:
        """The route (a lease's direct session socket) at `path` is served by the sandbox's trusted server; raises
        (any exception, its message the reason) when it is not."""
        ...

    def died_before_serving(self, sandbox: SandboxT) -> StartFailed:
        """Why a sandbox that the engine reported dead during its start died (OOM, exit status, last output)."""
        ...

    def remove(self, sandbox: SandboxT) -> bool:
        """Remove it (gone already is fine); False when the engine could not be reached (the caller retries)."""
        ...

    def events(self, labels: Mapping[str, str]) -> EventStream:
        """Deaths of sandboxes carrying `labels`, from now on."""
        ...

    def list_running(self, labels: Mapping[str, str]) -> set[str]:
        """The names of the running sandboxes carrying `labels` (to catch deaths missed while events were down)."""
        ...

    def reap(self, labels: Mapping[str, str]) -> int:
        """Remove every sandbox carrying `labels`, running or not; returns how many."""
        ...

    def reap_orphans(self) -> int:
        """Remove the sandboxes whose owner (a pool, a process) is gone; returns how many."""
        ...
