"""`envscaler-runtime mcp --stdio`: one process, one lease, one MCP server on stdin/stdout.

The lease is taken before the first message is read and released however the process ends: stdin closed,
SIGTERM, SIGINT. While it lives, the lease is renewed at a third of its TTL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Any

import anyio
import anyio.abc
import grpc.aio
from mcp.server.stdio import stdio_server

from envscaler.client.auth import open_aio_channel, security_of
from envscaler.client.env_client import CHANNEL_OPTIONS, target_of
from envscaler.client.errors import EnvClientError
from envscaler.frontdoor.tools import Handle, LeaseGone, acquire, build_server
from envscaler.v1 import pool_pb2_grpc as ppb_grpc


async def _keep_alive(handle: Handle) -> None:
    while True:
        await anyio.sleep(max(0.05, handle.ttl / 3))
        try:
            await handle.renew(force=True)
        except LeaseGone:
            return  # the pool took it back; calls now answer isError LEASE_GONE
        except EnvClientError as exc:
            print(f"envscaler-runtime mcp: renewing the lease failed: {exc}", file=sys.stderr)


class _Held:
    handle: Handle | None = None
    stop: bool = False  # a signal came while the lease was being granted


async def _until_signal(held: _Held, *,
                        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
    """Watching before the lease is taken, so that no signal finds a lease without anyone to release it."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        task_status.started()
        async for _ in signals:
            if held.handle is None:
                # Still being granted: cancelling the Acquire could leave the pool holding a lease nobody knows;
                # the grant finishes (within its wait), then the lease is released and the process ends.
                held.stop = True
                continue
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await held.handle.release()
            # The SDK reads stdin in a blocking thread that no cancellation interrupts: with the lease back in the
            # pool there is nothing left to clean up, so leave without waiting for it.
            sys.stderr.flush()
            os._exit(0)


async def serve_stdio(pool: str, env_id: str, scenario_id: str | None, init_config: dict[str, Any] | None,
                      *, wait: float = 60.0, seed: int = 0) -> None:
    """Hold one lease and serve it over stdio until stdin closes or a signal comes; EnvClientError if no lease."""
    channel = open_aio_channel(target_of(pool), security_of(pool), CHANNEL_OPTIONS)
    held = _Held()
    try:
        await _serve(channel, pool, held, env_id, scenario_id, init_config, wait, seed)
    except BaseExceptionGroup as group:
        # The task group wraps what failed; a lease the pool refused is the one line the caller should see.
        refused = [e for e in group.exceptions if isinstance(e, EnvClientError)]
        if refused:
            raise refused[0] from None
        raise
    finally:
        # On the way out anyway: a SIGTERM now (a client that gave up waiting) must not cut the release short.
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        with anyio.CancelScope(shield=True):
            if held.handle is not None:
                with contextlib.suppress(Exception):
                    await held.handle.release()
            await channel.close()


async def _serve(channel: grpc.aio.Channel, pool: str, held: _Held, env_id: str, scenario_id: str | None,
                 init_config: dict[str, Any] | None, wait: float, seed: int) -> None:
    async with anyio.create_task_group() as tg:
        await tg.start(_until_signal, held)
        handle = await acquire(ppb_grpc.PoolServiceStub(channel), pool, env_id, scenario_id, init_config, wait=wait,
                               seed=seed)
        held.handle = handle
        if held.stop:
            tg.cancel_scope.cancel()
            return
        tg.start_soon(_keep_alive, handle)
        server = build_server(lambda _ctx: handle, current=lambda: handle)
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
        tg.cancel_scope.cancel()  # stdin closed: stop renewing and watching, release
