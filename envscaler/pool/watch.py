"""Deaths of a pool's sandboxes, as the backend reports them: its event stream, read in a thread of its own, and a
listing of what still runs each time the stream (re)connects, for deaths missed while it was down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from envscaler.pool.backend import EventStream, SandboxBackend

log = logging.getLogger("envscaler.pool")
RECONNECT_DELAY = 1.0


class DeathWatch:
    """Calls `on_death(name, kind)` on the loop for each sandbox carrying `labels` that dies; `serving()` (read from
    the watch's thread) names the sandboxes the pool believes serve, whose absence is a death too."""

    def __init__(self, backend: SandboxBackend[Any], labels: Mapping[str, str],
                 on_death: Callable[[str, str], None], serving: Callable[[], list[str]],
                 on_outage: Callable[[], None] = lambda: None) -> None:
        self.backend = backend
        self.labels = dict(labels)
        self.on_death = on_death
        self.serving = serving
        self.on_outage = on_outage
        self.stopping = False
        self._stream: EventStream | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        threading.Thread(target=self._run, args=(loop,), daemon=True, name="pool-events").start()

    def stop(self) -> None:
        self.stopping = True
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.close()

    def _stopped(self) -> bool:
        return self.stopping

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        outage = False
        while not self.stopping:
            try:
                self._stream = self.backend.events(self.labels)
                running = self.backend.list_running(self.labels)  # deaths missed while the stream was down
                for name in self.serving():
                    if name not in running:
                        loop.call_soon_threadsafe(self.on_death, name, "die")
                if outage:
                    log.warning("the engine's event stream is back")
                    outage = False
                for event in self._stream:
                    loop.call_soon_threadsafe(self.on_death, event.name, event.kind)
            except Exception as exc:  # the engine went away: say so once, and keep trying
                if self._stopped():  # stop() closed the stream from another thread
                    return
                if not outage:
                    log.warning("lost the engine's event stream (%s); reconnecting", exc)
                    self.on_outage()
                    outage = True
                time.sleep(RECONNECT_DELAY)
