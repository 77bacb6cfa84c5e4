"""Arguments and entry of `envscaler-runtime mcp` (kept here so envscaler/cli.py gains only a few lines)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pool", required=True, metavar="ADDRESS", help="the pool: tcp:HOST:PORT or unix:/path")
    p.add_argument("--listen", default="127.0.0.1:8765",
                   help="HTTP HOST:PORT (127.0.0.1:8765); a non-loopback host needs --token-file")
    p.add_argument("--token-file", type=Path, help="require Authorization: Bearer <the file's first line>")
    p.add_argument("--max-leases", type=int, default=64, help="leases held at once through this front door (64)")
    p.add_argument("--max-body", type=int, default=1 << 20, help="bytes of a request body (1048576)")
    p.add_argument("--acquire-wait", type=float, default=30.0, help="seconds a new lease waits for a container (30)")
    p.add_argument("--stdio", action="store_true", help="serve one lease on stdin/stdout for the process's life")
    p.add_argument("--env", help="with --stdio: env_id")
    p.add_argument("--scenario", help="with --stdio: scenario (task_id)")
    p.add_argument("--init-config", type=Path, help="with --stdio: a JSON init_config instead of --scenario")


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.removeprefix("tcp:").rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen {value!r}: expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def read_token(path: Path | None) -> str | None:
    """The first line of --token-file (at least 16 characters); None without one. ValueError names the file."""
    if path is None:
        return None
    try:
        token = path.read_text().strip().splitlines()[0].strip()
    except (OSError, IndexError) as exc:
        raise ValueError(f"--token-file {path}: cannot read a token ({exc})") from None
    if len(token) < 16:
        raise ValueError(f"--token-file {path}: the token is shorter than 16 characters")
    return token


def run(args: argparse.Namespace) -> int:
    if args.stdio:
        return _run_stdio(args)
    from envscaler.frontdoor.http import FrontDoorConfig, serve_http

    host, port = _listen(args.listen)
    token = read_token(args.token_file)
    if host not in LOOPBACK and token is None:
        raise ValueError(f"--listen {args.listen}: a non-loopback address needs --token-file")
    if args.max_leases < 1 or args.max_body < 1024:
        raise ValueError("--max-leases must be at least 1 and --max-body at least 1024")
    try:
        serve_http(FrontDoorConfig(pool=args.pool, host=host, port=port, token=token, max_leases=args.max_leases,
                                   max_body=args.max_body, acquire_wait=args.acquire_wait))
    except OSError as exc:
        raise ValueError(str(exc)) from None
    return 0


def _run_stdio(args: argparse.Namespace) -> int:
    import anyio

    from envscaler.client.errors import EnvClientError
    from envscaler.frontdoor.stdio import serve_stdio

    if not args.env or (args.scenario is None) == (args.init_config is None):
        raise ValueError("--stdio needs --env and one of --scenario or --init-config")
    init_config = None
    if args.init_config is not None:
        try:
            init_config = json.loads(args.init_config.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"--init-config {args.init_config}: {exc}") from None
        if not isinstance(init_config, dict):
            raise ValueError(f"--init-config {args.init_config}: not a JSON object")
    try:
        anyio.run(serve_stdio, args.pool, args.env, args.scenario, init_config, backend="asyncio")
    except EnvClientError as exc:
        raise ValueError(f"no lease: {exc}") from None
    return 0
