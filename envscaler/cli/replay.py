"""`replay`: a JSONL solution against a fresh episode, then its checks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envscaler.cli.common import CliError, add_command, check_tools, corpus_args, corpus_of, server_args, server_config
from envscaler.spec.loader import SpecError

if TYPE_CHECKING:
    from envscaler.client.replay import ReplayReport
    from envscaler.spec.models import EnvSpec


def cmd_replay(args: argparse.Namespace) -> int:
    from envscaler.client.errors import EnvClientError
    from envscaler.client.replay import CallsFileError, read_calls, replay
    from envscaler.containers.sandbox import SandboxError, open_sandbox

    try:
        calls = read_calls(args.calls)
    except CallsFileError as exc:
        raise CliError(str(exc)) from None
    if args.pool:
        from envscaler.client.pool_client import Pool

        try:
            with Pool(args.pool) as pool, pool.session(args.env, wait=args.wait) as session:
                report = replay(session, args.scenario, calls, _warner(args.calls))
        except EnvClientError as exc:
            raise CliError(str(exc)) from None
        return _print_replay(args, report, f"pooled container (pool at {args.pool})")
    corpus = corpus_of(args, only=args.env)
    try:
        spec = corpus.env(args.env)
        corpus.scenario(args.env, args.scenario)
    except SpecError as exc:
        raise CliError(str(exc)) from None
    check_tools(spec)
    _check_arguments(spec, calls, args.calls)
    try:
        with open_sandbox(spec, corpus.scenarios_of(spec.env_id), args.sandbox, args.base,
                          server_config(args)) as (client, sandbox):
            report = replay(client, args.scenario, calls, _warner(args.calls))
    except (EnvClientError, SandboxError) as exc:
        raise CliError(str(exc)) from None
    return _print_replay(args, report, sandbox)


def _warner(path: Path) -> Any:
    return lambda line: print(f"envscaler-runtime replay: warning: {path.name}, {line}", file=sys.stderr)


def _check_arguments(spec: EnvSpec, calls: list[Any], path: Path) -> None:
    """A solution whose arguments do not fit a tool's schema is refused before anything runs. A call to a tool that
    does not exist is not: it is replayed, in band, in every mode (replay warns of it)."""
    from envscaler.spec.toolschema import derive_tools
    from envscaler.spec.validate import call_argument_problem

    tools = derive_tools(spec.env_class_code, spec.env_class_name)
    names = {t.get("function", {}).get("name") for t in tools}
    for number, call in enumerate(calls, start=1):
        if call.name not in names:
            continue
        if problem := call_argument_problem(tools, call.name, call.arguments):
            raise CliError(f"{path.name}, call {number}: {problem}")


def _print_replay(args: argparse.Namespace, report: ReplayReport, sandbox: str) -> int:
    from envscaler.cli.output import print_replay

    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print_replay(report, sandbox=sandbox)
    return 0 if report.evaluation is not None else 1


def register(sub: Any) -> None:
    p = add_command(sub, "replay", cmd_replay, "run a JSONL solution against a fresh episode and evaluate it")
    corpus_args(p)
    p.add_argument("--env", required=True, help="env_id")
    p.add_argument("--scenario", required=True, help="scenario (task_id)")
    p.add_argument("--calls", required=True, type=Path, help='JSONL of {"name": ..., "arguments": {...}}')
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--sandbox", choices=["auto", "container", "process"], default="auto",
                   help="auto: a hardened container when an engine and the runtime image exist, else a worker "
                        "process")
    p.add_argument("--base", help="base image of the runtime image, when not the bootstrapped one")
    p.add_argument("--pool", metavar="ADDRESS", help="run through a running pool (tcp:HOST:PORT or unix:/path)")
    p.add_argument("--wait", type=float, default=60.0, help="with --pool: seconds to wait for a container (60)")
    server_args(p)
