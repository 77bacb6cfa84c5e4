"""What a sandbox container runs: `python -m envscaler.runtime.trusted.serve_bundle BUNDLE --listen ADDRESS`.

BUNDLE is the environment as plain JSON (envscaler/runtime/trusted/served.py): a bundle directory
(scenarios stay on disk, read one per Reset) or a single JSON file, validated when
the image was built; this entry imports no pydantic and no CLI, so each sandbox's
server process stays small.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from envscaler.protocol.options import CLIENT_CHECKS_ENV, ServerOptions, add_arguments, add_host_arguments, from_args
from envscaler.runtime import confine
from envscaler.runtime.trusted import launcher
from envscaler.runtime.trusted.served import load_bundle

if TYPE_CHECKING:
    from envscaler.runtime.trusted.server import ServerConfig


def server_config(options: ServerOptions, listen: str = "unix:") -> ServerConfig:
    """ValueError (one line) for a token or TLS files that cannot be used, or an exposed address without them."""
    from envscaler.protocol.addresses import grpc_address
    from envscaler.protocol.auth import server_security
    from envscaler.runtime.trusted.server import ServerConfig

    security = server_security(grpc_address(listen), options.token_file, options.tls_cert, options.tls_key)
    return ServerConfig(call_timeout=options.call_timeout, reset_timeout=max(options.call_timeout, 10.0),
                        observation=options.observation, max_result_bytes=options.max_result_bytes,
                        memory_bytes=options.memory_bytes, max_state_bytes=options.max_state_bytes,
                        allow_client_checks=os.environ.get(CLIENT_CHECKS_ENV, "1") == "1",
                        reflection=options.reflection, token=security.token, credentials=security.credentials)


def _return_large_buffers() -> None:
    """A fixed mmap threshold: a Reset's or GetState's tens of MiB go back to the system when freed, instead of
    staying in the heap under glibc's dynamic threshold (the server would keep its largest state's size)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD


def main(argv: list[str] | None = None) -> int:
    # Started as root (the sandbox's default): split privileges before anything else runs: the server is exec'd as
    # its own uid with four capabilities, and starts each lease's zygote as the sandbox uid.
    if os.getuid() == 0 and os.environ.get("ENVSCALER_SANDBOX_SWEEP") == "1":  # set by the runtime image only
        needed = sum(1 << cap for cap in launcher.SERVER_CAPABILITIES)
        if confine.capabilities()[0] & needed != needed:
            print("serve_bundle: started as root without CAP_SETUID, CAP_SETGID, CAP_SETPCAP and CAP_KILL: cannot run "
                  "environment code under a uid of its own; add those capabilities or start as a non-root user",
                  file=sys.stderr)
            return 2
        launcher.launch(list(sys.argv[1:] if argv is None else argv))  # never returns: it becomes the server
    split = launcher.launched_split()
    confine.set_non_dumpable()
    _return_large_buffers()
    parser = argparse.ArgumentParser(prog="serve_bundle", description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--listen", required=True, help="unix:/path/to.sock or tcp:HOST:PORT")
    parser.add_argument("--prog", default="serve_bundle", help="the name its messages go by (default serve_bundle)")
    parser.add_argument("--reflection", action="store_true",
                        help="serve gRPC reflection (host-side `serve` only: the image lacks grpcio-reflection)")
    add_arguments(parser)
    add_host_arguments(parser)
    args = parser.parse_args(argv)
    try:
        env, scenarios = load_bundle(args.bundle)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"{args.prog}: cannot read {args.bundle}: {exc}", file=sys.stderr)
        return 2
    if str(args.bundle).startswith("/proc/self/fd/"):  # an anonymous file from `serve`: read; not for the workers
        with contextlib.suppress(OSError, ValueError):
            os.close(int(str(args.bundle).rsplit("/", 1)[1]))
    from envscaler.runtime.trusted.server import serve_forever

    options = from_args(args)
    if split is None and options.sandbox_uid is not None:  # a root server on a host: environment code is not root
        split = options.sandbox_uid
    try:
        return serve_forever(env, scenarios, args.listen, server_config(options, args.listen), split, args.prog)
    except (OSError, ValueError) as exc:  # the address is in use, cannot be bound or is malformed: one line
        print(f"{args.prog}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
