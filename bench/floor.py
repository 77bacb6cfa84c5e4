"""The gRPC floor: a bare grpcio echo between two processes over a Unix socket."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from concurrent import futures
from pathlib import Path

import grpc

METHOD = "/bench.Echo/Echo"


def serve(address: str) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(8))
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("bench.Echo", {"Echo": handler})])
    server.add_insecure_port(address)
    server.start()
    server.wait_for_termination()


def echo_samples(n: int, payload: bytes = b"x" * 200) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        address = f"unix:{Path(tmp)}/echo.sock"
        process = subprocess.Popen([sys.executable, "-m", "bench.floor", address])
        try:
            with grpc.insecure_channel(address) as channel:
                grpc.channel_ready_future(channel).result(timeout=30)
                echo = channel.unary_unary(METHOD)
                for _ in range(200):
                    echo(payload)
                samples = []
                for _ in range(n):
                    started = time.perf_counter()
                    echo(payload)
                    samples.append(time.perf_counter() - started)
                return samples
        finally:
            process.kill()
            process.wait()


if __name__ == "__main__":
    serve(sys.argv[1])
