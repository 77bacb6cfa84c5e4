"""`envscaler-runtime`: the command line. Each subcommand parses its arguments and
calls into one part of the system; errors are one clear line, never a traceback."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import envscaler
from envscaler.spec.loader import Corpus, SpecError, load_corpus

if TYPE_CHECKING:
    from docker import DockerClient

    from envscaler.client.replay import ReplayReport
    from envscaler.protocol.options import ServerOptions
    from envscaler.spec.models import EnvSpec
    from envscaler.synth.llm import LLM


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


def _corpus_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--envs", type=Path, nargs="+", action="extend", metavar="FILE",
                        help="env metadata (EnvScaler's 191_env_metadata.json layout), one file or several; "
                             "default: the bundled examples")
    parser.add_argument("--scenarios", type=Path, nargs="+", action="extend", metavar="FILE",
                        help="scenarios (JSON list or JSONL), one file or several; default: the bundled "
                             "examples when --envs is not given")


def _records_of(path: Path) -> list[Any]:
    """A corpus file's records as a list: a JSON list, a dict keyed by env_id, or JSONL."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise CliError(f"{path}: neither JSON nor JSONL: {exc.msg} at line {exc.lineno}") from None
    if isinstance(data, dict):
        return [dict(record, env_id=record.get("env_id", key)) if isinstance(record, dict) else record
                for key, record in data.items()]
    if not isinstance(data, list):
        raise CliError(f"{path}: expected a list of records or a dict keyed by env_id")
    return data


def _merge_corpus_files(args: argparse.Namespace) -> None:
    """Several --envs/--scenarios files become one of each (in a temporary folder removed at exit); an env_id
    defined in two files is refused, naming both."""
    import atexit
    import shutil
    import tempfile

    envs: list[Path] | None = args.envs
    scenarios: list[Path] | None = args.scenarios
    if (envs is None or len(envs) == 1) and (scenarios is None or len(scenarios) == 1):
        args.envs, args.scenarios = envs and envs[0], scenarios and scenarios[0]
        return
    folder = Path(tempfile.mkdtemp(prefix="envscaler-corpus-"))
    atexit.register(shutil.rmtree, folder, True)
    if envs is not None and len(envs) > 1:
        seen: dict[str, Path] = {}
        merged = []
        for path in envs:
            for record in _records_of(path):
                env_id = record.get("env_id") if isinstance(record, dict) else None
                if isinstance(env_id, str) and env_id in seen:
                    raise CliError(f"env_id {env_id!r} is defined in both {seen[env_id]} and {path}; env ids must "
                                   "be unique across --envs files")
                if isinstance(env_id, str):
                    seen[env_id] = path
                merged.append(record)
        (folder / "env_metadata.json").write_text(json.dumps(merged), encoding="utf-8")
        args.envs = folder / "env_metadata.json"
    else:
        args.envs = envs and envs[0]
    if scenarios is not None and len(scenarios) > 1:
        merged = [record for path in scenarios for record in _records_of(path)]
        (folder / "scenarios.json").write_text(json.dumps(merged), encoding="utf-8")
        args.scenarios = folder / "scenarios.json"
    else:
        args.scenarios = scenarios and scenarios[0]


def _load(args: argparse.Namespace, only: str | None = None) -> Corpus:
    """The corpus; with `only`, just that environment's scenarios (a large file is not held whole)."""
    try:
        return load_corpus(args.envs, args.scenarios, only=only)
    except SpecError as exc:
        raise CliError(f"cannot load the corpus (run `envscaler-runtime validate` for a full report):\n{exc}") from None


# ---------------------------------------------------------------- validate


def cmd_validate(args: argparse.Namespace) -> int:
    from envscaler.cli_output import print_validation
    from envscaler.spec.validate import validate_files

    report = validate_files(args.envs, args.scenarios)
    if args.json:
        print(json.dumps([{"kind": r.kind, "record": r.location, "id": r.record_id, "status": r.status,
                           "problems": [{"field": p.field, "severity": p.severity, "message": p.message}
                                        for p in r.problems]} for r in report.records], indent=2))
    else:
        print_validation(report, show_all=args.all)
    return 0 if report.ok else 1


