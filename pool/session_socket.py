"""The pool's session socket (see envscaler/wire.py): LeaseSessionRequest frames
in, SessionResponse frames out, routed like PoolService.Session."""

from __future__ import annotations

import asyncio
import contextlib
import os

import grpc

from envscaler import wire
from envscaler.pool.manager import PoolManager, Upstream
from envscaler.pool.service import close_upstreams, session_step
from envscaler.runtime.grpc_handlers import RequestError, parse, session_error
from envscaler.v1 import pool_pb2 as ppb


async def _serve(manager: PoolManager, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 max_frame: int) -> None:
    upstreams: dict[str, Upstream] = {}
    try:
        while True:
            try:
                body = await wire.read_frame(reader, max_frame)
            except wire.WireError as exc:
                if exc.reason == "too_large":
                    writer.write(wire.frame(session_error(grpc.StatusCode.INVALID_ARGUMENT, f"{exc}; closing")))
                return
            try:
                request: ppb.LeaseSessionRequest | RequestError = parse(ppb.LeaseSessionRequest, body)
            except RequestError as exc:
                request = exc
            writer.write(wire.frame(await session_step(manager, request, upstreams)))
            await writer.drain()
    finally:
        close_upstreams(upstreams)
        writer.close()


async def start(manager: PoolManager, path: str, max_frame: int) -> asyncio.Server:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return await asyncio.start_unix_server(lambda r, w: _serve(manager, r, w, max_frame), path, limit=max_frame)
