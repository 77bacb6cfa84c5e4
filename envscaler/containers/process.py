"""A sandbox's server as a child process on this host, without a container: the weakest sandbox (a worker
process of the same user), for machines without an engine. The trusted process never hosts the server: it writes
the bundle and runs the sandbox's own entry point, `python -m envscaler.runtime.trusted.serve_bundle`."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from envscaler.protocol.bundle import ServedEnv, ServedScenario, write_bundle
from envscaler.protocol.health import check
from envscaler.protocol.options import ServerOptions

ENTRY = "envscaler.runtime.trusted.serve_bundle"


class ProcessStartError(RuntimeError):
    """The server did not come up; the message says why (its own words when it said any)."""


def serve_argv(bundle: str | Path, listen: str, options: ServerOptions, prog: str = "serve_bundle") -> list[str]:
    return [sys.executable, "-m", ENTRY, str(bundle), "--listen", listen, "--prog", prog, *options.to_argv()]


def _said(lines: list[str], log: Path) -> str:
    errors = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return "; ".join(line for line in [*lines, *errors[-3:]] if line and not line.startswith("serving ")) or ""


@contextlib.contextmanager
def serving_process(env: ServedEnv, scenarios: dict[str, ServedScenario], options: ServerOptions | None = None,
                    timeout: float = 60.0) -> Iterator[str]:
    """Yields the address of a server for `env` running in a child process; stops it (and its workers) after."""
    with tempfile.TemporaryDirectory(prefix="envscaler-sandbox-") as tmp:
        bundle = write_bundle(Path(tmp) / "bundle", env, scenarios)
        address, log = f"unix:{tmp}/env.sock", Path(tmp) / "server.log"
        with log.open("w") as errors:
            child = subprocess.Popen(serve_argv(bundle, address, options or ServerOptions()), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=errors, text=True, start_new_session=True)
        lines: list[str] = []
        assert child.stdout is not None
        reader = threading.Thread(target=lambda: lines.extend(line.strip() for line in child.stdout or ()),
                                  daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + timeout
            while not check(address, timeout=1.0):
                if child.poll() is not None or any(" health reports NOT_SERVING" in line for line in lines):
                    raise ProcessStartError(f"{env.env_id}: {_said(lines, log) or 'the server exited'}")
                if time.monotonic() > deadline:
                    raise ProcessStartError(f"{env.env_id}: the server did not answer within {timeout:g} s")
                time.sleep(0.05)
            yield address
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, 15)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, 9)
                child.wait()