# ---------------------------------------------------------------- schema


def cmd_schema(args: argparse.Namespace) -> int:
    from envscaler.spec.toolschema import SchemaError, served_tools

    spec = _corpus_env(args)
    try:
        tools = served_tools(spec.tools, spec.env_class_code, spec.env_class_name, args.tool_schemas)
    except SchemaError as exc:
        raise CliError(f"{spec.env_id}: {exc}") from None
    print(json.dumps(tools, indent=2, ensure_ascii=False))
    return 0


def _corpus_env(args: argparse.Namespace) -> EnvSpec:
    corpus = _load(args)
    try:
        return corpus.env(args.env)
    except SpecError as exc:
        raise CliError(str(exc)) from None


# ---------------------------------------------------------------- mcp


def cmd_mcp(args: argparse.Namespace) -> int:
    from envscaler.frontdoor.cli import run

    try:
        return run(args)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def cmd_console(args: argparse.Namespace) -> int:
    from envscaler.console.cli import run

    try:
        return run(args, _load(args))
    except ValueError as exc:
        raise CliError(str(exc)) from None


# ---------------------------------------------------------------- serve


def _server_args(parser: argparse.ArgumentParser) -> None:
    from envscaler.protocol.options import add_arguments

    add_arguments(parser)


def _server_config(args: argparse.Namespace) -> ServerOptions:
    from envscaler.protocol.options import from_args

    return from_args(args)


def _tool_schemas_arg(parser: argparse.ArgumentParser, note: str = "") -> None:
    parser.add_argument("--tool-schemas", choices=["derived", "record"], default="derived",
                        help="tools served for records that carry their own: derived from the code, with the "
                             "record's descriptions (default), or the record's list as published (EnvScaler's "
                             "prompts, bit for bit)" + note)


