"""Run a pool: manager + gRPC front door (+ metrics), until told to stop.

`run_pool` is what the CLI runs; `LocalPool` runs the same thing in a background
thread of the calling process, for single-script use and tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import start_http_server

from envscaler.containers.hardening import Hardening
from envscaler.images.build import build_envs, ensure_runtime
from envscaler.images.engine import EngineError, connect
from envscaler.pool import event_loop, session_socket
from envscaler.pool.backend import SandboxBackend
from envscaler.pool.docker_backend import DockerBackend
from envscaler.pool.manager import PoolConfig, PoolManager
from envscaler.pool.service import PoolServicer
from envscaler.protocol.addresses import (
    NO_REUSEPORT,
    bind_failure,
    ensure_free,
    grpc_address,
    in_use,
    session_socket_path,
)
from envscaler.protocol.auth import AsyncTokenInterceptor, read_token, server_security
from envscaler.protocol.reflection import enable_reflection
from envscaler.protocol.services import service_handler
from envscaler.spec.loader import Corpus, load_corpus
from envscaler.v1 import pool_pb2 as ppb

SERVICE_NAME = "envscaler.v1.PoolService"
MESSAGE_CAP = 64 << 20


@dataclass
class PoolOptions:
    size: int = 8
    listen: str = "tcp:127.0.0.1:50051"
    metrics_listen: str = ""  # HOST:PORT, empty for none
    min_idle: int | None = None
    lease_ttl: float = 600.0
    acquire_wait: float = 30.0
    hardening: Hardening = field(default_factory=lambda: Hardening(client_checks=False))
    base: str | None = None
    only: list[str] | None = None
    tool_schemas: str = "derived"  # envscaler/spec/toolschema.py served_tools: "derived" or "record"
    pool_id: str | None = None  # its containers' owner label; None: a random one
    fresh_per_lease: bool = True  # False: recycle released containers (`pool --recycle`; SECURITY.md)
    # A bearer token every RPC must carry, and TLS: both required on an address other machines can reach
    # (envscaler/protocol/auth.py).
    token_file: str = ""
    tls_cert: str = ""
    tls_key: str = ""


def build_images(client: docker.DockerClient, corpus: Corpus, options: PoolOptions, log: Path,
                 progress: Callable[[int], None] = lambda _: None) -> tuple[dict[str, str], list[Any]]:
    """Images for every environment (built when missing); returns {env_id: tag} and the failures."""
    runtime = ensure_runtime(client, options.base, log)
    results = build_envs(client, corpus, runtime, options.only, progress=progress, tool_schemas=options.tool_schemas)
    images = {r.env_id: r.tag for r in results if r.status != "failed"}
    return images, [r for r in results if r.status == "failed"]


def _start_metrics(listen: str, manager: PoolManager) -> Any:
    """The Prometheus listener on HOST:PORT, or None for ''; OSError (AddressInUse when taken) if it cannot."""
    if not listen:
        return None
    host, _, port = listen.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise OSError(f"cannot serve metrics on {listen!r}: expected HOST:PORT") from None
    ensure_free(listen)
    try:
        server, _ = start_http_server(number, host, registry=manager.metrics.registry)
    except OSError as exc:
        raise (in_use(listen) if exc.errno == errno.EADDRINUSE else
               OSError(f"cannot serve metrics on {listen!r}: {exc.strerror or exc}")) from None
    return server


async def serve_pool(client: docker.DockerClient | None, corpus: Corpus, images: dict[str, str],
                     options: PoolOptions, stop: asyncio.Event,
                     started: Callable[[PoolManager, str], None] = lambda *_: None,
                     backend: SandboxBackend[Any] | None = None) -> None:
    """Serve until `stop` is set; then drain and remove every container of this pool. The sandboxes are Docker
    containers of `client`'s engine unless a `backend` is given."""
    if backend is None:
        assert client is not None, "serve_pool needs a Docker client or a backend"
        backend = DockerBackend(client)
    config = PoolConfig(size=options.size, images=images, min_idle=options.min_idle, lease_ttl=options.lease_ttl,
                        acquire_wait=options.acquire_wait, hardening=options.hardening,
                        fresh_per_lease=options.fresh_per_lease)
    manager = PoolManager(backend, config, options.pool_id)  # starts nothing until manager.start()
    address = grpc_address(options.listen)
    try:  # both addresses before anything starts: a refused pool leaves no container and no lock behind
        security = server_security(address, options.token_file, options.tls_cert, options.tls_key)
        ensure_free(address)
        metrics_server = _start_metrics(options.metrics_listen, manager)
    except (OSError, ValueError) as exc:
        raise EngineError(str(exc)) from None
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MESSAGE_CAP),
                                      ("grpc.max_send_message_length", MESSAGE_CAP), NO_REUSEPORT],
                             interceptors=[AsyncTokenInterceptor(security.token)] if security.token else None)
    session_path = session_socket_path(address) if address.startswith("unix:") else ""
    servicer = PoolServicer(manager, corpus, session_path, options.tool_schemas)
    server.add_generic_rpc_handlers([service_handler(ppb.DESCRIPTOR.services_by_name["PoolService"], servicer, True)])
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection(server, SERVICE_NAME)  # any language: clients can build messages from what it serves
    reason: object = "no port bound"
    try:
        port = server.add_secure_port(address, security.credentials) if security.credentials is not None \
            else server.add_insecure_port(address)
    except RuntimeError as exc:  # grpc's "Failed to bind": taken since ensure_free looked, or not bindable
        port, reason = 0, exc
    if port == 0:
        if metrics_server is not None:
            metrics_server.shutdown()
        raise EngineError(str(bind_failure(address, reason)))
    if not address.startswith("unix:"):
        address = f"{address.rsplit(':', 1)[0]}:{port}"
    session_server = None
    await manager.start()
    try:
        await server.start()
        if session_path:
            session_server = await session_socket.start(manager, session_path, MESSAGE_CAP)
        await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
        await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        started(manager, address)
        await stop.wait()
        await health_servicer.enter_graceful_shutdown()
        if session_server is not None:
            session_server.close()
        await server.stop(grace=1.0)
    finally:
        await manager.shutdown()
        if session_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(session_path)
        if metrics_server is not None:
            metrics_server.shutdown()


