"""An EnvClient pointed at a pool, or any client at the pool's metrics port, gets one line saying so."""

from __future__ import annotations

import socket

import pytest

from envscaler.client import EnvClient, EnvClientError
from envscaler.client.pool_client import Pool
from envscaler.pool.runner import LocalPool, PoolOptions

pytestmark = pytest.mark.integration


def test_wrong_clients_at_a_pool(example_images: dict[str, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        metrics = f"127.0.0.1:{probe.getsockname()[1]}"
    with LocalPool(options=PoolOptions(size=1, only=["env_1"], metrics_listen=metrics)) as local:
        with EnvClient(local.address, timeout=10) as env, pytest.raises(EnvClientError) as err:
            env.reset("0115-091204")
        assert "not an environment server" in str(err.value) and "Pool(address)" in str(err.value)
        for client in (EnvClient(f"tcp:{metrics}", timeout=10), Pool(f"tcp:{metrics}", timeout=10)):
            with client, pytest.raises(EnvClientError) as err:
                client.reset() if isinstance(client, EnvClient) else client.acquire("env_1")
            assert "does not speak gRPC" in str(err.value) and "\n" not in str(err.value)
        assert local.pool.list_envs().envs[0].env_id == "env_1"  # the right client at the right address works
