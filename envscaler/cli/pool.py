"""`pool`: warm hardened containers leased over gRPC, with a live status."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envscaler.cli.common import (
    CliError,
    add_command,
    corpus_args,
    docker_engine,
    drop_bad_scenarios,
    hardening_of,
    log_path,
    tool_schemas_arg,
)
from envscaler.spec.loader import SpecError, load_corpus

log = logging.getLogger("envscaler.pool")
LOG_FORMAT = "%(asctime)s pool[%(process)d] %(levelname)s %(name)s: %(message)s"


def log_to(path: Path) -> None:
    """The pool's log: every line to `path` (it outlives a closed terminal or pipe), warnings also to stderr (a
    closed stderr is logging's own to ignore)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"--log {path}: cannot write: {exc.strerror or exc}") from None
    to_file.setFormatter(logging.Formatter(LOG_FORMAT))
    to_stderr = logging.StreamHandler()
    to_stderr.setLevel(logging.WARNING)
    root = logging.getLogger("envscaler")
    root.setLevel(logging.INFO)
    root.addHandler(to_file)
    root.addHandler(to_stderr)


class Screen:
    """The pool's stdout: a live table on a terminal, a line per change in a pipe. When it goes away (`| tee` killed
    with the pool, a closed terminal) nothing more is written there and the pool goes on (a drain never stops half
    way for it); the log has every line."""

    def __init__(self, log_file: Path) -> None:
        from rich.console import Console
        from rich.live import Live

        self.log_file = log_file
        self.gone = False
        self.last = ""
        self.live: Any = None
        if sys.stdout.isatty():
            self.live = Live(console=Console(), auto_refresh=False, transient=False)
            self._guarded(self.live.start)

    def _guarded(self, write: Callable[[], object]) -> None:
        if self.gone:
            return
        try:
            write()
        except OSError as exc:
            self.gone, self.live = True, None
            with contextlib.suppress(OSError):  # later writes (and the flush at exit) go nowhere, not fail
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, sys.stdout.fileno())
                os.close(null)
            log.warning("the pool's stdout went away (%s); it goes on, and its log (%s) has every line",
                        exc.strerror or exc, self.log_file)

    def say(self, line: str) -> None:
        self._guarded(lambda: print(line, flush=True))

    def status(self, stats: dict[str, Any], address: str, line_of: Callable[[dict[str, Any]], str],
               table_of: Callable[[dict[str, Any], str], Any]) -> None:
        line = line_of(stats)
        if line == self.last:
            return
        self.last = line
        log.info("%s", line)
        if self.live is not None:
            live = self.live
            self._guarded(lambda: live.update(table_of(stats, address), refresh=True))
        else:
            self.say(line)

    def close(self) -> None:
        if self.live is not None:
            self._guarded(self.live.stop)
            self.live = None


