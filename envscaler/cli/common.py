"""What the commands share: the corpus flags and loading, the server and tool-schema flags, the engine, and the one
user-facing error (CliError: one line, exit code 2)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envscaler.spec.loader import Corpus, SpecError, load_corpus

if TYPE_CHECKING:
    from docker import DockerClient

    from envscaler.protocol.options import ServerOptions
    from envscaler.spec.models import EnvSpec


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


ENVS_VARIABLE, SCENARIOS_VARIABLE = "ENVSCALER_ENVS", "ENVSCALER_SCENARIOS"


def _from_environment(name: str) -> list[Path] | None:
    """A corpus named once for every command: the variable's files, separated like PATH."""
    value = os.environ.get(name, "")
    return [Path(part) for part in value.split(os.pathsep) if part] or None


def corpus_args(parser: argparse.ArgumentParser) -> None:
    # The flag, when given, replaces the variable's files (argparse's extend would add to them).
    parser.add_argument("--envs", type=Path, nargs="+", action="extend", metavar="FILE",
                        help="env metadata (EnvScaler's 191_env_metadata.json layout), one file or several; "
                             f"default: ${ENVS_VARIABLE} (files separated by {os.pathsep!r}), else the bundled "
                             "examples")
    parser.add_argument("--scenarios", type=Path, nargs="+", action="extend", metavar="FILE",
                        help=f"scenarios (JSON list or JSONL), one file or several; default: ${SCENARIOS_VARIABLE}, "
                             "else the bundled examples when no env metadata is given")
    parser.set_defaults(corpus_defaults=True)


def apply_corpus_defaults(args: argparse.Namespace) -> None:
    """ENVSCALER_ENVS / ENVSCALER_SCENARIOS for the flags not given."""
    if not getattr(args, "corpus_defaults", False):
        return
    if args.envs is None:
        args.envs = _from_environment(ENVS_VARIABLE)
    if args.scenarios is None:
        args.scenarios = _from_environment(SCENARIOS_VARIABLE)


def records_of(path: Path) -> list[Any]:
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


def merge_corpus_files(args: argparse.Namespace) -> None:
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
            for record in records_of(path):
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
        merged = [record for path in scenarios for record in records_of(path)]
        (folder / "scenarios.json").write_text(json.dumps(merged), encoding="utf-8")
        args.scenarios = folder / "scenarios.json"
    else:
        args.scenarios = scenarios and scenarios[0]


def corpus_of(args: argparse.Namespace, only: str | None = None) -> Corpus:
    """The corpus; with `only`, just that environment's scenarios (a large file is not held whole)."""
    try:
        return load_corpus(args.envs, args.scenarios, only=only)
    except SpecError as exc:
        raise CliError(f"cannot load the corpus (run `envscaler-runtime validate` for a full report):\n{exc}") from None


def corpus_env(args: argparse.Namespace) -> EnvSpec:
    corpus = corpus_of(args)
    try:
        return corpus.env(args.env)
    except SpecError as exc:
        raise CliError(str(exc)) from None


def server_args(parser: argparse.ArgumentParser) -> None:
    from envscaler.protocol.options import add_arguments

    add_arguments(parser)


def server_config(args: argparse.Namespace) -> ServerOptions:
    from envscaler.protocol.options import from_args

    return from_args(args)


def tool_schemas_arg(parser: argparse.ArgumentParser, note: str = "") -> None:
    parser.add_argument("--tool-schemas", choices=["derived", "record"], default="derived",
                        help="tools served for records that carry their own: derived from the code, with the "
                             "record's descriptions (default), or the record's list as published (EnvScaler's "
                             "prompts, bit for bit)" + note)


def check_tools(spec: EnvSpec, tool_schemas: str = "derived") -> None:
    """An environment whose tools cannot be read (e.g. an annotation past the limits) is refused before any
    process starts."""
    from envscaler.spec.toolschema import SchemaError, served_tools

    try:
        served_tools(spec.tools, spec.env_class_code, spec.env_class_name, tool_schemas)
    except SchemaError as exc:
        raise CliError(f"{spec.env_id}: {exc}") from None


def docker_engine() -> DockerClient:
    from envscaler.images.engine import EngineError, connect

    try:
        return connect()
    except EngineError as exc:
        raise CliError(str(exc)) from None


def log_path() -> Path:
    path = Path.home() / ".cache" / "envscaler-runtime" / "images.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def runtime_tag_of(client: DockerClient, base: str | None) -> str:
    from envscaler.cli.output import status
    from envscaler.images.build import ensure_runtime
    from envscaler.images.engine import EngineError

    try:
        with status("base and runtime images (first time: about a minute; log in ~/.cache/envscaler-runtime)"):
            return ensure_runtime(client, base, log_path())
    except EngineError as exc:
        raise CliError(str(exc)) from None


def drop_bad_scenarios(corpus: Corpus, only: list[str] | None = None) -> list[Any]:
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


def lenient_corpus(args: argparse.Namespace) -> Any:
    """The corpus with its loadable records (bad ones are reported by the caller), and --only checked against it."""
    try:
        corpus = load_corpus(args.envs, args.scenarios, strict=False)
    except SpecError as exc:
        raise CliError(str(exc)) from None
    unknown = [e for e in getattr(args, "only", None) or [] if e not in corpus.envs]  # commands without --only
    if unknown:
        raise CliError(f"unknown env_id {', '.join(unknown)} in --only")
    return corpus


def hardening_of(args: argparse.Namespace):
    from envscaler.containers.hardening import Hardening

    return Hardening(network=args.network, memory_bytes=args.memory_mb << 20, cpus=args.cpus,
                     pids_limit=args.pids_limit, runtime=args.runtime, read_only=not args.writable_root,
                     privilege_split=not args.no_privilege_split, client_checks=args.allow_client_checks)


def add_command(sub: Any, name: str, func: Callable[[argparse.Namespace], int],
                help_text: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(func=func)
    return p
