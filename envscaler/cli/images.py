"""`images bootstrap|prune` and `build`: the base, runtime and environment images."""

from __future__ import annotations

import argparse
import time
from typing import Any

from envscaler.cli.common import (
    add_command,
    corpus_args,
    docker_engine,
    drop_bad_scenarios,
    lenient_corpus,
    runtime_tag_of,
)


def cmd_images_bootstrap(args: argparse.Namespace) -> int:
    tag = runtime_tag_of(docker_engine(), args.base)
    print(f"runtime image: {tag}")
    return 0


def cmd_images_prune(args: argparse.Namespace) -> int:
    from envscaler.images.build import corpus_tags, existing_runtime
    from envscaler.images.prune import UNLABELLED, prune

    client = docker_engine()
    runtime = existing_runtime(client, args.base)
    current = corpus_tags(lenient_corpus(args), client.images.get(runtime).id) if runtime else None
    result = prune(client, args.base, args.dry_run, current)
    verb = "would remove" if args.dry_run else "removed"
    for name in result.removed:
        print(f"{verb} {name}")
    for name in result.kept_in_use:
        print(f"kept {name} (a container uses it)")
    print(f"kept {len(result.kept_current)} images this installation uses")
    for owner, count in sorted(result.kept_other.items()):
        print(f"kept {count} images without an installation label (not provably this installation's)"
              if owner == UNLABELLED else f"kept {count} images of another installation: {owner}")
    print(f"{verb} {len(result.removed)} images" + ("" if args.dry_run else
                                                     f", {result.freed_bytes / 2**20:.0f} MiB of unshared size"))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from envscaler.cli.output import print_build, progress_bar
    from envscaler.images.build import build_envs

    corpus = lenient_corpus(args)
    left_out = drop_bad_scenarios(corpus, args.only)
    client = docker_engine()
    runtime = runtime_tag_of(client, args.base)
    started = time.perf_counter()
    total = len(args.only or corpus.envs)
    with progress_bar("building", total) as advance:
        results = build_envs(client, corpus, runtime, args.only, args.jobs, advance) + left_out
    print_build(results, time.perf_counter() - started)
    return 0 if all(r.status != "failed" for r in results) else 1


def register(sub: Any) -> None:
    images = sub.add_parser("images", help="base and runtime images")
    images_sub = images.add_subparsers(dest="images_command", required=True, metavar="COMMAND")
    p = images_sub.add_parser("bootstrap", help="build the base and runtime images when missing (no registry needed)")
    p.set_defaults(func=cmd_images_bootstrap)
    p.add_argument("--base", help="use this image as the base (e.g. python:3.11-slim) instead of bootstrapping "
                                  "Debian from the host's apt mirror")

    p = images_sub.add_parser("prune", help="remove this installation's runtime and environment images of older "
                                                    "sources, and the builds of the corpus's environments that it no "
                                                    "longer makes (e.g. left by check runs between edits); images of "
                                                    "other corpora and installations are kept")
    p.set_defaults(func=cmd_images_prune)
    corpus_args(p)
    p.add_argument("--base", help="the base in use, when not the bootstrapped one")
    p.add_argument("--dry-run", action="store_true", help="only list what would go")

    p = add_command(sub, "build", cmd_build,
                    "build one image per environment (content-addressed; unchanged ones are cached)")
    corpus_args(p)
    p.add_argument("--only", nargs="+", metavar="ENV_ID", help="build only these environments")
    p.add_argument("--jobs", type=int, default=4, help="parallel jobs (4)")
    p.add_argument("--base", help="base image instead of the bootstrapped Debian one")

