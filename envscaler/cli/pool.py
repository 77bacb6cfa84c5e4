"""`pool`: warm hardened containers leased over gRPC, with a live status."""

from __future__ import annotations

import argparse
import contextlib
import sys
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


def cmd_pool(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from rich.console import Console

    from envscaler.cli.output import print_build, progress_bar
    from envscaler.images.engine import EngineError
    from envscaler.pool.runner import PoolOptions, build_images, serve_pool
    from envscaler.pool.status import status_line, status_table
    from envscaler.protocol.addresses import grpc_address
    from envscaler.protocol.auth import server_security

    if args.size < 1:
        raise CliError("--size must be at least 1")
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
        from rich.live import Live

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        state: dict[str, Any] = {}

        def started(manager: object, address: str) -> None:
            state.update(manager=manager, address=address)

        task = asyncio.create_task(serve_pool(client, corpus, images, options, stop, started))
        out = Console()
        live = Live(console=out, refresh_per_second=4, transient=False) if sys.stdout.isatty() else None
        last = ""
        with live if live is not None else contextlib.nullcontext():
            while not task.done():
                await asyncio.wait([task], timeout=0.5 if live else 5.0)
                manager = state.get("manager")
                if manager is None:
                    continue
                stats = manager.stats()
                if live is not None:
                    live.update(status_table(stats, str(state["address"])))
                elif (line := status_line(stats)) != last:
                    print(line, flush=True)
                    last = line
        await task
        out.print("pool stopped; its containers are removed")

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

