"""A client pointed at the wrong kind of server gets one line saying so: a Pool at an environment server, any client
at an HTTP port (the pool's metrics listener is one). The EnvClient-at-a-pool case needs a pool: see
tests/integration/test_wrong_server.py."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from envscaler.client import EnvClient, EnvClientError
from envscaler.client.pool_client import Pool
from envscaler.spec import Corpus
from tests.conftest import SOLUTIONS, serve_env


@pytest.fixture
def metrics_port() -> Iterator[int]:
    """A real Prometheus HTTP listener, started as the pool starts its own."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server, thread = start_http_server(port, "127.0.0.1", registry=CollectorRegistry())
    yield port
    server.shutdown()
    thread.join(timeout=5)


def one_line(exc: EnvClientError) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_a_pool_at_an_environment_server(corpus: Corpus, sock_dir: Path) -> None:
    with serve_env(corpus.env("env_1"), corpus.scenarios_of("env_1"), sock_dir), \
            Pool(f"unix:{sock_dir}/env.sock", timeout=10) as pool:
        for attempt in (lambda: pool.acquire("env_1"), pool.list_envs, pool.stats):
            with pytest.raises(EnvClientError) as err:
                attempt()
            assert "not a pool" in one_line(err.value) and err.value.code == "UNIMPLEMENTED"


def test_replay_through_a_pool_that_is_an_environment_server(corpus: Corpus, sock_dir: Path) -> None:
    with serve_env(corpus.env("env_1"), corpus.scenarios_of("env_1"), sock_dir):
        done = subprocess.run([sys.executable, "-m", "envscaler.cli", "replay", "--env", "env_1", "--scenario",
                               "0115-091204", "--calls", str(SOLUTIONS / "env_1__0115-091204.jsonl"), "--pool",
                               f"unix:{sock_dir}/env.sock"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1 and "not a pool" in done.stderr, done.stderr


def test_clients_at_an_http_port(metrics_port: int) -> None:
    with EnvClient(f"tcp:127.0.0.1:{metrics_port}", timeout=10) as env, pytest.raises(EnvClientError) as err:
        env.reset()
    assert "does not speak gRPC" in one_line(err.value) and "metrics" in str(err.value)
    with Pool(f"tcp:127.0.0.1:{metrics_port}", timeout=10) as pool:
        for attempt in (lambda: pool.acquire("env_1"), pool.list_envs):
            with pytest.raises(EnvClientError) as err:
                attempt()
            assert "does not speak gRPC" in one_line(err.value)
