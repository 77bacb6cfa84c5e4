"""The pool runs on uvloop where installed, on asyncio's loop when told, and the coroutine's result comes back."""

from __future__ import annotations

import asyncio

import pytest

from envscaler.pool import event_loop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_by_default_and_asyncio_when_told(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop")
    monkeypatch.delenv("ENVSCALER_POOL_LOOP", raising=False)
    assert event_loop.loop_name() == "uvloop"
    assert event_loop.run(_loop_module()).startswith("uvloop")
    monkeypatch.setenv("ENVSCALER_POOL_LOOP", "asyncio")
    assert event_loop.loop_name() == "asyncio"
    assert event_loop.run(_loop_module()).startswith("asyncio")
