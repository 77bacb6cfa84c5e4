"""`serve`: one environment over gRPC, in a process sandbox on this host."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from typing import Any

from envscaler.cli.common import (
    CliError,
    add_command,
    check_tools,
    corpus_args,
    corpus_of,
    server_args,
    server_config,
    tool_schemas_arg,
)
from envscaler.spec.loader import SpecError


def cmd_serve(args: argparse.Namespace) -> int:
    """Validate here, then become the sandbox's server (exec): this trusted process never hosts environment code,
    and the server gets the signals (and the exit status) itself. The bundle rides in an anonymous file."""
    from envscaler.containers.process import serve_argv
    from envscaler.protocol import bundle
    from envscaler.protocol.addresses import grpc_address
    from envscaler.spec.served import from_spec
    from envscaler.spec.toolschema import SchemaError

    corpus = corpus_of(args, only=args.env)
    try:
        spec = corpus.env(args.env)
        grpc_address(args.listen)
        check_tools(spec, args.tool_schemas)  # a SchemaError that names the env
        served, scenarios = from_spec(spec, corpus.scenarios_of(spec.env_id), args.tool_schemas)
    except (SpecError, SchemaError, ValueError) as exc:
        raise CliError(str(exc)) from None
    fd = os.memfd_create("envscaler-bundle", 0)  # inherited by the server; gone when it exits
    with os.fdopen(fd, "wb", closefd=False) as out:
        out.write(bundle.bundle(served, scenarios))
    argv = serve_argv(f"/proc/self/fd/{fd}", args.listen, replace(server_config(args), reflection=True),
                      prog="envscaler-runtime serve")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)


def register(sub: Any) -> None:
    p = add_command(sub, "serve", cmd_serve, "serve one environment over gRPC (EnvService + grpc.health.v1)")
    corpus_args(p)
    p.add_argument("--env", required=True, help="env_id")
    p.add_argument("--listen", required=True, help="unix:/path/to.sock or tcp:HOST:PORT")
    server_args(p)
    tool_schemas_arg(p)

