"""When a client tries a refused call again: a pool that is overloaded answers RESOURCE_EXHAUSTED with how long
to wait in the trailing metadata `grpc-retry-pushback-ms` (gRPC's own retry key); the call is tried again after
that long, for as long as the caller's own deadline has room for the wait. A refusal without the hint (e.g. no
container became free within the caller's wait) or any other status is the caller's to see. Pure: the blocking
and asyncio shells (pool_client.py) only sleep and call again."""

from __future__ import annotations

from typing import Any

import grpc

from envscaler.protocol.deadlines import Deadline

PUSHBACK_KEY = "grpc-retry-pushback-ms"


def pushback(exc: grpc.RpcError) -> float | None:
    """Seconds the server asked the caller to wait before trying again; None when it did not ask."""
    trailing: Any = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == PUSHBACK_KEY:
            try:
                ms = int(value)
            except (TypeError, ValueError):
                return None  # gRPC's rule: a malformed pushback means do not retry
            return ms / 1000 if ms >= 0 else None
    return None


def retry_delay(exc: grpc.RpcError, deadline: Deadline) -> float | None:
    """How long to sleep before trying `exc`'s call again, or None: give up and raise it."""
    code = exc.code() if hasattr(exc, "code") else None
    if code != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    delay = pushback(exc)
    if delay is None:
        return None
    remaining = deadline.remaining()
    if remaining is not None and delay >= remaining:
        return None  # the pool's own estimate says the caller's deadline would pass first
    return delay
