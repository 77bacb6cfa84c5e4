"""Arguments and entry of `envscaler-runtime console` (kept here so envscaler/cli.py gains only a few lines)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pool", required=True, metavar="ADDRESS", help="the pool: tcp:HOST:PORT or unix:/path")
    p.add_argument("--listen", default="127.0.0.1:8080",
                   help="HTTP HOST:PORT (127.0.0.1:8080); a non-loopback host needs --token")
    p.add_argument("--token", help="require this token: open the console once with ?token=T (a cookie keeps it)")
    p.add_argument("--metrics", metavar="HOST:PORT",
                   help="the pool's Prometheus metrics (its --metrics-listen) for the pool page's histograms")
    p.add_argument("--trajectories", type=Path, nargs="+", action="extend", default=[], metavar="FILE.jsonl",
                   help="rollout trajectory files for the rollouts page")
    p.add_argument("--play-ttl", type=float, default=30.0,
                   help="seconds a play page may miss heartbeats before its lease is released (30)")


def listen_address(value: str) -> tuple[str, int]:
    host, sep, port = value.removeprefix("tcp:").rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]") or "127.0.0.1", int(port)


def run(args: argparse.Namespace, corpus: object) -> int:
    import uvicorn

    from envscaler.console.app import ConsoleConfig, create_app
    from envscaler.protocol.addresses import AddressInUse, ensure_free

    host, port = listen_address(args.listen)
    if host not in LOOPBACK and not args.token:
        raise ValueError(f"--listen {args.listen}: a non-loopback address needs --token (anyone who reaches the "
                         "console can lease sandboxes and call tools)")
    if args.token is not None and (len(args.token) < 16 or not re.fullmatch(r"[A-Za-z0-9._~-]+", args.token)):
        raise ValueError("--token: use at least 16 characters among letters, digits and . _ ~ - (it travels in an "
                         "address and a cookie)")
    if args.play_ttl < 5:
        raise ValueError("--play-ttl: at least 5 seconds (the page beats every ttl/4)")
    for path in args.trajectories:
        if not path.is_file():
            raise ValueError(f"--trajectories {path}: no such file")
    try:
        ensure_free(f"{host}:{port}")
    except AddressInUse as exc:
        raise ValueError(f"--listen: {exc}; choose another with --listen HOST:PORT") from None
    config = ConsoleConfig(pool=args.pool, corpus=corpus, trajectories=list(args.trajectories),  # type: ignore[arg-type]
                           metrics=args.metrics or "", token=args.token, play_ttl=args.play_ttl)
    shown = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    print(f"console on {shown} (pool {args.pool})", file=sys.stderr, flush=True)
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
    return 0
