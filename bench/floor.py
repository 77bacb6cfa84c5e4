"""The gRPC floors, measured in the same run as what they bound: a bare grpcio echo
between two processes over a Unix socket, unary and bidi-stream, and the
throughput of a grpc.aio echo server under many concurrent callers."""

from __future__ import annotations

import asyncio
import queue
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path

import grpc
import grpc.aio

SERVICE = "bench.Echo"


def _handlers() -> grpc.GenericRpcHandler:
    async def unary(request: bytes, context: object) -> bytes:
        return request

    async def stream(requests: AsyncIterator[bytes], context: object) -> AsyncIterator[bytes]:
        async for request in requests:
            yield request

    return grpc.method_handlers_generic_handler(SERVICE, {
        "Echo": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.stream_stream_rpc_method_handler(stream),
    })


async def serve_aio(address: str) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([_handlers()])
    server.add_insecure_port(address)
    await server.start()
    await server.wait_for_termination()


def serve_sync(address: str) -> None:
    """What an EnvService is: a grpcio server on a thread pool."""
    def stream(requests: Iterator[bytes], context: object) -> Iterator[bytes]:
        yield from requests

    server = grpc.server(futures.ThreadPoolExecutor(8))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, {
        "Echo": grpc.unary_unary_rpc_method_handler(lambda request, context: request),
        "Stream": grpc.stream_stream_rpc_method_handler(stream),
    })])
    server.add_insecure_port(address)
    server.start()
    server.wait_for_termination()


@contextmanager
def echo_server(kind: str) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        address = f"unix:{Path(tmp)}/echo.sock"
        process = subprocess.Popen([sys.executable, "-m", "bench.floor", kind, address])
        try:
            with grpc.insecure_channel(address) as channel:
                grpc.channel_ready_future(channel).result(timeout=30)
            yield address
        finally:
            process.kill()
            process.wait()


def unary_echo(channel: grpc.Channel, payload: bytes = b"x" * 200) -> Callable[[], object]:
    echo = channel.unary_unary(f"/{SERVICE}/Echo")
    return lambda: echo(payload)


def stream_echo(channel: grpc.Channel, payload: bytes = b"x" * 200) -> tuple[Callable[[], object], Callable[[], None]]:
    """One message there and back on an open bidi stream, driven the way our blocking clients drive theirs."""
    requests: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    responses = channel.stream_stream(f"/{SERVICE}/Stream")(iter(requests.get, None))

    def once() -> object:
        requests.put(payload)
        return next(responses)

    return once, lambda: requests.put(None)


def echo_samples(n: int, payload: bytes = b"x" * 200) -> list[float]:
    """Unary round trips against the sync echo server (what an EnvService is)."""
    with echo_server("sync") as address, grpc.insecure_channel(address) as channel:
        echo = channel.unary_unary(f"/{SERVICE}/Echo")
        for _ in range(200):
            echo(payload)
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            echo(payload)
            samples.append(time.perf_counter() - started)
        return samples


def stream_samples(n: int, payload: bytes = b"x" * 200) -> list[float]:
    """One message there and back on an open bidi stream."""
    async def run(address: str) -> list[float]:
        async with grpc.aio.insecure_channel(address) as channel:
            call = channel.stream_stream(f"/{SERVICE}/Stream")()
            samples = []
            for i in range(n + 200):
                started = time.perf_counter()
                await call.write(payload)
                await call.read()
                if i >= 200:
                    samples.append(time.perf_counter() - started)
            await call.done_writing()
            return samples

    with echo_server("aio") as address:
        return asyncio.run(run(address))


def aio_throughput(concurrency: int, seconds: float, payload: bytes = b"x" * 200) -> float:
    """Calls per second of a grpc.aio echo server with `concurrency` callers in one client process."""
    async def run(address: str) -> float:
        async with grpc.aio.insecure_channel(address) as channel:
            echo = channel.unary_unary(f"/{SERVICE}/Echo")
            until = time.perf_counter() + seconds
            counts = [0] * concurrency

            async def caller(i: int) -> None:
                while time.perf_counter() < until:
                    await echo(payload)
                    counts[i] += 1

            started = time.perf_counter()
            await asyncio.gather(*(caller(i) for i in range(concurrency)))
            return sum(counts) / (time.perf_counter() - started)

    with echo_server("aio") as address:
        return asyncio.run(run(address))


if __name__ == "__main__":
    if sys.argv[1] == "aio":
        asyncio.run(serve_aio(sys.argv[2]))
    else:
        serve_sync(sys.argv[2])
