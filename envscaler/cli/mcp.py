"""`mcp`: pooled environments over MCP."""

from __future__ import annotations

import argparse
from typing import Any

from envscaler.cli.common import CliError, add_command


def cmd_mcp(args: argparse.Namespace) -> int:
    from envscaler.frontdoor.cli import run

    try:
        return run(args)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def register(sub: Any) -> None:
    p = add_command(sub, "mcp", cmd_mcp,
                    "serve pooled environments over MCP: one lease per handle (HTTP) or per process "
                                "(--stdio)")
    from envscaler.frontdoor.cli import add_arguments

    add_arguments(p)