class LocalPool:
    """A pool run inside this process (its own thread and event loop), on a private Unix socket.

        with LocalPool(size=4) as local:
            with local.pool.session("env_1", scenario="0115-091204") as env:
                env.call("search_books", {"query": "Dune"})
    """

    def __init__(self, size: int = 4, envs: str | os.PathLike[str] | None = None,
                 scenarios: str | os.PathLike[str] | None = None, options: PoolOptions | None = None,
                 ready_timeout: float = 300.0, *, listen: str = "", ca_file: str | None = None) -> None:
        """`listen`: an address of your choice instead of the private Unix socket (with `options`' token and TLS;
        `ca_file`: the CA this process's `pool` client trusts)."""
        self.options = options if options is not None else PoolOptions(size=size)
        self.listen = listen
        self.ca_file = ca_file
        self.corpus = load_corpus(envs, scenarios)
        self.ready_timeout = ready_timeout
        self.manager: PoolManager | None = None
        self.address = ""
        self._tmp = ""
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.pool: Any = None

    def __enter__(self) -> LocalPool:
        from envscaler.client.pool_client import Pool

        client = connect()
        log = Path(tempfile.gettempdir()) / "envscaler-localpool-images.log"
        images, failed = build_images(client, self.corpus, self.options, log)
        if failed:
            raise EngineError("; ".join(f"{r.env_id}: {r.message}" for r in failed))
        self._tmp = tempfile.mkdtemp(prefix="envscaler-localpool-")
        self.options.listen = self.listen or f"unix:{self._tmp}/pool.sock"
        self._thread = threading.Thread(target=self._run, args=(client, images), daemon=True, name="local-pool")
        self._thread.start()
        if not self._started.wait(timeout=60) or self._error:
            raise EngineError(f"the local pool did not start: {self._error}")
        token = read_token(self.options.token_file) if self.options.token_file else None
        self.pool = Pool(self.address, token=token, ca_file=self.ca_file)
        if self.ready_timeout > 0:  # 0: do not wait for warm containers (they may never come)
            self.wait_ready(min(self.options.size, len(images)), self.ready_timeout)
        return self

    def _run(self, client: docker.DockerClient, images: dict[str, str]) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()

            def started(manager: PoolManager, address: str) -> None:
                self.manager, self.address = manager, address
                self._started.set()

            await serve_pool(client, self.corpus, images, self.options, self._stop, started)

        try:
            event_loop.run(main())
        except BaseException as exc:  # surfaced to the caller of __enter__
            self._error = exc
            self._started.set()

    def session(self, env_id: str, scenario: str | None = None, **kwargs: Any) -> Any:
        """`local.session(...)`, as `local.pool.session(...)`: a leased, reset session (a context manager)."""
        if self.pool is None:
            raise EngineError("the local pool is not running: use it inside `with LocalPool(...) as local:`")
        return self.pool.session(env_id, scenario, **kwargs)

    def wait_ready(self, count: int, timeout: float) -> None:
        """Until `count` containers are serving (the pool warms in the background)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.manager is not None and self.manager.ready() >= count:
                return
            time.sleep(0.1)
        raise EngineError(f"the local pool had fewer than {count} ready containers after {timeout:g} s")

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.close()
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=120)
        with contextlib.suppress(OSError):
            shutil.rmtree(self._tmp)
