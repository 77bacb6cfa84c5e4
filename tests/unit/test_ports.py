"""Ports are exclusive for `serve`: a second server on a busy address (TCP or Unix socket) exits non-zero
with one line, and the first keeps serving."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from envscaler.client import EnvClient, EnvClientError
from envscaler.protocol.addresses import AddressInUse, ensure_free


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(listen: str) -> list[str]:
    return [sys.executable, "-m", "envscaler.cli", "serve", "--env", "env_1", "--listen", listen]


def wait_serving(address: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the first server exited"
        try:
            with EnvClient(address, timeout=2) as client:
                client.describe()
                return
        except EnvClientError:  # not listening yet
            time.sleep(0.2)
    pytest.fail("the first server did not start")


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_a_second_serve_on_a_busy_address_is_refused(kind: str, sock_dir: Path) -> None:
    listen = f"tcp:127.0.0.1:{free_port()}" if kind == "tcp" else f"unix:{sock_dir}/env.sock"
    shown = listen[4:] if kind == "tcp" else listen
    first = subprocess.Popen(serve(listen), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_serving(listen, first)
        second = subprocess.run(serve(listen), capture_output=True, text=True, timeout=60, check=False)
        assert second.returncode == 2
        assert second.stderr.strip() == f"envscaler-runtime serve: address {shown} is in use", second.stderr
        with EnvClient(listen, timeout=5) as client:  # the first still owns the address and serves
            assert client.describe().env_id == "env_1"
            client.reset("0115-091204")
            assert client.call("find_member_by_name", {"name": "Ana Ruiz"}).result["success"] is True
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
    assert first.returncode == 0


def test_ensure_free_sees_a_grpc_listener_and_frees_after_it_stops() -> None:
    from concurrent import futures

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))  # grpc's default: SO_REUSEPORT on
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with pytest.raises(AddressInUse, match=f"^address 127.0.0.1:{port} is in use$"):
            ensure_free(f"127.0.0.1:{port}")
    finally:
        server.stop(0).wait()
    ensure_free(f"127.0.0.1:{port}")  # free again (TIME_WAIT does not count as in use)
