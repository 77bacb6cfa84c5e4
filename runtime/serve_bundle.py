"""What a sandbox container runs: `python -m envscaler.runtime.serve_bundle BUNDLE --listen ADDRESS`.

BUNDLE is the environment as plain JSON (runtime/served.py): a bundle directory
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

from envscaler.runtime import confine, launcher
from envscaler.runtime.served import load_bundle

if TYPE_CHECKING:
    from envscaler.runtime.server import ServerConfig



def add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--call-timeout", type=float, default=10.0, help="seconds per tool call and check (10)")
    parser.add_argument("--observation", choices=["repr", "json"], default="repr",
                        help="what the agent sees: EnvScaler's str(result) (repr) or canonical JSON")
    parser.add_argument("--max-result-bytes", type=int, default=1 << 20, help="cap on a result's size (1 MiB)")
    parser.add_argument("--max-state-bytes", type=int, default=48 << 20,
                        help="cap on a state sent by Reset and GetState (48 MiB; tool results have their own cap)")
    parser.add_argument("--memory-bytes", type=int, default=int(os.environ.get("ENVSCALER_WORKER_MEMORY_BYTES", 0)),
                        help="RLIMIT_AS per worker (0: none; default from ENVSCALER_WORKER_MEMORY_BYTES)")


def server_config(args: argparse.Namespace) -> ServerConfig:
    from envscaler.runtime.server import ServerConfig

    return ServerConfig(call_timeout=args.call_timeout, reset_timeout=max(args.call_timeout, 10.0),
                        observation=args.observation, max_result_bytes=args.max_result_bytes,
                        memory_bytes=args.memory_bytes, max_state_bytes=args.max_state_bytes,
                        allow_client_checks=os.environ.get("ENVSCALER_CLIENT_CHECKS", "1") == "1")


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
    add_server_options(parser)
    args = parser.parse_args(argv)
    try:
        env, scenarios = load_bundle(args.bundle)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"serve_bundle: cannot read {args.bundle}: {exc}", file=sys.stderr)
        return 2
    from envscaler.runtime.server import serve_forever

    return serve_forever(env, scenarios, args.listen, server_config(args), split)


if __name__ == "__main__":
    sys.exit(main())
