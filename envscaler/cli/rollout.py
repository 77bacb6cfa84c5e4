"""`rollout` (an LLM agent over scenarios) and `report`/`results` (its trajectories as tables)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envscaler.cli.common import CliError, add_command, corpus_args, drop_bad_scenarios, tool_schemas_arg
from envscaler.spec.loader import SpecError, load_corpus


def cmd_rollout(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from openai import AsyncOpenAI

    from envscaler.cli.output import print_rollout_summary, rollout_progress
    from envscaler.client.pool_client import AsyncPool
    from envscaler.pool.runner import LocalPool, PoolOptions
    from envscaler.rollout.agent import AgentOptions
    from envscaler.rollout.runner import PreflightError, Summary, preflight, run_rollouts

    if args.samples < 1:
        raise CliError("--samples must be at least 1")
    try:  # a record that does not load, or a scenario with static errors, is left out alone and named
        corpus = load_corpus(args.envs, args.scenarios, strict=False)
    except SpecError as exc:
        raise CliError(str(exc)) from None
    left_out = drop_bad_scenarios(corpus, args.only)
    for problem in [p for p in corpus.problems if p.severity == "error"]:
        print(f"envscaler-runtime rollout: left out: {problem}", file=sys.stderr)
    for row in left_out:
        print(f"envscaler-runtime rollout: left out: {row.env_id}: {row.message}", file=sys.stderr)
    scenario_file = args.scenarios
    if left_out:  # the in-process pool serves what is rolled out, not the scenarios left out
        import atexit
        import shutil
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="envscaler-rollout-"))
        atexit.register(shutil.rmtree, folder, True)
        scenario_file = folder / "scenarios.json"
        scenario_file.write_text(json.dumps([s.model_dump(mode="json") for by_id in corpus.scenarios.values()
                                             for s in by_id.values()]), encoding="utf-8")
    scenarios = [s for env_id, by_id in corpus.scenarios.items() if not args.only or env_id in args.only
                 for s in by_id.values() if s.checklist_with_func]
    if not scenarios:
        raise CliError("no scenario with check functions to roll out")
    if args.mode == "conv" and not args.user_model:
        raise CliError("--mode conv needs --user-model (and --user-base-url when it is served elsewhere)")
    api_key = os.environ.get(args.api_key_env, "") or "EMPTY"
    llm = AsyncOpenAI(base_url=args.base_url, api_key=api_key, max_retries=args.llm_retries, timeout=args.llm_timeout)
    user_llm = AsyncOpenAI(base_url=args.user_base_url or args.base_url, api_key=api_key,
                           max_retries=args.llm_retries, timeout=args.llm_timeout) if args.mode == "conv" else None
    options = AgentOptions(model=args.model, mode=args.mode, max_steps=args.max_steps,
                           episode_timeout=args.episode_timeout, temperature=args.temperature,
                           user_model=args.user_model or "")
    received: list[str] = []

    async def interruptible(address: Any, advance: Callable[[Any], None]) -> Summary:
        # SIGINT/SIGTERM cancel the run: episodes in flight release their leases and are not written
        task = asyncio.ensure_future(run_rollouts(address, scenarios, options, llm, args.out, args.concurrency,
                                                  user_llm, progress=advance, samples=args.samples,
                                                  retry_errors=args.retry_errors, check_first=False))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda sig=sig: (received.append(signal.Signals(sig).name), task.cancel()))
        try:
            return await task
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    async def check(address: Any) -> None:  # a pool's address, or RayPool.aio
        async with AsyncPool(address) if isinstance(address, str) else address as pool:
            await preflight(pool, scenarios, options, llm, user_llm,
                            warn=lambda line: print(f"envscaler-runtime rollout: {line}", file=sys.stderr))

    def run(address: Any) -> Summary:
        try:  # before the progress bar, so a failure is the only line printed
            asyncio.run(check(address))
        except PreflightError as exc:
            raise CliError(f"pre-flight: {exc}") from None
        with rollout_progress(len(scenarios) * args.samples) as advance:
            return asyncio.run(interruptible(address, advance))

    if args.pool:
        summary = run(args.pool)
    elif args.ray:
        from envscaler.ray.rollout import rollout_pool

        try:
            with rollout_pool(args.ray, args.envs, scenario_file, sorted({s.env_id for s in scenarios}),
                              args.pool_size, args.tool_schemas, max(60.0, args.episode_timeout)) as ray_pool:
                summary = run(ray_pool.aio)
        except (RuntimeError, ConnectionError) as exc:
            raise CliError(f"--ray {args.ray}: {exc}") from None
    else:
        from envscaler.images.engine import EngineError

        envs = sorted({s.env_id for s in scenarios})
        size = min(args.concurrency, args.pool_size)
        try:
            with LocalPool(envs=args.envs, scenarios=scenario_file,
                           options=PoolOptions(size=size, only=envs, acquire_wait=600,
                                               tool_schemas=args.tool_schemas)) as local:
                summary = run(local.address)
        except EngineError as exc:  # no engine, or images that do not build: one line, not a traceback
            raise CliError(f"without --pool, rollout starts a pool of its own: {exc} (or give --pool ADDRESS)") \
                from None
    print_rollout_summary(summary, args.out)
    if received or summary.interrupted:
        print(f"envscaler-runtime rollout: stopped by {received[0] if received else 'a signal'}; "
              f"{summary.episodes} episodes written to {args.out}; the same command resumes", file=sys.stderr)
        return 130
    if summary.aborted:
        print(f"envscaler-runtime rollout: stopped: {summary.aborted}", file=sys.stderr)
        return 1
    if summary.infrastructure_failures:
        print(f"envscaler-runtime rollout: {summary.infrastructure_failures} episodes failed for infrastructure "
              f"reasons (see {summary.errors_path}); they are not in {args.out}, so the same command redoes them",
              file=sys.stderr)
        return 1
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from envscaler.cli.output import print_report
    from envscaler.rollout.report import build_report
    from envscaler.rollout.report_html import write_html

    for path in args.files:
        if not path.is_file():
            raise CliError(f"{path}: no such file")
    report = build_report(args.files)
    if not report.rows:
        raise CliError(f"no trajectory record in {', '.join(map(str, args.files))}")
    if args.html:
        try:
            write_html(report, args.html)
        except OSError as exc:
            raise CliError(f"cannot write {args.html}: {exc.strerror}") from None
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print_report(report, args.html)
    return 0


def register(sub: Any) -> None:
    p = add_command(sub, "rollout", cmd_rollout,
                    "run an LLM agent over scenarios in parallel; trajectories and rewards")
    corpus_args(p)
    tool_schemas_arg(p, "; for the pool it starts (a running --pool serves its own, which trajectories record)")
    p.add_argument("--model", required=True, help="the agent's model name")
    p.add_argument("--base-url", required=True, help="an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="variable holding the API key (OPENAI_API_KEY)")
    p.add_argument("--concurrency", type=int, default=64, help="episodes at once (64)")
    p.add_argument("--max-steps", type=int, default=30, help="actions per episode (30)")
    p.add_argument("--episode-timeout", type=float, default=600.0, help="seconds per episode (600)")
    p.add_argument("--temperature", type=float, help="the agent's sampling temperature (default: the endpoint's)")
    p.add_argument("--out", type=Path, required=True, help="trajectories JSONL; episodes already in it are skipped")
    p.add_argument("--mode", choices=["non-conv", "conv"], default="non-conv",
                   help="non-conv: the task is given up front (default); conv: a simulated user reveals it")
    p.add_argument("--user-model", help="conv mode: the user simulator's model")
    p.add_argument("--user-base-url", help="conv mode: the simulator's endpoint (default: --base-url)")
    p.add_argument("--llm-retries", type=int, default=4, help="retries of a failed LLM call, with backoff (4)")
    p.add_argument("--llm-timeout", type=float, default=120.0, help="seconds per LLM call (120)")
    p.add_argument("--only", nargs="+", metavar="ENV_ID", help="only these environments")
    p.add_argument("--pool", metavar="ADDRESS", help="a running pool; default: start one in this process")
    p.add_argument("--pool-size", type=int, default=64, help="size of the in-process pool (64, at most --concurrency); "
                                                             "with --ray, of each node's pool when it starts them")
    p.add_argument("--ray", metavar="auto|ADDRESS", help="run through a pool on every node of a Ray cluster "
                                                         "(envscaler.ray; the running ones, or started for this run)")
    p.add_argument("--samples", "--samples-per-task", type=int, default=1, metavar="N",
                   help="independent episodes per scenario, each in a fresh sandbox, recorded with its "
                        "sample_index (GRPO-style groups) (1)")
    p.add_argument("--retry-errors", "--retry-failed", action="store_true",
                   help="re-run episodes recorded with an error (deadline, max_steps, ...); infrastructure "
                        "failures are never recorded as done and always re-run")

    for name, text in (("report", "per-environment table and reward distribution of rollout JSONL files"),
                       ("results", "the same as report")):
        p = add_command(sub, name, cmd_report, text)
        p.add_argument("files", nargs="+", type=Path, metavar="FILE.jsonl", help="trajectories written by rollout")
        p.add_argument("--json", action="store_true", help="print the report as JSON")
        p.add_argument("--html", type=Path, metavar="FILE.html",
                       help="also write one self-contained HTML page: tables by environment and scenario (pass@k, "
                            "variance), plots, and every trajectory with its calls and checks")