def _check_tools(spec: EnvSpec, tool_schemas: str = "derived") -> None:
    """An environment whose tools cannot be read (e.g. an annotation past the limits) is refused before any
    process starts."""
    from envscaler.spec.toolschema import SchemaError, served_tools

    try:
        served_tools(spec.tools, spec.env_class_code, spec.env_class_name, tool_schemas)
    except SchemaError as exc:
        raise CliError(f"{spec.env_id}: {exc}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    """Validate here, then become the sandbox's server (exec): this trusted process never hosts environment code,
    and the server gets the signals (and the exit status) itself. The bundle rides in an anonymous file."""
    from envscaler.containers.process import serve_argv
    from envscaler.protocol import bundle
    from envscaler.protocol.addresses import grpc_address
    from envscaler.spec.served import from_spec
    from envscaler.spec.toolschema import SchemaError

    corpus = _load(args, only=args.env)
    try:
        spec = corpus.env(args.env)
        grpc_address(args.listen)
        _check_tools(spec, args.tool_schemas)  # a SchemaError that names the env
        served, scenarios = from_spec(spec, corpus.scenarios_of(spec.env_id), args.tool_schemas)
    except (SpecError, SchemaError, ValueError) as exc:
        raise CliError(str(exc)) from None
    fd = os.memfd_create("envscaler-bundle", 0)  # inherited by the server; gone when it exits
    with os.fdopen(fd, "wb", closefd=False) as out:
        out.write(bundle.bundle(served, scenarios))
    argv = serve_argv(f"/proc/self/fd/{fd}", args.listen, replace(_server_config(args), reflection=True),
                      prog="envscaler-runtime serve")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)


# ---------------------------------------------------------------- replay


def cmd_replay(args: argparse.Namespace) -> int:
    from envscaler.client.errors import EnvClientError
    from envscaler.client.replay import CallsFileError, read_calls, replay
    from envscaler.containers.sandbox import SandboxError, open_sandbox

    try:
        calls = read_calls(args.calls)
    except CallsFileError as exc:
        raise CliError(str(exc)) from None
    if args.pool:
        from envscaler.client.pool_client import Pool

        try:
            with Pool(args.pool) as pool, pool.session(args.env, wait=args.wait) as session:
                report = replay(session, args.scenario, calls)
        except EnvClientError as exc:
            raise CliError(str(exc)) from None
        return _print_replay(args, report, f"pooled container (pool at {args.pool})")
    corpus = _load(args, only=args.env)
    try:
        spec = corpus.env(args.env)
        corpus.scenario(args.env, args.scenario)
    except SpecError as exc:
        raise CliError(str(exc)) from None
    _check_tools(spec)
    _check_arguments(spec, calls, args.calls)
    try:
        with open_sandbox(spec, corpus.scenarios_of(spec.env_id), args.sandbox, args.base,
                          _server_config(args)) as (client, sandbox):
            report = replay(client, args.scenario, calls)
    except (EnvClientError, SandboxError) as exc:
        raise CliError(str(exc)) from None
    return _print_replay(args, report, sandbox)


def _check_arguments(spec: EnvSpec, calls: list[Any], path: Path) -> None:
    """A solution whose arguments do not fit the tools' schemas is refused before anything runs."""
    from envscaler.spec.toolschema import derive_tools
    from envscaler.spec.validate import call_argument_problem

    tools = derive_tools(spec.env_class_code, spec.env_class_name)
    for number, call in enumerate(calls, start=1):
        if problem := call_argument_problem(tools, call.name, call.arguments):
            raise CliError(f"{path.name}, call {number}: {problem}")


def _print_replay(args: argparse.Namespace, report: ReplayReport, sandbox: str) -> int:
    from envscaler.cli_output import print_replay

    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print_replay(report, sandbox=sandbox)
    return 0 if report.evaluation is not None else 1


# ---------------------------------------------------------------- images


def _engine() -> DockerClient:
    from envscaler.images.engine import EngineError, connect

    try:
        return connect()
    except EngineError as exc:
        raise CliError(str(exc)) from None


def _log_path() -> Path:
    path = Path.home() / ".cache" / "envscaler-runtime" / "images.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _runtime(client: DockerClient, base: str | None) -> str:
    from envscaler.cli_output import status
    from envscaler.images.build import ensure_runtime
    from envscaler.images.engine import EngineError

    try:
        with status("base and runtime images (first time: about a minute; log in ~/.cache/envscaler-runtime)"):
            return ensure_runtime(client, base, _log_path())
    except EngineError as exc:
        raise CliError(str(exc)) from None


def cmd_images_bootstrap(args: argparse.Namespace) -> int:
    tag = _runtime(_engine(), args.base)
    print(f"runtime image: {tag}")
    return 0


def cmd_images_prune(args: argparse.Namespace) -> int:
    from envscaler.images.prune import UNLABELLED, prune

    result = prune(_engine(), args.base, args.dry_run)
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


def _drop_bad_scenarios(corpus: Corpus, only: list[str] | None = None) -> list[Any]:
    """Scenarios with static errors leave the corpus, each reported as a failed `env_id/task_id` row, so that
    one bad scenario does not fail its environment's image."""
    from envscaler.images.build import BuildResult
    from envscaler.spec.validate import validate_scenario

    failed = []
    for env_id, by_id in corpus.scenarios.items():
        if only and env_id not in only:
            continue
        for task_id, scenario in list(by_id.items()):
            errors = [p for p in validate_scenario(f"{env_id}/{task_id}", scenario, corpus.envs)
                      if p.severity == "error"]
            if errors:
                del by_id[task_id]
                failed.append(BuildResult(f"{env_id}/{task_id}", "", "failed",
                                          message="scenario left out: " + "; ".join(f"{p.field}: {p.message}"
                                                                                   for p in errors)))
    return failed


def _lenient_corpus(args: argparse.Namespace) -> Any:
    """The corpus with its loadable records (bad ones are reported by the caller), and --only checked against it."""
    try:
        corpus = load_corpus(args.envs, args.scenarios, strict=False)
    except SpecError as exc:
        raise CliError(str(exc)) from None
    unknown = [e for e in args.only or [] if e not in corpus.envs]
    if unknown:
        raise CliError(f"unknown env_id {', '.join(unknown)} in --only")
    return corpus


def cmd_build(args: argparse.Namespace) -> int:
    from envscaler.cli_output import print_build, progress_bar
    from envscaler.images.build import build_envs

    corpus = _lenient_corpus(args)
    left_out = _drop_bad_scenarios(corpus, args.only)
    client = _engine()
    runtime = _runtime(client, args.base)
    started = time.perf_counter()
    total = len(args.only or corpus.envs)
    with progress_bar("building", total) as advance:
        results = build_envs(client, corpus, runtime, args.only, args.jobs, advance) + left_out
    print_build(results, time.perf_counter() - started)
    return 0 if all(r.status != "failed" for r in results) else 1


# ---------------------------------------------------------------- pool


def _hardening(args: argparse.Namespace):
    from envscaler.containers.hardening import Hardening

    return Hardening(network=args.network, memory_bytes=args.memory_mb << 20, cpus=args.cpus,
                     pids_limit=args.pids_limit, runtime=args.runtime, read_only=not args.writable_root,
                     privilege_split=not args.no_privilege_split, client_checks=args.allow_client_checks)


def cmd_pool(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from rich.console import Console

    from envscaler.cli_output import print_build, progress_bar
    from envscaler.images.engine import EngineError
    from envscaler.pool.runner import PoolOptions, build_images, serve_pool
    from envscaler.pool.status import status_line, status_table

    if args.size < 1:
        raise CliError("--size must be at least 1")
    try:  # records that do not load fail alone, listed with the build failures; the others are served
        corpus = load_corpus(args.envs, args.scenarios, strict=False)
    except SpecError as exc:
        raise CliError(str(exc)) from None
    left_out = _drop_bad_scenarios(corpus, args.only)
    options = PoolOptions(size=args.size, listen=args.listen, metrics_listen=args.metrics_listen,
                          min_idle=args.min_idle, lease_ttl=args.lease_ttl, acquire_wait=args.acquire_wait,
                          hardening=_hardening(args), base=args.base, only=args.only,
                          tool_schemas=args.tool_schemas)
    client = _engine()
    try:
        with progress_bar("environment images", len(args.only or corpus.envs)) as advance:
            images, failed = build_images(client, corpus, options, _log_path(), advance)
    except EngineError as exc:
        raise CliError(str(exc)) from None
    failed += left_out
    if failed:
        print_build(failed, 0.0)
    if not images:
        raise CliError("no environment could be built; nothing to serve")

    async def main() -> None:
        from rich.live import Live

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        state: dict[str, Any] = {}

        def started(manager: object, address: str) -> None:
            state.update(manager=manager, address=address)

        task = asyncio.create_task(serve_pool(client, corpus, images, options, stop, started))
        out = Console()
        live = Live(console=out, refresh_per_second=4, transient=False) if sys.stdout.isatty() else None
        last = ""
        with live if live is not None else contextlib.nullcontext():
            while not task.done():
                await asyncio.wait([task], timeout=0.5 if live else 5.0)
                manager = state.get("manager")
                if manager is None:
                    continue
                stats = manager.stats()
                if live is not None:
                    live.update(status_table(stats, str(state["address"])))
                elif (line := status_line(stats)) != last:
                    print(line, flush=True)
                    last = line
        await task
        out.print("pool stopped; its containers are removed")

    from envscaler.pool import event_loop

    try:
        event_loop.run(main())
    except EngineError as exc:
        raise CliError(str(exc)) from None
    return 0


def _nothing():
    import contextlib

    return contextlib.nullcontext()


# ---------------------------------------------------------------- rollout


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


def cmd_rollout(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from openai import AsyncOpenAI

    from envscaler.cli_output import print_rollout_summary, rollout_progress
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
    left_out = _drop_bad_scenarios(corpus, args.only)
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
        envs = sorted({s.env_id for s in scenarios})
        size = min(args.concurrency, args.pool_size)
        with LocalPool(envs=args.envs, scenarios=scenario_file,
                       options=PoolOptions(size=size, only=envs, acquire_wait=600,
                                           tool_schemas=args.tool_schemas)) as local:
            summary = run(local.address)
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
    from envscaler.cli_output import print_report
    from envscaler.rollout.report import build_report, write_html

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


def cmd_check(args: argparse.Namespace) -> int:
    from envscaler.cli_output import print_checks, status
    from envscaler.synth.check import check_corpus

    corpus = _lenient_corpus(args)
    if args.solutions is not None and not args.solutions.is_dir():
        raise CliError(f"--solutions {args.solutions}: not a directory")
    with status("running every scenario's checks in the sandbox"):
        rows = check_corpus(corpus, args.only, args.solutions, args.sandbox, args.base)
    unloaded = [str(p) for p in corpus.problems if p.severity == "error"]
    if args.json:
        print(json.dumps({"scenarios": [r.as_json() for r in rows], "unloaded": unloaded}, indent=2))
    else:
        print_checks(rows, unloaded)
    return 1 if unloaded or any(r.errors for r in rows) else 0


def cmd_assemble(args: argparse.Namespace) -> int:
    from envscaler.synth.assemble import AssembleError, assemble

    try:
        done = assemble(args.env_py, args.out, args.class_name, args.scenarios, args.env_id)
    except AssembleError as exc:
        raise CliError(str(exc)) from None
    print(f"{done['env_id']}: class {done['class']}, {done['tools']} tools, {done['scenarios']} scenarios, "
          f"{done['solutions']} reference solutions -> {args.out}")
    scenarios = f" --scenarios {args.out / 'scenarios.json'}" if args.scenarios else ""
    solutions = f" --solutions {args.out / 'solutions'}" if done["solutions"] else ""
    print(f"next: envscaler-runtime check --envs {args.out / 'env_metadata.json'}{scenarios}{solutions}")
    return 0


# ---------------------------------------------------------------- synth


def _synth_llm(args: argparse.Namespace) -> LLM:
    from openai import AsyncOpenAI

    from envscaler.synth.llm import LLM

    client = AsyncOpenAI(base_url=args.base_url, api_key=os.environ.get(args.api_key_env, "") or "EMPTY",
                         max_retries=args.llm_retries, timeout=args.llm_timeout)
    return LLM(client=client, model=args.model, cache_dir=args.out / "cache", concurrency=args.concurrency,
               max_repairs=args.max_repairs)


def cmd_synth_skel(args: argparse.Namespace) -> int:
    import asyncio

    from envscaler.cli_output import print_synth_report, status
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
    return _unavailable_exit(sum(e["status"] == "unavailable" for e in report["environments"].values()),
                             "environments or tasks")


def cmd_synth_scen(args: argparse.Namespace) -> int:
    import asyncio

    from envscaler.cli_output import print_synth_report, status
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
    return _unavailable_exit(sum(r["unavailable"] for r in report.values()), "scenario drafts")


def _unavailable_exit(count: int, what: str) -> int:
    """Items the endpoint (or the engine) failed for transient reasons are not rejections: say so, exit 1."""
    if count:
        print(f"envscaler-runtime synth: {count} {what} could not be synthesized because the LLM endpoint or the "
              "sandbox failed (not a rejection, nothing cached); run the same command again to retry them",
              file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------- main


class _VersionAction(argparse.Action):
    """--version, looked up only when asked for (it is slow to import on every start)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        parser.exit(message=f"{parser.prog} {envscaler.__version__}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="envscaler-runtime", description=__doc__)
    parser.add_argument("--version", action=_VersionAction, nargs=0, help="show the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    p = command("validate", cmd_validate, "check env metadata and scenarios statically (nothing is executed)")
    _corpus_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--all", action="store_true", help="list every record, not only those with problems")

    p = command("schema", cmd_schema, "print an environment's tools in OpenAI format")
    _corpus_args(p)
    p.add_argument("--env", required=True, help="env_id")
    _tool_schemas_arg(p)

    p = command("serve", cmd_serve, "serve one environment over gRPC (EnvService + grpc.health.v1)")
    _corpus_args(p)
    p.add_argument("--env", required=True, help="env_id")
    p.add_argument("--listen", required=True, help="unix:/path/to.sock or tcp:HOST:PORT")
    _server_args(p)
    _tool_schemas_arg(p)

    images = sub.add_parser("images", help="base and runtime images")
    images_sub = images.add_subparsers(dest="images_command", required=True, metavar="COMMAND")
    p = images_sub.add_parser("bootstrap", help="build the base and runtime images when missing (no registry needed)")
    p.set_defaults(func=cmd_images_bootstrap)
    p.add_argument("--base", help="use this image as the base (e.g. python:3.11-slim) instead of bootstrapping "
                                  "Debian from the host's apt mirror")

    p = images_sub.add_parser("prune", help="remove this installation's runtime and environment images of older "
                                                    "sources; images of other installations are kept")
    p.set_defaults(func=cmd_images_prune)
    p.add_argument("--base", help="the base in use, when not the bootstrapped one")
    p.add_argument("--dry-run", action="store_true", help="only list what would go")

    p = command("build", cmd_build, "build one image per environment (content-addressed; unchanged ones are cached)")
    _corpus_args(p)
    p.add_argument("--only", nargs="+", metavar="ENV_ID", help="build only these environments")
    p.add_argument("--jobs", type=int, default=4, help="parallel jobs (4)")
    p.add_argument("--base", help="base image instead of the bootstrapped Debian one")

    p = command("pool", cmd_pool, "keep warm hardened containers and lease them over gRPC (PoolService)")
    _corpus_args(p)
    _tool_schemas_arg(p)
    p.add_argument("--size", type=int, default=8, help="hard cap on containers (8)")
    p.add_argument("--listen", default="tcp:127.0.0.1:50051", help="tcp:HOST:PORT or unix:/path (tcp:127.0.0.1:50051)")
    p.add_argument("--metrics-listen", default="127.0.0.1:9464",
                   help="Prometheus metrics HOST:PORT (127.0.0.1:9464); '' for none")
    p.add_argument("--min-idle", type=int, help="warm containers kept per environment (size / environments)")
    p.add_argument("--lease-ttl", type=float, default=600.0, help="seconds a lease lives without renewal (600)")
    p.add_argument("--acquire-wait", type=float, default=30.0, help="default seconds Acquire waits (30)")
    p.add_argument("--only", nargs="+", metavar="ENV_ID", help="serve only these environments")
    p.add_argument("--base", help="base image instead of the bootstrapped Debian one")
    hardening = p.add_argument_group("sandbox (hardened by default)")
    hardening.add_argument("--network", default="none", help="container network (none)")
    hardening.add_argument("--memory-mb", type=int, default=512, help="memory limit per container (512)")
    hardening.add_argument("--cpus", type=float, default=1.0, help="CPU limit per container (1.0)")
    hardening.add_argument("--pids-limit", type=int, default=256, help="process limit per container (256)")
    hardening.add_argument("--runtime", help="OCI runtime, e.g. runsc for gVisor")
    hardening.add_argument("--writable-root", action="store_true", help="do not make the root filesystem read-only")
    hardening.add_argument("--no-privilege-split", action="store_true",
                           help="run the server and environment code under one uid (weaker; see SECURITY.md); "
                                "default: environment code runs as uid 10002, the server as 10001")
    hardening.add_argument("--allow-client-checks", action="store_true",
                           help="accept check functions sent by clients in Evaluate (off by default: they are "
                                "code from outside the scenario; they run as sandboxed as scenario checks)")

    p = command("rollout", cmd_rollout, "run an LLM agent over scenarios in parallel; trajectories and rewards")
    _corpus_args(p)
    _tool_schemas_arg(p, "; for the pool it starts (a running --pool serves its own, which trajectories record)")
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

    p = command("check", cmd_check, "run every scenario in the sandbox: its checks on the initial state (already "
                "solved, or erroring), unknown init_config keys, reference solutions replayed to reward 1.0")
    _corpus_args(p)
    p.add_argument("--only", nargs="+", metavar="ENV_ID", help="check only these environments")
    p.add_argument("--solutions", type=Path, metavar="DIR",
                   help="reference solutions, <env_id>__<task_id>.jsonl of {\"name\", \"arguments\"} lines "
                        "(none by default)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--sandbox", choices=["auto", "container", "process"], default="auto",
                   help="where scenarios run: a hardened container when an engine is there, else a worker "
                        "process (auto)")
    p.add_argument("--base", help="base image of the runtime image, when not the bootstrapped one")

    p = command("assemble", cmd_assemble, "turn a Python environment class (and scenarios) into EnvScaler's "
                "env_metadata.json / scenarios.json; the class is parsed, never run")
    p.add_argument("env_py", type=Path, metavar="ENV.py", help="the module that defines the environment class")
    p.add_argument("--class", dest="class_name", metavar="NAME",
                   help="the environment class (default: the module's only class with public methods)")
    p.add_argument("--env-id", help="env_id (default: META's, else env_<file name without _env>)")
    p.add_argument("--scenarios", type=Path, metavar="SCEN.py|.json",
                   help="scenarios: a JSON list, or a Python file defining SCENARIOS (and BASE, META) (none)")
    p.add_argument("--out", type=Path, required=True,
                   help="directory for env_metadata.json, scenarios.json and solutions/; this environment's "
                        "records are added to, or replace theirs in, files already there")

    for name, text in (("report", "per-environment table and reward distribution of rollout JSONL files"),
                       ("results", "the same as report")):
        p = command(name, cmd_report, text)
        p.add_argument("files", nargs="+", type=Path, metavar="FILE.jsonl", help="trajectories written by rollout")
        p.add_argument("--json", action="store_true", help="print the report as JSON")
        p.add_argument("--html", type=Path, metavar="FILE.html",
                       help="also write a self-contained HTML page with the table and the reward and step-count "
                            "distributions (inline SVG)")

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

    p = command("mcp", cmd_mcp, "serve pooled environments over MCP: one lease per handle (HTTP) or per process "
                                "(--stdio)")
    from envscaler.frontdoor.cli import add_arguments

    add_arguments(p)

    p = command("console", cmd_console, "web console: browse environments, play a scenario by hand through the "
                                        "pool, watch the pool, read rollouts")
    _corpus_args(p)
    from envscaler.console.cli import add_arguments as console_arguments

    console_arguments(p)

    k8s = sub.add_parser("k8s", help="Kubernetes manifests for the environment images")
    k8s_sub = k8s.add_subparsers(dest="k8s_command", required=True, metavar="COMMAND")
    p = k8s_sub.add_parser("manifests", help="agent-sandbox SandboxTemplate + SandboxWarmPool per environment, and "
                                             "the one-pool-per-node DaemonSet (docs/kubernetes.md)")
    p.set_defaults(func=cmd_k8s_manifests)
    _corpus_args(p)
    from envscaler.k8s.cli import add_arguments as k8s_arguments

    k8s_arguments(p)

    p = command("replay", cmd_replay, "run a JSONL solution against a fresh episode and evaluate it")
    _corpus_args(p)
    p.add_argument("--env", required=True, help="env_id")
    p.add_argument("--scenario", required=True, help="scenario (task_id)")
    p.add_argument("--calls", required=True, type=Path, help='JSONL of {"name": ..., "arguments": {...}}')
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--sandbox", choices=["auto", "container", "process"], default="auto",
                   help="auto: a hardened container when an engine and the runtime image exist, else a worker "
                        "process")
    p.add_argument("--base", help="base image of the runtime image, when not the bootstrapped one")
    p.add_argument("--pool", metavar="ADDRESS", help="run through a running pool (tcp:HOST:PORT or unix:/path)")
    p.add_argument("--wait", type=float, default=60.0, help="with --pool: seconds to wait for a container (60)")
    _server_args(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if isinstance(getattr(args, "envs", None), list) or isinstance(getattr(args, "scenarios", None), list):
            _merge_corpus_files(args)
        return args.func(args)
    except CliError as exc:
        print(f"envscaler-runtime {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"envscaler-runtime {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
