from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from envscaler.client import EnvClient
from envscaler.runtime.server import RunningServer, ServerConfig, serving
from envscaler.spec import Corpus, EnvSpec, Scenario, load_corpus

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "examples" / "solutions"

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    return load_corpus()


@pytest.fixture
def sock_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer.
    return tmp_path_factory.mktemp("s", numbered=True)


def serve_env(spec: EnvSpec, scenarios: dict[str, Scenario], sock_dir: Path,
              config: ServerConfig | None = None):
    return serving(spec, scenarios, f"unix:{sock_dir}/env.sock", config)


@pytest.fixture
def env_server(sock_dir: Path, request: pytest.FixtureRequest) -> Iterator[tuple[RunningServer, EnvClient]]:
    """A server for a spec given by indirect parametrization: (spec, scenarios, config)."""
    spec, scenarios, config = request.param
    with serve_env(spec, scenarios, sock_dir, config) as running, EnvClient(running.address) as client:
        yield running, client
