"""Clients of a pool server: `Pool` (blocking) and `AsyncPool` (asyncio).

    with Pool("tcp:127.0.0.1:50051") as pool, pool.session("env_1", scenario="0115-091204") as env:
        env.call("search_books", {"query": "Dune"})
        print(env.evaluate().reward)

A session has the same methods as EnvClient; its calls travel through the pool to
the leased container. Leaving the `with` block releases the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import grpc.aio

from envscaler.client.auth import open_aio_channel, open_channel, security_of
from envscaler.client.env_client import (
    CHANNEL_OPTIONS,
    AsyncEnvClient,
    AsyncEnvMethods,
    EnvClient,
    EnvMethods,
    target_of,
)
from envscaler.client.errors import EnvClientError, wrap_rpc_error
from envscaler.client.models import ResetResult
from envscaler.client.retry import retry_delay
from envscaler.client.session_socket import AsyncSocketSession, SocketSession
from envscaler.client.session_stream import AsyncSessionStream, SessionStream
from envscaler.client.transport import AsyncSessionTransport, SessionTransport, Transport, TransportChoice, choose
from envscaler.protocol.deadlines import Deadline
from envscaler.v1 import pool_pb2 as ppb
from envscaler.v1 import pool_pb2_grpc as ppb_grpc


def acquire_request(env_id: str, scenario: str | None, ttl: float | None, wait: float | None,
                    seed: int) -> ppb.AcquireRequest:
    return ppb.AcquireRequest(env_id=env_id, scenario_id=scenario or "", seed=seed,
                              lease_ttl_ms=int((ttl or 0) * 1000), wait_ms=int((wait or 0) * 1000))


def acquire_deadline(wait: float | None, timeout: float) -> Deadline:
    """An Acquire's deadline: the caller's `wait` when it gives one (the wait for a container and the first Reset
    both run within it), else the client's timeout; carried as it is, no padding (issue 27)."""
    return Deadline.after(wait if wait else timeout)


def _attempt(env_id: str, scenario: str | None, ttl: float | None, wait: float | None, seed: int,
             deadline: Deadline) -> tuple[ppb.AcquireRequest, float]:
    """The next try's request and gRPC timeout: what is left of the caller's deadline."""
    remaining = max(deadline.remaining() or 0.0, 0.001)
    return acquire_request(env_id, scenario, ttl, remaining if wait else None, seed), remaining


def acquire_lease(stub: ppb_grpc.PoolServiceStub, env_id: str, scenario: str | None, ttl: float | None,
                  wait: float | None, seed: int, timeout: float) -> ppb.Lease:
    """Acquire, tried again while the pool says it is overloaded (client/retry.py) and the deadline has room."""
    deadline = acquire_deadline(wait, timeout)
    while True:
        request, remaining = _attempt(env_id, scenario, ttl, wait, seed, deadline)
        try:
            lease: ppb.Lease = stub.Acquire(request, timeout=remaining)
            return lease
        except grpc.RpcError as exc:
            delay = retry_delay(exc, deadline)
            if delay is None:
                raise wrap_rpc_error("Acquire", exc) from None
        time.sleep(delay)


async def acquire_lease_async(stub: ppb_grpc.PoolServiceAsyncStub, env_id: str, scenario: str | None,
                              ttl: float | None, wait: float | None, seed: int, timeout: float) -> ppb.Lease:
    """The asyncio shell of acquire_lease."""
    deadline = acquire_deadline(wait, timeout)
    while True:
        request, remaining = _attempt(env_id, scenario, ttl, wait, seed, deadline)
        try:
            lease: ppb.Lease = await stub.Acquire(request, timeout=remaining)
            return lease
        except grpc.RpcError as exc:
            delay = retry_delay(exc, deadline)
            if delay is None:
                raise wrap_rpc_error("Acquire", exc) from None
        await asyncio.sleep(delay)


def _leased(lease_id: str) -> Any:
    return lambda request: ppb.LeaseSessionRequest(lease_id=lease_id, request=request)


