"""Arguments and entry of `envscaler-runtime openenv`: the OpenEnv front door."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from envscaler.frontdoor.cli import LOOPBACK, _listen, read_token

if TYPE_CHECKING:
    from envscaler.frontdoor.openenv.app import OpenEnvConfig

ANY_ADDRESS = ("0.0.0.0", "::", "")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pool", required=True, metavar="ADDRESS", help="the pool: tcp:HOST:PORT or unix:/path")
    p.add_argument("--listen", default="127.0.0.1:8000",
                   help="HTTP HOST:PORT (127.0.0.1:8000); a non-loopback host needs --token-file")
    p.add_argument("--token-file", type=Path,
                   help="require the file's first line as a token: Authorization: Bearer <token>, or Basic auth with "
                        "it as password (a URL http://openenv:<token>@host:port/..., as OpenEnv's clients send)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="HOST",
                   help="a host name requests may carry in their Host header, besides the loopback names and the "
                        "--listen host (repeatable): the names this server is reached by")
    p.add_argument("--max-sessions", type=int, default=64, help="sessions (leases) at once (64)")
    p.add_argument("--session-timeout", type=float, default=300.0,
                   help="seconds a session may sit idle before its lease goes back to the pool (300)")
    p.add_argument("--max-body", type=int, default=1 << 20,
                   help="bytes of an HTTP body or a WebSocket message (1048576)")
    p.add_argument("--acquire-wait", type=float, default=30.0, help="seconds a reset waits for a container (30)")


def allowed_hosts(host: str, extra: list[str]) -> tuple[str, ...]:
    names = [*LOOPBACK, *([host] if host not in ANY_ADDRESS else []), *extra]
    return tuple(dict.fromkeys(name.strip("[]").lower() for name in names if name))


def run(args: argparse.Namespace) -> int:
    """ValueError (one line) for bad arguments, an address that cannot be had, or a pool that does not answer."""
    from envscaler.frontdoor.openenv.app import OpenEnvConfig

    host, port = _listen(args.listen)
    token = read_token(args.token_file)
    if host not in LOOPBACK and token is None:
        raise ValueError(f"--listen {args.listen}: a non-loopback address needs --token-file")
    if args.max_sessions < 1 or args.max_body < 1024 or args.session_timeout <= 0 or args.acquire_wait <= 0:
        raise ValueError("--max-sessions must be at least 1, --max-body at least 1024, --session-timeout and "
                         "--acquire-wait above 0")
    config = OpenEnvConfig(pool=args.pool, host=host, port=port, token=token,
                           allowed_hosts=allowed_hosts(host, args.allowed_host), max_sessions=args.max_sessions,
                           max_body=args.max_body, acquire_wait=args.acquire_wait,
                           session_timeout=args.session_timeout)
    try:
        serve(config, out=sys.stderr)
    except OSError as exc:
        raise ValueError(str(exc)) from None
    return 0


def serve(config: OpenEnvConfig, out: TextIO) -> None:
    """Serve until SIGINT/SIGTERM (the lifespan then releases every session's lease). ValueError or OSError, one
    line, when the pool does not answer or the address cannot be had."""
    try:
        import websockets  # noqa: F401  (uvicorn speaks WebSocket only with it)
    except ImportError:
        raise ValueError("the OpenEnv front door needs the websockets package: "
                         "pip install 'envscaler-runtime[openenv]'") from None
    import uvicorn

    from envscaler.client.errors import EnvClientError
    from envscaler.client.pool_client import Pool
    from envscaler.frontdoor.http import bind
    from envscaler.frontdoor.openenv.app import build_app
    from envscaler.frontdoor.openenv.session import EnvEntry

    try:
        with Pool(config.pool, timeout=config.timeout) as pool:
            envs = {e.env_id: EnvEntry.from_pb(e) for e in pool.list_envs().envs}
    except EnvClientError as exc:
        raise ValueError(f"--pool {config.pool}: {exc.code}: {exc.details}") from None
    if not envs:
        raise ValueError(f"--pool {config.pool}: the pool serves no environments")
    sock, address = bind(config.host, config.port)
    names = ", ".join(sorted(envs)[:8]) + (" ..." if len(envs) > 8 else "")
    print(f"envscaler-runtime openenv: http://{address}/envs/<env_id> for {len(envs)} environments ({names}); "
          f"GET /envs lists them (pool {config.pool})", file=out, flush=True)
    print("envscaler-runtime openenv: stop with Ctrl-C or SIGTERM (every session's lease goes back to the pool)",
          file=out, flush=True)
    server = uvicorn.Server(uvicorn.Config(
        build_app(config, envs), log_level="warning", timeout_graceful_shutdown=5, ws="websockets-sansio",
        ws_max_size=config.max_body, limit_concurrency=max(64, config.max_sessions * 4)))
    server.run(sockets=[sock])
