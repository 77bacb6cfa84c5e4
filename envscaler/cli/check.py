"""`check`: every scenario run in the sandbox, checks and reference solutions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from envscaler.cli.common import CliError, add_command, corpus_args, lenient_corpus


def cmd_check(args: argparse.Namespace) -> int:
    from envscaler.cli.output import print_checks, status
    from envscaler.synth.check import check_corpus

    corpus = lenient_corpus(args)
    if args.solutions is not None and not args.solutions.is_dir():
        raise CliError(f"--solutions {args.solutions}: not a directory")
    with status("running every scenario's checks in the sandbox"):
        rows = check_corpus(corpus, args.only, args.solutions, args.sandbox, args.base)
    unloaded = [str(p) for p in corpus.problems if p.severity == "error"]
    if args.json:
        print(json.dumps({"scenarios": [r.as_json() for r in rows], "unloaded": unloaded}, indent=2))
    else:
        print_checks(rows, unloaded)
    return 1 if unloaded or any(r.errors for r in rows) else 0


def register(sub: Any) -> None:
    p = add_command(sub, "check", cmd_check,
                    "run every scenario in the sandbox: its checks on the initial state (already "
                "solved, or erroring), unknown init_config keys, reference solutions replayed to reward 1.0")
    corpus_args(p)
    p.add_argument("--only", nargs="+", metavar="ENV_ID", help="check only these environments")
    p.add_argument("--solutions", type=Path, metavar="DIR",
                   help="reference solutions, <env_id>__<task_id>.jsonl of {\"name\", \"arguments\"} lines "
                        "(none by default)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--sandbox", choices=["auto", "container", "process"], default="auto",
                   help="where scenarios run: a hardened container when an engine is there, else a worker "
                        "process (auto)")
    p.add_argument("--base", help="base image of the runtime image, when not the bootstrapped one")

