"""`openenv`: pooled environments over OpenEnv's protocol."""

from __future__ import annotations

import argparse
from typing import Any

from envscaler.cli.common import CliError, add_command


def cmd_openenv(args: argparse.Namespace) -> int:
    from envscaler.frontdoor.openenv.cli import run

    try:
        return run(args)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def register(sub: Any) -> None:
    p = add_command(sub, "openenv", cmd_openenv,
                    "serve pooled environments over OpenEnv's protocol: one base URL per environment "
                    "(/envs/<env_id>), one lease per session")
    from envscaler.frontdoor.openenv.cli import add_arguments

    add_arguments(p)
