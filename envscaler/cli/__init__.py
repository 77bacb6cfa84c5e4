"""`envscaler-runtime`: the command line. `main` only dispatches: each command group is one module of this package
that owns its parser (`register`) and its run functions. Errors are one clear line, never a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import envscaler
from envscaler.cli import check, console, corpus, engine, images, k8s, mcp, openenv, pool, replay, rollout, serve, synth
from envscaler.cli.common import CliError, apply_corpus_defaults, merge_corpus_files

# In the order `--help` lists them.
COMMANDS = (corpus, serve, engine, images, pool, rollout, check, synth, mcp, openenv, console, k8s, replay)
DESCRIPTION = ("Run EnvScaler-style tool environments as sandboxed, pooled services: validate and build a corpus, "
               "serve a pool of warm hardened containers, roll out agents, and check scenarios.")


# A third-party module a command needs, and the extra that installs it (the core install is the client alone).
EXTRA_OF = {"docker": "server", "rich": "server", "jsonschema": "server", "docstring_parser": "server",
            "prometheus_client": "server", "grpc_health": "server", "grpc_reflection": "server", "uvloop": "server",
            "yaml": "server", "starlette": "console", "uvicorn": "console", "jinja2": "console", "pygments": "console",
            "multipart": "console", "websockets": "openenv", "mcp": "mcp", "openai": "rollout", "ray": "ray",
            "testcontainers": "testing"}


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The extra to install for a module this installation lacks, or None (a bug: let it show)."""
    return EXTRA_OF.get((exc.name or "").split(".")[0])


class _VersionAction(argparse.Action):
    """--version, looked up only when asked for."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        parser.exit(message=f"{parser.prog} {envscaler.__version__}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="envscaler-runtime", description=DESCRIPTION)
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "lenient", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        apply_corpus_defaults(args)
        if isinstance(getattr(args, "envs", None), list) or isinstance(getattr(args, "scenarios", None), list):
            merge_corpus_files(args)
        return int(args.func(args))
    except CliError as exc:
        print(f"envscaler-runtime {args.command}: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc)
        if extra is None:
            raise
        print(f"envscaler-runtime {args.command}: needs the [{extra}] extra ({exc.name} is not installed): "
              f"pip install 'envscaler-runtime[{extra}]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"envscaler-runtime {args.command}: interrupted", file=sys.stderr)
        return 130
