"""Ports are exclusive: a second pool on a busy address exits non-zero with one line, starts no container
and takes no lock, and the first pool keeps serving its leases."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import docker
import grpc
import pytest

from envscaler.client import EnvClientError
from envscaler.client.pool_client import Pool
from envscaler.pool.liveness import LOCK_DIR, POOL_LABEL, is_alive

pytestmark = pytest.mark.integration


def free_ports(count: int) -> list[int]:
    """Distinct ports free now (all probes held open at once, so none is handed out twice)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def pool_command(listen: str, metrics: str) -> list[str]:
    return [sys.executable, "-m", "envscaler.cli", "pool", "--size", "1", "--listen", listen,
            "--metrics-listen", metrics, "--only", "env_1"]


def pool_ids(engine: docker.DockerClient) -> set[str]:
    return {c.labels[POOL_LABEL] for c in engine.containers.list(ignore_removed=True,
            all=True, filters={"label": POOL_LABEL})}


def lock_files() -> set[str]:
    return {p.stem for p in LOCK_DIR.glob("*.lock")}


def wait_serving(pool: Pool, process: subprocess.Popen[bytes], log: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the first pool exited: {log.read_text()[-3000:]}"
        try:
            if pool.stats().containers >= 1:
                return
        except (EnvClientError, grpc.RpcError):  # not listening yet
            pass
        time.sleep(0.3)
    pytest.fail("the first pool did not start")


def test_a_second_pool_on_a_busy_address_is_refused(engine: docker.DockerClient, example_images: dict[str, str],
                                                    tmp_path: Path) -> None:
    port, metrics, spare = free_ports(3)
    env = os.environ.copy()  # the shared lock directory: a private one would make this pool reap others' pools
    log = (tmp_path / "first.log").open("wb")
    first = subprocess.Popen(pool_command(f"tcp:127.0.0.1:{port}", f"127.0.0.1:{metrics}"), env=env,
                             stdout=log, stderr=subprocess.STDOUT)
    pool = Pool(f"tcp:127.0.0.1:{port}")
    try:
        wait_serving(pool, first, tmp_path / "first.log")
        session = pool.acquire("env_1", "0115-091204", wait=120)
        assert session.call("find_member_by_name", {"name": "Ana Ruiz"}).result["success"] is True
        pools, locks = pool_ids(engine), lock_files()
        for listen, metrics_listen, busy in [(f"tcp:127.0.0.1:{port}", "", f"127.0.0.1:{port}"),
                                             (f"tcp:127.0.0.1:{spare}", f"127.0.0.1:{metrics}",
                                              f"127.0.0.1:{metrics}")]:
            second = subprocess.run(pool_command(listen, metrics_listen), env=env, capture_output=True, text=True,
                                    timeout=180, check=False)
            assert second.returncode != 0
            assert second.stderr.strip() == f"envscaler-runtime pool: address {busy} is in use", second.stderr
            # The engine and the lock directory are shared: pools started meanwhile by others hold their locks.
            assert [p for p in pool_ids(engine) - pools if not is_alive(p)] == []
            assert [p for p in lock_files() - locks if not is_alive(p)] == []
        with socket.socket() as probe:  # the refused pool left no listener behind on its own address either
            assert probe.connect_ex(("127.0.0.1", spare)) != 0
        # The first pool serves on: the same lease goes on, its stats count only its own work.
        assert session.call("checkout_book", {"member_id": "M001", "book_id": "B003", "loan_days": 21}).ok
        assert pool.stats().acquired == 1
        session.release()
        with pytest.raises(EnvClientError):
            session.call("search_books", {"query": "Sapiens"})
    finally:
        pool.close()
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=120)
        log.close()
    assert first.returncode == 0, (tmp_path / "first.log").read_text()
