"""`console`: the web console."""

from __future__ import annotations

import argparse
from typing import Any

from envscaler.cli.common import CliError, add_command, corpus_args, corpus_of


def cmd_console(args: argparse.Namespace) -> int:
    from envscaler.console.cli import run

    try:
        return run(args, corpus_of(args))
    except ValueError as exc:
        raise CliError(str(exc)) from None


def register(sub: Any) -> None:
    p = add_command(sub, "console", cmd_console,
                    "web console: browse environments, play a scenario by hand through the "
                                        "pool, watch the pool, read rollouts")
    corpus_args(p)
    from envscaler.console.cli import add_arguments as console_arguments

    console_arguments(p)

