"""`serve`: one environment over gRPC, in a process sandbox on this host (not a container): safe by default, it
listens on loopback or a Unix socket unless given a token and TLS, never runs environment code as root, and refuses
client checks unless asked."""

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
    from envscaler.protocol.auth import server_security
    from envscaler.protocol.options import CLIENT_CHECKS_ENV
    from envscaler.spec.served import from_spec
    from envscaler.spec.toolschema import SchemaError

    corpus = corpus_of(args, only=args.env)
    try:
        spec = corpus.env(args.env)
        server_security(grpc_address(args.listen), args.token_file, args.tls_cert, args.tls_key)
        check_tools(spec, args.tool_schemas)  # a SchemaError that names the env
        served, scenarios = from_spec(spec, corpus.scenarios_of(spec.env_id), args.tool_schemas)
    except (SpecError, SchemaError, ValueError) as exc:
        raise CliError(str(exc)) from None
    # Never as root: a root `serve` runs environment code as an unprivileged uid (no capability, Landlock).
    sandbox_uid = unprivileged_uid() if os.geteuid() == 0 else None
    print(f"envscaler-runtime serve: a process sandbox on this host, not a container: environment code runs as uid "
          f"{os.geteuid() if sandbox_uid is None else sandbox_uid} under Landlock and can read what that user can "
          f"read; client checks {'on' if args.allow_client_checks else 'off'}; for untrusted code use `pool`",
          flush=True)
    os.environ[CLIENT_CHECKS_ENV] = "1" if args.allow_client_checks else "0"  # read by the server we become
    fd = os.memfd_create("envscaler-bundle", 0)  # inherited by the server; gone when it exits
    with os.fdopen(fd, "wb", closefd=False) as out:
        out.write(bundle.bundle(served, scenarios))
    options = replace(server_config(args), reflection=True, token_file=args.token_file, tls_cert=args.tls_cert,
                      tls_key=args.tls_key, sandbox_uid=sandbox_uid)
    argv = serve_argv(f"/proc/self/fd/{fd}", args.listen, options, prog="envscaler-runtime serve")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)


NOBODY = 65534


def unprivileged_uid() -> int:
    """The uid environment code runs as under a root `serve`: the system's `nobody`."""
    import pwd

    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return NOBODY


def register(sub: Any) -> None:
    p = add_command(sub, "serve", cmd_serve, "serve one environment over gRPC (EnvService + grpc.health.v1)")
    corpus_args(p)
    p.add_argument("--env", required=True, help="env_id")
    p.add_argument("--listen", required=True, help="unix:/path/to.sock or tcp:HOST:PORT")
    server_args(p)
    tool_schemas_arg(p)
    p.add_argument("--token-file", metavar="PATH", default="",
                   help="a bearer token (one line) every RPC must carry (EnvClient(token=...) or ENVSCALER_TOKEN); "
                        "required, with --tls-cert/--tls-key, on an address other machines can reach")
    p.add_argument("--tls-cert", metavar="PEM", default="", help="serve TLS with this certificate")
    p.add_argument("--tls-key", metavar="PEM", default="", help="the private key of --tls-cert")
    p.add_argument("--allow-client-checks", action="store_true",
                   help="accept check functions sent by clients in Evaluate (off by default: code from outside the "
                        "scenario)")