def cmd_pool(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from envscaler.cli.output import print_build, progress_bar
    from envscaler.images.engine import EngineError
    from envscaler.pool.runner import PoolOptions, build_images, serve_pool
    from envscaler.pool.status import status_line, status_table
    from envscaler.protocol.addresses import grpc_address
    from envscaler.protocol.auth import server_security

    if args.size < 1:
        raise CliError("--size must be at least 1")
    args.log = args.log or Path.home() / ".cache" / "envscaler-runtime" / "pool.log"
    log_to(args.log)
    try:  # records that do not load fail alone, listed with the build failures; the others are served
        corpus = load_corpus(args.envs, args.scenarios, strict=False)
    except SpecError as exc:
        raise CliError(str(exc)) from None
    left_out = drop_bad_scenarios(corpus, args.only)
    try:  # before any image is built: an exposed address without a token and TLS is refused at once
        server_security(grpc_address(args.listen), args.token_file or "", args.tls_cert or "", args.tls_key or "")
    except ValueError as exc:
        raise CliError(str(exc)) from None
    options = PoolOptions(size=args.size, listen=args.listen, metrics_listen=args.metrics_listen,
                          min_idle=args.min_idle, lease_ttl=args.lease_ttl, acquire_wait=args.acquire_wait,
                          hardening=hardening_of(args), base=args.base, only=args.only,
                          tool_schemas=args.tool_schemas, fresh_per_lease=not args.recycle,
                          token_file=args.token_file or "", tls_cert=args.tls_cert or "", tls_key=args.tls_key or "")
    client = docker_engine()
    try:
        with progress_bar("environment images", len(args.only or corpus.envs)) as advance:
            images, failed = build_images(client, corpus, options, log_path(), advance)
    except EngineError as exc:
        raise CliError(str(exc)) from None
    failed += left_out
    if failed:
        print_build(failed, 0.0)
    if not images:
        raise CliError("no environment could be built; nothing to serve")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # SIGHUP: its terminal closed
            loop.add_signal_handler(sig, stop.set)
        state: dict[str, Any] = {}
        screen = Screen(args.log)

        def started(manager: Any, address: str) -> None:
            state.update(manager=manager, address=address)
            log.info("pool %s serving on %s (pid %d)", manager.pool_id, address, os.getpid())
            screen.say(f"pool on {address}; log: {args.log}; Ctrl-C (or SIGTERM) stops it and removes its "
                       "containers")

        task = asyncio.create_task(serve_pool(client, corpus, images, options, stop, started))
        while not task.done():  # the screen never stops the pool: once it is gone, the log has it all
            await asyncio.wait([task], timeout=0.5 if screen.live else 5.0)
            manager = state.get("manager")
            if manager is not None:
                screen.status(manager.stats(), str(state["address"]), status_line, status_table)
        screen.close()
        await task
        log.info("pool stopped; its containers are removed")
        screen.say("pool stopped; its containers are removed")

    from envscaler.pool import event_loop

    try:
        event_loop.run(main())
    except EngineError as exc:
        raise CliError(str(exc)) from None
    return 0


def register(sub: Any) -> None:
    p = add_command(sub, "pool", cmd_pool, "keep warm hardened containers and lease them over gRPC (PoolService)")
    corpus_args(p)
    tool_schemas_arg(p)
    p.add_argument("--size", type=int, default=8, help="hard cap on containers (8)")
    p.add_argument("--listen", default="tcp:127.0.0.1:50051", help="tcp:HOST:PORT or unix:/path (tcp:127.0.0.1:50051)")
    p.add_argument("--token-file", metavar="PATH",
                   help="a bearer token (one line) every RPC must carry; clients pass token= or set ENVSCALER_TOKEN. "
                        "Required, with --tls-cert/--tls-key, on an address other machines can reach")
    p.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate (chain); clients trust its CA "
                                                     "with ca_file= or ENVSCALER_CA_FILE")
    p.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    p.add_argument("--metrics-listen", default="127.0.0.1:9464",
                   help="Prometheus metrics HOST:PORT (127.0.0.1:9464); '' for none")
    p.add_argument("--min-idle", type=int, help="warm containers kept per environment (size / environments)")
    p.add_argument("--lease-ttl", type=float, default=600.0,
                   help="seconds a lease lives without renewal, and the most a client may ask for (600)")
    p.add_argument("--recycle", action="store_true",
                   help="reuse a released container for the next lease once its server has verified the teardown "
                        "(faster churn; counters such as inode numbers survive: SECURITY.md); default: every lease "
                        "gets a container no one used, warmed ahead")
    p.add_argument("--acquire-wait", type=float, default=30.0, help="default seconds Acquire waits (30)")
    p.add_argument("--only", nargs="+", metavar="ENV_ID", help="serve only these environments")
    p.add_argument("--log", type=Path,
                   help="the pool's log, appended to (default: ~/.cache/envscaler-runtime/pool.log); it keeps every "
                        "line when the pool's stdout or terminal goes away")
    p.add_argument("--base", help="base image instead of the bootstrapped Debian one")
    hardening = p.add_argument_group("sandbox (hardened by default)")
    hardening.add_argument("--network", default="none", help="container network (none)")
    hardening.add_argument("--memory-mb", type=int, default=512, help="memory limit per container (512)")
    hardening.add_argument("--cpus", type=float, default=1.0, help="CPU limit per container (1.0)")
    hardening.add_argument("--pids-limit", type=int, default=256, help="process limit per container (256)")
    hardening.add_argument("--runtime", help="OCI runtime, e.g. runsc for gVisor")
    hardening.add_argument("--writable-root", action="store_true", help="do not make the root filesystem read-only")
    hardening.add_argument("--no-privilege-split", action="store_true",
                           help="run the server and environment code under one uid (weaker; see SECURITY.md); "
                                "default: environment code runs as uid 10002, the server as 10001")
    hardening.add_argument("--allow-client-checks", action="store_true",
                           help="accept check functions sent by clients in Evaluate (off by default: they are "
                                "code from outside the scenario; they run as sandboxed as scenario checks)")

