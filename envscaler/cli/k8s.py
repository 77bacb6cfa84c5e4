"""`k8s manifests`: Kubernetes manifests for the environment images."""

from __future__ import annotations

import argparse
from typing import Any

from envscaler.cli.common import CliError, corpus_args
from envscaler.spec.loader import SpecError, load_corpus


def cmd_k8s_manifests(args: argparse.Namespace) -> int:
    from envscaler.k8s.cli import settings_of, write

    try:
        settings = settings_of(args)
        corpus = load_corpus(args.envs, args.scenarios)
    except (ValueError, SpecError) as exc:
        raise CliError(str(exc)) from None
    unknown = sorted(set(args.only or []) - set(corpus.envs))
    if unknown:
        raise CliError(f"--only names environments the corpus does not have: {', '.join(unknown)}")
    envs = {e: spec.spec_hash for e, spec in corpus.envs.items() if not args.only or e in args.only}
    try:
        for path in write(args.out, envs, settings):
            print(path)
    except OSError as exc:
        raise CliError(f"cannot write to {args.out}: {exc.strerror or exc}") from None
    return 0


def register(sub: Any) -> None:
    k8s = sub.add_parser("k8s", help="Kubernetes manifests for the environment images")
    k8s_sub = k8s.add_subparsers(dest="k8s_command", required=True, metavar="COMMAND")
    p = k8s_sub.add_parser("manifests", help="agent-sandbox SandboxTemplate + SandboxWarmPool per environment, and "
                                             "the one-pool-per-node DaemonSet (docs/kubernetes.md)")
    p.set_defaults(func=cmd_k8s_manifests)
    corpus_args(p)
    from envscaler.k8s.cli import add_arguments as k8s_arguments

    k8s_arguments(p)

