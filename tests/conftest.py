from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from envscaler.runtime.trusted.server import RunningServer, ServerConfig, serving
from envscaler.spec import Corpus, EnvSpec, Scenario, load_corpus
from envscaler.spec.served import from_spec

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "envscaler" / "examples" / "solutions"

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    return load_corpus()


@pytest.fixture
def sock_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer.
    return tmp_path_factory.mktemp("s", numbered=True)


def serve_env(spec: EnvSpec, scenarios: dict[str, Scenario], sock_dir: Path,
              config: ServerConfig | None = None) -> AbstractContextManager[RunningServer]:
    return serving(*from_spec(spec, scenarios), f"unix:{sock_dir}/env.sock", config)
