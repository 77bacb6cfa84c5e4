"""`synth skel|scen`: SkelBuilder and ScenGenerator with an LLM."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envscaler.cli.common import CliError
from envscaler.spec.loader import SpecError, load_corpus

if TYPE_CHECKING:
    from envscaler.synth.llm import LLM


def _synth_llm(args: argparse.Namespace) -> LLM:
    from openai import AsyncOpenAI

    from envscaler.synth.llm import LLM

    client = AsyncOpenAI(base_url=args.base_url, api_key=os.environ.get(args.api_key_env, "") or "EMPTY",
                         max_retries=args.llm_retries, timeout=args.llm_timeout)
    return LLM(client=client, model=args.model, cache_dir=args.out / "cache", concurrency=args.concurrency,
               max_repairs=args.max_repairs)


def cmd_synth_skel(args: argparse.Namespace) -> int:
    import asyncio

    from envscaler.cli.output import print_synth_report, status
    from envscaler.synth.manifest import write_manifest
    from envscaler.synth.skel import SkelSettings, build_skeletons, read_tasks

    try:
        tasks = read_tasks(args.tasks)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read tasks from {args.tasks}: {exc}") from None
    if not tasks:
        raise CliError(f"{args.tasks} holds no task")
    settings = SkelSettings(min_usefulness=args.min_score, min_modelability=args.min_score, rounds=args.rounds,
                            pass_threshold=args.pass_rate, sandbox=args.sandbox, embed_model=args.embed_model or "",
                            id_prefix=args.id_prefix or "", retry_failed=args.retry_failed)
    llm = _synth_llm(args)
    started = time.perf_counter()
    with status(f"SkelBuilder over {len(tasks)} tasks (artifacts in {args.out})"):
        report = asyncio.run(build_skeletons(llm, tasks, args.out, settings))
    write_manifest(args.out, "skel", llm, args.base_url, settings, report, time.perf_counter() - started,
                   args.price_in, args.price_out)
    print_synth_report("environments", report["environments"], llm.usage, args.out / "env_metadata.json")
    return unavailable_exit(sum(e["status"] == "unavailable" for e in report["environments"].values()),
                             "environments or tasks")


def cmd_synth_scen(args: argparse.Namespace) -> int:
    import asyncio

    from envscaler.cli.output import print_synth_report, status
    from envscaler.synth.manifest import write_manifest
    from envscaler.synth.scen import ScenSettings, generate_scenarios

    try:
        corpus = load_corpus(args.envs, None)
    except SpecError as exc:
        raise CliError(str(exc)) from None
    settings = ScenSettings(per_env=args.per_env, min_task_words=args.min_task_words, sandbox=args.sandbox,
                            retry_failed=args.retry_failed)
    llm = _synth_llm(args)
    started = time.perf_counter()
    with status(f"ScenGenerator over {len(corpus.envs)} environments (artifacts in {args.out})"):
        report = asyncio.run(generate_scenarios(llm, list(corpus.envs.values()), args.out, settings))
    write_manifest(args.out, "scen", llm, args.base_url, settings, report, time.perf_counter() - started,
                   args.price_in, args.price_out)
    print_synth_report("scenarios", report, llm.usage, args.out / "scenarios.json")
    return unavailable_exit(sum(r["unavailable"] for r in report.values()), "scenario drafts")


def unavailable_exit(count: int, what: str) -> int:
    """Items the endpoint (or the engine) failed for transient reasons are not rejections: say so, exit 1."""
    if count:
        print(f"envscaler-runtime synth: {count} {what} could not be synthesized because the LLM endpoint or the "
              "sandbox failed (not a rejection, nothing cached); run the same command again to retry them",
              file=sys.stderr)
        return 1
    return 0


def register(sub: Any) -> None:
    synth = sub.add_parser("synth", help="synthesize environments (skel) and scenarios (scen) with an LLM")
    synth_sub = synth.add_subparsers(dest="synth_command", required=True, metavar="COMMAND")

    def llm_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", type=Path, required=True, help="artifact directory (resumable)")
        p.add_argument("--model", required=True, help="the LLM's model name")
        p.add_argument("--base-url", required=True, help="an OpenAI-compatible endpoint")
        p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="variable holding the API key (OPENAI_API_KEY)")
        p.add_argument("--concurrency", type=int, default=8, help="LLM requests at once (8)")
        p.add_argument("--max-repairs", type=int, default=2, help="re-asks after an unusable reply (2)")
        p.add_argument("--llm-retries", type=int, default=4, help="retries of a failed LLM call, with backoff (4)")
        p.add_argument("--llm-timeout", type=float, default=120.0, help="seconds per LLM call (120)")
        p.add_argument("--price-in", type=float, default=0.0, help="$ per million prompt tokens, for the manifest (0)")
        p.add_argument("--price-out", type=float, default=0.0, help="$ per million completion tokens (0)")
        p.add_argument("--retry-failed", action="store_true",
                       help="re-run recorded rejections (stages 2-3 of skel, drafts of scen), asking the endpoint "
                            "anew instead of reading its cached answers (failures from an unreachable endpoint are "
                            "always re-run)")
        p.add_argument("--sandbox", choices=["auto", "container", "process"], default="auto",
                       help="where candidate code runs: auto (default: a hardened container when an engine and the "
                            "runtime image exist, else a worker process), container or process")

    p = synth_sub.add_parser("skel", help="SkelBuilder: tasks -> checked environment classes (env_metadata.json)")
    p.set_defaults(func=cmd_synth_skel)
    p.add_argument("--tasks", type=Path, required=True, help="user requests: JSON list or JSONL")
    llm_args(p)
    p.add_argument("--min-score", type=int, default=7, help="usefulness and modelability threshold (7)")
    p.add_argument("--rounds", type=int, default=30, help="dual-agent rounds per environment (30)")
    p.add_argument("--pass-rate", type=float, default=0.85, help="(pass + warning) / total to keep (0.85)")
    p.add_argument("--embed-model", help="embedding model for near-duplicate removal (same endpoint)")
    p.add_argument("--id-prefix", help="env ids are PREFIX1, PREFIX2, ... (default: env_<name of --out>_, so they "
                                       "never collide with the bundled env_1...)")

    p = synth_sub.add_parser("scen", help="ScenGenerator: environments -> scenarios with checks (scenarios.json)")
    p.set_defaults(func=cmd_synth_scen)
    p.add_argument("--envs", type=Path, required=True, help="env metadata, e.g. the output of synth skel")
    llm_args(p)
    p.add_argument("--per-env", type=int, default=5, help="scenarios attempted per environment (5)")
    p.add_argument("--min-task-words", type=int, default=50, help="shorter task descriptions are rejected (50)")

