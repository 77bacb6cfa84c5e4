"""Every SandboxBackend implements the whole protocol with its signatures (until a type checker runs in CI, this is
what keeps the Docker backend and the test backend from drifting from envscaler/pool/backend.py)."""

from __future__ import annotations

import inspect

import pytest

from envscaler.pool.backend import SandboxBackend
from envscaler.pool.docker_backend import DockerBackend
from tests.unit.fake_backend import FakeBackend

METHODS = sorted(name for name, value in vars(SandboxBackend).items()
                 if inspect.isfunction(value) and not name.startswith("_"))


def test_the_protocol_is_what_the_pool_needs() -> None:
    assert METHODS == ["address", "died_before_serving", "events", "list_running", "reap", "reap_orphans", "remove",
                       "start", "verify_route", "wait_ready"]


@pytest.mark.parametrize("backend", [DockerBackend, FakeBackend])
@pytest.mark.parametrize("method", METHODS)
def test_backends_implement_each_method_with_its_parameters(backend: type, method: str) -> None:
    wanted = inspect.signature(getattr(SandboxBackend, method))
    given = inspect.signature(getattr(backend, method))
    assert list(given.parameters) == list(wanted.parameters), f"{backend.__name__}.{method}{given} != {wanted}"
