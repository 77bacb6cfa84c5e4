"""pytest plugin (entry point `envscaler`): fixtures that run your environments in real hardened containers.

    # test_my_env.py
    import pytest
    pytestmark = pytest.mark.envscaler(envs="envs.jsonl", scenarios="scenarios.jsonl", env_id="env_todo")

    @pytest.mark.envscaler(scenario="t1")
    def test_solves(env_session):
        env_session.call("add_todo", {"title": "milk"})
        assert env_session.evaluate().reward == 1.0

Where the corpus comes from, closest first: the `envscaler` marker (paths relative to the test file), the
`envscaler_envs`/`envscaler_scenarios` fixtures (override them in a conftest.py), the ini options of the same names
(relative to the ini file), else the bundled example corpus. One pool per corpus is started the first time a test
asks for it and stopped at the end of the session; nothing starts (nor is Docker needed) until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MARKER = "envscaler"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("envscaler_envs", "EnvScaler environments file for the envscaler fixtures (default: the bundled "
                  "example corpus)", default="")
    parser.addini("envscaler_scenarios", "EnvScaler scenarios file for the envscaler fixtures (default: the "
                  "bundled example corpus)", default="")
    parser.addini("envscaler_pool_size", "containers in each envscaler test pool (default: 2)", default="2")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(env_id=None, scenario=None, envs=None, scenarios=None): which "
                                       "environment, scenario and corpus the envscaler fixtures use")


def _ini_path(config: pytest.Config, name: str) -> Path | None:
    value = str(config.getini(name) or "")
    if not value:
        return None
    base = config.inipath.parent if config.inipath else config.rootpath
    return (base / value).resolve()


def _marked(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The `envscaler` markers' keyword arguments, the closest (function over module) winning."""
    merged: dict[str, Any] = {}
    for mark in reversed(list(request.node.iter_markers(MARKER))):  # farthest first, so closer ones overwrite
        if mark.args:
            merged["env_id"] = mark.args[0]
        merged.update(mark.kwargs)
    return merged


@pytest.fixture(scope="session")
def envscaler_envs(pytestconfig: pytest.Config) -> Path | None:
    """The environments file (override this fixture, or set the `envscaler_envs` ini option)."""
    return _ini_path(pytestconfig, "envscaler_envs")


@pytest.fixture(scope="session")
def envscaler_scenarios(pytestconfig: pytest.Config) -> Path | None:
    """The scenarios file (override this fixture, or set the `envscaler_scenarios` ini option)."""
    return _ini_path(pytestconfig, "envscaler_scenarios")


class _Pools:
    """One LocalPool per corpus, started on first use, all stopped at the end of the session."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.running: dict[tuple[Path | None, Path | None], Any] = {}

    def get(self, envs: Path | None, scenarios: Path | None) -> Any:
        key = (envs, scenarios)
        if key not in self.running:
            from envscaler.images.engine import EngineError
            from envscaler.testing import local_pool  # here: a pytest run that uses no fixture imports nothing

            local = local_pool(envs, scenarios, size=self.size)
            try:
                self.running[key] = local.__enter__()
            except (EngineError, ValueError, OSError) as exc:
                local.__exit__(None, None, None)
                pytest.fail(f"envscaler: cannot start a pool: {exc}", pytrace=False)
        return self.running[key]

    def close(self) -> None:
        for local in self.running.values():
            local.__exit__(None, None, None)
        self.running.clear()


@pytest.fixture(scope="session")
def _envscaler_pools(pytestconfig: pytest.Config) -> Iterator[_Pools]:
    pools = _Pools(int(pytestconfig.getini("envscaler_pool_size") or 2))
    yield pools
    pools.close()


@pytest.fixture
def envscaler_pool(request: pytest.FixtureRequest, _envscaler_pools: _Pools, envscaler_envs: Path | None,
                   envscaler_scenarios: Path | None) -> Any:
    """A running `LocalPool` for this test's corpus: `envscaler_pool.session(env_id, scenario)` leases a session;
    `envscaler_pool.pool` is its `Pool` client."""
    marked = _marked(request)
    here = request.path.parent

    def resolve(value: Any, fallback: Path | None) -> Path | None:
        return (here / value).resolve() if value else fallback

    return _envscaler_pools.get(resolve(marked.get("envs"), envscaler_envs),
                                resolve(marked.get("scenarios"), envscaler_scenarios))


@pytest.fixture
def env_session(request: pytest.FixtureRequest, envscaler_pool: Any) -> Iterator[Any]:
    """A leased, reset session (`PoolSession`: call / state / evaluate) of the marked env_id and scenario."""
    marked = _marked(request)
    env_id = marked.get("env_id")
    if not env_id:
        pytest.fail("env_session needs @pytest.mark.envscaler(env_id=..., scenario=...)", pytrace=False)
    with envscaler_pool.pool.session(env_id, marked.get("scenario")) as session:
        yield session