def _bind_lease(session: PoolSession | AsyncPoolSession, stub: Any, lease: ppb.Lease,
                timeout: float) -> None:
    """What a session knows of its lease (shared by the blocking and asyncio sessions)."""
    session.pool_stub = stub
    session.lease_id = lease.lease_id
    session.env_id = lease.env_id
    session.timeout = timeout
    session._info = None
    session.initial = ResetResult.from_pb(lease.reset) if lease.HasField("reset") else None
    session.episode_id = session.initial.episode_id if session.initial else ""
    session.direct_address = lease.direct_address
    session.direct_session_socket = lease.direct_session_socket


class PoolSession(EnvMethods):
    """One leased container, with EnvClient's methods. With `direct`, the calls go
    straight to the container's own socket (same host only), skipping the pool's hop."""

    pool_stub: ppb_grpc.PoolServiceStub
    lease_id: str
    env_id: str
    initial: ResetResult | None
    direct_address: str
    direct_session_socket: str
    direct: EnvClient | None = None

    def __init__(self, stub: ppb_grpc.PoolServiceStub, lease: ppb.Lease, timeout: float,
                 transport: Transport = "stream") -> None:
        _bind_lease(self, stub, lease, timeout)
        self.stream: SessionTransport = \
            SocketSession(lease.session_socket, _leased(self.lease_id)) if transport == "socket" \
            else SessionStream(stub.Session, _leased(self.lease_id))

    def _invoke(self, method: str, request: Any, timeout: float | None = None) -> Any:
        if self.direct is not None:
            return self.direct._invoke(method, request, timeout)
        return self.stream.request(method, request, timeout or self.timeout)

    def renew(self) -> None:
        try:
            self.pool_stub.Renew(ppb.RenewRequest(lease_id=self.lease_id), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise wrap_rpc_error("Renew", exc) from None

    def release(self) -> None:
        self.stream.close()
        if self.direct is not None:
            self.direct.close()
            self.direct = None
        try:
            self.pool_stub.Release(ppb.ReleaseRequest(lease_id=self.lease_id), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise wrap_rpc_error("Release", exc) from None


class Pool:
    """`transport`: how sessions reach the pool (envscaler/client/transport.py): "auto" (a session socket when the pool
    is on this host by its address, else a gRPC stream), "socket" or "stream". `token` (default ENVSCALER_TOKEN): the
    pool's bearer token; `ca_file` (default ENVSCALER_CA_FILE) or `root_certificates` (PEM): TLS, trusting that CA."""

    def __init__(self, address: str, *, timeout: float = 30.0, transport: TransportChoice = "auto",
                 token: str | None = None, ca_file: str | None = None, root_certificates: bytes | None = None) -> None:
        self.address = address
        security = security_of(address, token, ca_file, root_certificates)
        self.channel = open_channel(target_of(address), security, CHANNEL_OPTIONS)
        self.stub = ppb_grpc.PoolServiceStub(self.channel)
        self.timeout = timeout
        self.transport = transport

    def acquire(self, env_id: str, scenario: str | None = None, *, ttl: float | None = None,
                wait: float | None = None, seed: int = 0, direct: bool = False) -> PoolSession:
        """Lease a container; call `release()` on the session when done (or use `session`). `wait`: the most this
        takes, the scenario's Reset included (default: the client's timeout); a pool that is overloaded is asked
        again after the time it names, within that."""
        lease = acquire_lease(self.stub, env_id, scenario, ttl, wait, seed, self.timeout)
        session = PoolSession(self.stub, lease, self.timeout,
                              choose(self.transport, self.address, lease.session_socket))
        if direct and choose(self.transport, self.address, lease.direct_session_socket) == "socket":
            # the lease's own route into its container
            session.direct = EnvClient(f"unix:{lease.direct_session_socket}", timeout=self.timeout,
                                       session_socket=lease.direct_session_socket)
        return session

    @contextlib.contextmanager
    def session(self, env_id: str, scenario: str | None = None, *, ttl: float | None = None,
                wait: float | None = None, seed: int = 0, direct: bool = False) -> Iterator[PoolSession]:
        session = self.acquire(env_id, scenario, ttl=ttl, wait=wait, seed=seed, direct=direct)
        try:
            yield session
        finally:
            with contextlib.suppress(EnvClientError):  # an expired lease is already back in the pool
                session.release()

    def list_envs(self) -> ppb.ListEnvsResponse:
        try:
            return self.stub.ListEnvs(ppb.ListEnvsRequest(), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise wrap_rpc_error("ListEnvs", exc) from None

    def stats(self) -> ppb.StatsResponse:
        try:
            return self.stub.Stats(ppb.StatsRequest(), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise wrap_rpc_error("Stats", exc) from None

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncPoolSession(AsyncEnvMethods):
    pool_stub: ppb_grpc.PoolServiceAsyncStub
    lease_id: str
    env_id: str
    initial: ResetResult | None
    direct_address: str
    direct_session_socket: str
    direct: AsyncEnvClient | None = None

    def __init__(self, stub: ppb_grpc.PoolServiceAsyncStub, lease: ppb.Lease, timeout: float,
                 transport: Transport = "stream") -> None:
        _bind_lease(self, stub, lease, timeout)
        self.stream: AsyncSessionTransport = \
            AsyncSocketSession(lease.session_socket, _leased(self.lease_id)) if transport == "socket" \
            else AsyncSessionStream(stub.Session, _leased(self.lease_id))

    async def _invoke(self, method: str, request: Any, timeout: float | None = None) -> Any:
        if self.direct is not None:
            return await self.direct._invoke(method, request, timeout)
        return await self.stream.request(method, request, timeout or self.timeout)

    async def release(self) -> None:
        await self.stream.close()
        if self.direct is not None:
            await self.direct.close()
            self.direct = None
        try:
            await self.pool_stub.Release(ppb.ReleaseRequest(lease_id=self.lease_id), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise wrap_rpc_error("Release", exc) from None


class AsyncPool:
    """The same as Pool, for asyncio."""

    def __init__(self, address: str, *, timeout: float = 30.0, transport: TransportChoice = "auto",
                 token: str | None = None, ca_file: str | None = None, root_certificates: bytes | None = None) -> None:
        self.address = address
        security = security_of(address, token, ca_file, root_certificates)
        self.channel = open_aio_channel(target_of(address), security, CHANNEL_OPTIONS)
        self.stub = ppb_grpc.PoolServiceStub(self.channel)
        self.timeout = timeout
        self.transport = transport

    async def acquire(self, env_id: str, scenario: str | None = None, *, ttl: float | None = None,
                      wait: float | None = None, seed: int = 0, direct: bool = False) -> AsyncPoolSession:
        lease = await acquire_lease_async(self.stub, env_id, scenario, ttl, wait, seed, self.timeout)
        session = AsyncPoolSession(self.stub, lease, self.timeout,
                                   choose(self.transport, self.address, lease.session_socket))
        if direct and choose(self.transport, self.address, lease.direct_session_socket) == "socket":
            # the lease's own route into its container
            session.direct = AsyncEnvClient(f"unix:{lease.direct_session_socket}", timeout=self.timeout,
                                            session_socket=lease.direct_session_socket)
        return session

    @contextlib.asynccontextmanager
    async def session(self, env_id: str, scenario: str | None = None, *, ttl: float | None = None,
                      wait: float | None = None, seed: int = 0,
                      direct: bool = False) -> AsyncIterator[AsyncPoolSession]:
        session = await self.acquire(env_id, scenario, ttl=ttl, wait=wait, seed=seed, direct=direct)
        try:
            yield session
        finally:
            with contextlib.suppress(EnvClientError):
                await session.release()

    async def list_envs(self) -> ppb.ListEnvsResponse:
        try:
            return await self.stub.ListEnvs(ppb.ListEnvsRequest(), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise wrap_rpc_error("ListEnvs", exc) from None

    async def stats(self) -> ppb.StatsResponse:
        try:
            return await self.stub.Stats(ppb.StatsRequest(), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise wrap_rpc_error("Stats", exc) from None

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> AsyncPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
