"""Static commands on a corpus: validate, schema, assemble (nothing is executed)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from envscaler.cli.common import CliError, add_command, corpus_args, corpus_env, tool_schemas_arg


def cmd_validate(args: argparse.Namespace) -> int:
    from envscaler.cli.output import print_validation
    from envscaler.spec.validate import validate_files

    report = validate_files(args.envs, args.scenarios, strict=args.strict)
    if args.json:
        print(json.dumps([{"kind": r.kind, "record": r.location, "id": r.record_id, "status": r.status,
                           "problems": [{"field": p.field, "severity": p.severity, "message": p.message}
                                        for p in r.problems]} for r in report.records], indent=2))
    else:
        print_validation(report, show_all=args.all)
    return 0 if report.ok else 1


def cmd_schema(args: argparse.Namespace) -> int:
    from envscaler.spec.toolschema import SchemaError, served_tools

    spec = corpus_env(args)
    try:
        tools = served_tools(spec.tools, spec.env_class_code, spec.env_class_name, args.tool_schemas)
    except SchemaError as exc:
        raise CliError(f"{spec.env_id}: {exc}") from None
    print(json.dumps(tools, indent=2, ensure_ascii=False))
    return 0


def cmd_assemble(args: argparse.Namespace) -> int:
    from envscaler.synth.assemble import AssembleError, assemble, located

    try:
        done = assemble(args.env_py, args.out, args.class_name, args.scenarios, args.env_id, strict=args.strict)
    except AssembleError as exc:
        raise CliError(str(exc)) from None
    print(f"{done['env_id']}: class {done['class']}, {done['tools']} tools, {done['scenarios']} scenarios, "
          f"{done['solutions']} reference solutions -> {args.out}")
    for problem in done["problems"]:  # warnings (an error refuses the whole): --strict refuses them too
        print(located(problem))
    scenarios = f" --scenarios {args.out / 'scenarios.json'}" if args.scenarios else ""
    solutions = f" --solutions {args.out / 'solutions'}" if done["solutions"] else ""
    print(f"next: envscaler-runtime check --envs {args.out / 'env_metadata.json'}{scenarios}{solutions}")
    return 0


def strict_arg(p: Any) -> None:
    p.add_argument("--strict", action="store_true",
                   help="every warning is an error (a tool without a docstring, an undescribed parameter, an "
                        "init_config key no code reads, a check's undefined name, an unknown field)")


def register(sub: Any) -> None:
    p = add_command(sub, "validate", cmd_validate, "check env metadata and scenarios statically (nothing is executed)")
    corpus_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--all", action="store_true", help="list every record, not only those with problems")
    strict_arg(p)

    p = add_command(sub, "schema", cmd_schema, "print an environment's tools in OpenAI format")
    corpus_args(p)
    p.add_argument("--env", required=True, help="env_id")
    tool_schemas_arg(p)

    p = add_command(sub, "assemble", cmd_assemble, "turn a Python environment class (and scenarios) into EnvScaler's "
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
    strict_arg(p)

