"""How a host starts a sandbox's server: the options of `python -m envscaler.runtime.trusted.serve_bundle`, as one typed
record. The host writes them as arguments (to_argv); the server reads them back (add_arguments, from_args), so the
two sides agree without the host importing the server."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Literal

Observation = Literal["repr", "json"]
# Set by the host on a container (envscaler/containers/hardening.py), read by the server inside it.
CLIENT_CHECKS_ENV = "ENVSCALER_CLIENT_CHECKS"  # "0": checks sent by a client are refused (pools set it)
WORKER_MEMORY_ENV = "ENVSCALER_WORKER_MEMORY_BYTES"  # the default of --memory-bytes


@dataclass(frozen=True)
class ServerOptions:
    call_timeout: float = 10.0
    observation: Observation = "repr"
    max_result_bytes: int = 1 << 20
    max_state_bytes: int = 48 << 20
    memory_bytes: int = 0  # RLIMIT_AS per worker; 0: none
    reflection: bool = False  # gRPC reflection: host-side `serve` only (the image lacks grpcio-reflection)
    # Host-side `serve` only: who may call over TCP (envscaler/protocol/auth.py), and the uid environment code runs
    # as when the server is root (never root itself).
    token_file: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    sandbox_uid: int | None = None

    def to_argv(self) -> list[str]:
        argv = ["--call-timeout", repr(self.call_timeout), "--observation", self.observation,
                "--max-result-bytes", str(self.max_result_bytes), "--max-state-bytes", str(self.max_state_bytes),
                "--memory-bytes", str(self.memory_bytes)]
        for flag, value in (("--token-file", self.token_file), ("--tls-cert", self.tls_cert),
                            ("--tls-key", self.tls_key)):
            argv += [flag, value] if value else []
        argv += ["--sandbox-uid", str(self.sandbox_uid)] if self.sandbox_uid is not None else []
        return [*argv, "--reflection"] if self.reflection else argv


def add_host_arguments(parser: argparse.ArgumentParser) -> None:
    """serve_bundle's flags for a server on a host (`serve`), besides add_arguments'."""
    parser.add_argument("--token-file", default="", help="a bearer token every RPC must carry")
    parser.add_argument("--tls-cert", default="", help="serve TLS with this certificate")
    parser.add_argument("--tls-key", default="", help="the private key of --tls-cert")
    parser.add_argument("--sandbox-uid", type=int, help="run environment code as this uid (a root server)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--call-timeout", type=float, default=10.0, help="seconds per tool call and check (10)")
    parser.add_argument("--observation", choices=["repr", "json"], default="repr",
                        help="what the agent sees: EnvScaler's str(result) (repr) or canonical JSON")
    parser.add_argument("--max-result-bytes", type=int, default=1 << 20, help="cap on a result's size (1 MiB)")
    parser.add_argument("--max-state-bytes", type=int, default=48 << 20,
                        help="cap on a state sent by Reset and GetState (48 MiB; tool results have their own cap)")
    parser.add_argument("--memory-bytes", type=int, default=int(os.environ.get(WORKER_MEMORY_ENV, 0)),
                        help=f"RLIMIT_AS per worker (0: none; default from {WORKER_MEMORY_ENV})")


def from_args(args: argparse.Namespace) -> ServerOptions:
    return ServerOptions(call_timeout=args.call_timeout, observation=args.observation,
                         max_result_bytes=args.max_result_bytes, max_state_bytes=args.max_state_bytes,
                         memory_bytes=args.memory_bytes, reflection=bool(getattr(args, "reflection", False)),
                         token_file=getattr(args, "token_file", "") or "", tls_cert=getattr(args, "tls_cert", "") or "",
                         tls_key=getattr(args, "tls_key", "") or "", sandbox_uid=getattr(args, "sandbox_uid", None))
