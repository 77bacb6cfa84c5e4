"""`engine ensure`: a reachable Docker engine, installed and started when there is none (Debian, as root). The
script ships in the wheel (envscaler/images/ensure-engine.sh), so an install outside the checkout can run it."""

from __future__ import annotations

import argparse
import subprocess
from importlib import resources
from typing import Any


def cmd_engine_ensure(args: argparse.Namespace) -> int:
    script = resources.files("envscaler.images") / "ensure-engine.sh"
    with resources.as_file(script) as path:
        return subprocess.run(["bash", str(path)], check=False).returncode


def register(sub: Any) -> None:
    engine = sub.add_parser("engine", help="the Docker engine this host runs sandboxes on")
    engine_sub = engine.add_subparsers(dest="engine_command", required=True, metavar="COMMAND")
    p = engine_sub.add_parser("ensure", help="make sure a Docker engine answers; on Debian as root with none, "
                                             "install docker.io from apt and start dockerd (an engine that already "
                                             "runs is never touched)")
    p.set_defaults(func=cmd_engine_ensure)
