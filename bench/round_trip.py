"""Tool-call round trips along every path, interleaved: each round runs a short
block of calls on every path in turn, so drift on a shared machine lands on all
of them alike.

The paths, from the bottom up: the method called in-process (EnvScaler's way); a
raw Unix-socket echo into a `--network none` container (the transport floor); a
bare grpcio echo, unary and bidi-stream (the gRPC floor); our EnvService direct,
on a session stream and unary; the pool, likewise; openenv-core over its
WebSocket, serving the same environment.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import docker

from bench.sandboxed import hardened
from envscaler.images.env_image import PYTHON
from envscaler.protocol.addresses import SOCKET_DIR

Block = Callable[[int], list[float]]
ECHO_SERVER = """
import os, socket
server = socket.socket(socket.AF_UNIX)
server.bind("{path}")
server.listen(1)
conn, _ = server.accept()
while data := conn.recv(65536):
    conn.sendall(data)
"""


def timed(fn: Callable[[], object]) -> Block:
    def block(n: int) -> list[float]:
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - started)
        return samples

    return block


def interleaved(paths: dict[str, Block], rounds: int, per_round: int, warmup: int = 100) -> dict[str, list[float]]:
    for block in paths.values():
        block(warmup)
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, block in paths.items():
            samples[name] += block(per_round)
    return samples


def uds_echo_container(client: docker.DockerClient, image: str) -> contextlib.AbstractContextManager[Path]:
    """A raw echo server in a sandbox container (same image, same hardening); yields its socket."""
    return hardened(client, image, ["-c", ECHO_SERVER.format(path=f"{SOCKET_DIR}/echo.sock")], "echo.sock",
                    entrypoint=PYTHON)


def raw_echo(path: Path, payload: bytes = b"x" * 200) -> tuple[Callable[[], object], Callable[[], None]]:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(path))

    def once() -> bytes:
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            received += sock.recv(65536)
        return received

    return once, sock.close
