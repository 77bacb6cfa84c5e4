"""What a sandbox container runs: `python -m envscaler.runtime.serve_bundle BUNDLE --listen ADDRESS`.

BUNDLE is the environment as plain JSON (runtime/served.py), validated when the
image was built; this entry imports no pydantic and no CLI, so each sandbox's
server process stays small.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from envscaler.runtime.served import load_bundle
from envscaler.runtime.server import ServerConfig, serve_forever


def add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--call-timeout", type=float, default=10.0, help="seconds per tool call and check (10)")
    parser.add_argument("--observation", choices=["repr", "json"], default="repr",
                        help="what the agent sees: EnvScaler's str(result) (repr) or canonical JSON")
    parser.add_argument("--max-result-bytes", type=int, default=1 << 20, help="cap on a result's size (1 MiB)")
    parser.add_argument("--memory-bytes", type=int, default=int(os.environ.get("ENVSCALER_WORKER_MEMORY_BYTES", 0)),
                        help="RLIMIT_AS per worker (0: none; default from ENVSCALER_WORKER_MEMORY_BYTES)")


def server_config(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(call_timeout=args.call_timeout, reset_timeout=max(args.call_timeout, 10.0),
                        observation=args.observation, max_result_bytes=args.max_result_bytes,
                        memory_bytes=args.memory_bytes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="serve_bundle", description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--listen", required=True, help="unix:/path/to.sock or tcp:HOST:PORT")
    add_server_options(parser)
    args = parser.parse_args(argv)
    try:
        env, scenarios = load_bundle(args.bundle)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"serve_bundle: cannot read {args.bundle}: {exc}", file=sys.stderr)
        return 2
    return serve_forever(env, scenarios, args.listen, server_config(args))


if __name__ == "__main__":
    sys.exit(main())
