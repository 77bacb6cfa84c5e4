"""The pool's session socket (see envscaler/framing.py): LeaseSessionRequest frames
in, SessionResponse frames out, routed like PoolService.Session."""

from __future__ import annotations

import asyncio
import contextlib
import os

from envscaler.pool.manager import PoolManager, Upstream
from envscaler.pool.service import close_upstreams, session_step
from envscaler.protocol import framing
from envscaler.protocol.sessions import RequestError, refusal, request_of
from envscaler.v1 import pool_pb2 as ppb


async def _serve(manager: PoolManager, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 max_frame: int) -> None:
    upstreams: dict[str, Upstream] = {}
    try:
        while True:
            try:
                body = await framing.read_frame(reader, max_frame)
            except framing.FrameError as exc:
                last = refusal(exc)
                if last is not None:
                    writer.write(last)
                return
            request: ppb.LeaseSessionRequest | RequestError = request_of(ppb.LeaseSessionRequest, body)
            writer.write(framing.frame(await session_step(manager, request, upstreams)))
            await writer.drain()
    finally:
        close_upstreams(upstreams)
        writer.close()


async def start(manager: PoolManager, path: str, max_frame: int) -> asyncio.Server:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return await asyncio.start_unix_server(lambda r, w: _serve(manager, r, w, max_frame), path, limit=max_frame)
