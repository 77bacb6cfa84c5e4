"""The pool's event loop: uvloop where it is installed (the pool forwards every call of every lease, and a bare
frame forwarder on uvloop costs a quarter of one on asyncio's own loop: bench/results/profile.md), else asyncio's.
ENVSCALER_POOL_LOOP=asyncio chooses asyncio's loop all the same."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_name() -> str:
    if os.environ.get("ENVSCALER_POOL_LOOP", "uvloop") == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    if loop_name() == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)
