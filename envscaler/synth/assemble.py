"""From a readable Python environment class (and its scenarios) to EnvScaler's own files.

The class is only parsed, never run: its tools are derived as `schema` derives them, its TypedDicts become the
state space, its public methods the operation list. Scenarios come from a JSON file or a Python file of your own
(run like any script of yours, as `scripts/build-examples` runs the bundled sources) that defines SCENARIOS and,
optionally, BASE (the default init_config) and META (env_id, environment_summary, environment_introduction,
constraints_rules). Each scenario is {"task_id", "task", "init_config"?, "checks": [[item, check_func source]],
"solution"?: [[tool, arguments]]}, or an EnvScaler record with checklist_with_func.
"""

from __future__ import annotations

import ast
import copy
import json
import runpy
import textwrap
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from envscaler.spec.fields import OWN_PREFIX, did_you_mean
from envscaler.spec.loader import Problem
from envscaler.spec.models import EnvSpec, Scenario
from envscaler.spec.toolschema import (
    ModuleIndex,
    SchemaError,
    class_methods,
    derive_tools,
    index_module,
    is_tool,
    parse_module,
)
from envscaler.spec.validate import strictly, validate_env, validate_scenario

QUERY_PREFIXES = ("get_", "list_", "search_", "find_", "check_", "show_", "view_")


class AssembleError(ValueError):
    """A source that cannot become EnvScaler metadata; the message says which and why."""


def _state_types(index: ModuleIndex, class_name: str) -> set[str]:
    """The TypedDicts the class's state is made of: those its `self.x: T` annotations name, and theirs in turn
    (a TypedDict that only types a tool's arguments is not state)."""
    pending = [n.id for method in class_methods(class_name, index).values() for stmt in ast.walk(method)
               if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Attribute)
               for n in ast.walk(stmt.annotation) if isinstance(n, ast.Name)]
    found: set[str] = set()
    while pending:
        name = pending.pop()
        if name in index.typeddict_nodes and name not in found:
            found.add(name)
            pending += [n.id for n in ast.walk(index.typeddict_nodes[name]) if isinstance(n, ast.Name)]
    return found


def state_space(tree: ast.Module, class_name: str | None = None) -> list[dict[str, str]]:
    index = index_module(tree)
    state = _state_types(index, class_name) if class_name in index.classes else set()
    entities = []
    for name, node in index.typeddict_nodes.items():
        if isinstance(node, ast.ClassDef) and (not state or name in state):
            keys = [item.target.id for item in node.body if isinstance(item, ast.AnnAssign)
                    and isinstance(item.target, ast.Name)]
            entities.append({"entity": name, "attributes": ", ".join(keys),
                             "description": ast.get_docstring(node) or ""})
    return entities


def operations(code: str, tree: ast.Module, class_name: str) -> list[dict[str, str]]:
    index = index_module(tree)
    return [
        {"operation_name": name, "operation_description": (ast.get_docstring(node) or "").split("\n")[0],
         "operation_type": "query" if name.startswith(QUERY_PREFIXES) else "state_change",
         "code": ast.get_source_segment(code, node) or ""}
        for name, node in class_methods(class_name, index).items() if is_tool(name, node)
    ]


def env_record(code: str, class_name: str, meta: dict[str, Any]) -> dict[str, Any]:
    """One record of EnvScaler's env_metadata.json."""
    tree = ast.parse(code)
    return {
        "env_id": meta["env_id"],
        "environment_summary": meta["environment_summary"],
        "environment_introduction": meta["environment_introduction"],
        "state_space_definition": state_space(tree, class_name),
        "constraints_rules": meta["constraints_rules"],
        "operation_list": operations(code, tree, class_name),
        "env_class_name": class_name,
        "env_class_code": code,
        "tools": derive_tools(code, class_name),
    }


# The fields of a scenario as written for assemble (the module docstring), and of META. Anything else is a
# mistake that would pass silently (`check` for checks: a scenario with nothing to reward), so it is refused.
SCENARIO_FIELDS = frozenset({"task_id", "task", "init_config", "checks", "solution", "checklist_with_func",
                             "checklist", "env_id", "env_class_name"})
SCENARIO_ALIASES = {"check": "checks", "checklist_with_funcs": "checklist_with_func", "init": "init_config",
                    "config": "init_config", "initial_config": "init_config", "initial_state": "init_config",
                    "solutions": "solution", "calls": "solution", "id": "task_id", "instruction": "task"}
META_FIELDS = frozenset({"env_id", "env_class_name", "environment_summary", "environment_introduction",
                         "constraints_rules"})
META_ALIASES = {"id": "env_id", "class_name": "env_class_name", "summary": "environment_summary",
                "introduction": "environment_introduction", "description": "environment_introduction",
                "rules": "constraints_rules", "constraints": "constraints_rules"}


def _unknown_field(data: dict[str, Any], known: frozenset[str], aliases: dict[str, str], where: str) -> None:
    for key in data:
        if str(key) not in known and not str(key).startswith(OWN_PREFIX):
            raise AssembleError(f"{where}: unknown field {str(key)!r}{did_you_mean(str(key), known, aliases)}")


def scenario_records(env_id: str, class_name: str, scenarios: list[dict[str, Any]],
                     base: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """EnvScaler scenario records, and the reference solutions (`<env_id>__<task_id>.jsonl` -> text)."""
    records, solutions = [], {}
    for number, scenario in enumerate(scenarios):
        if isinstance(scenario, dict):
            _unknown_field(scenario, SCENARIO_FIELDS, SCENARIO_ALIASES,
                           f"scenario {scenario.get('task_id') or number}")
        if not isinstance(scenario, dict) or not scenario.get("task_id") or not scenario.get("task"):
            raise AssembleError(f"scenario {number}: needs a task_id and a task")
        if "checklist_with_func" in scenario:
            checks = [{"check_item": c["check_item"], "check_func": c["check_func"]}
                      for c in scenario["checklist_with_func"]]
        else:
            try:
                checks = [{"check_item": item, "check_func": textwrap.dedent(func).strip() + "\n"}
                          for item, func in scenario.get("checks", [])]
            except (TypeError, ValueError):
                raise AssembleError(f"scenario {scenario['task_id']}: checks must be [check item, "
                                    "check_func source] pairs") from None
        init_config = scenario.get("init_config", base)
        if init_config is None:
            raise AssembleError(f"scenario {scenario['task_id']}: no init_config, and no BASE to default to")
        records.append({
            "env_id": env_id, "env_class_name": class_name, "task_id": scenario["task_id"],
            "init_config": copy.deepcopy(init_config), "task": scenario["task"],
            "checklist": [c["check_item"] for c in checks], "checklist_with_func": checks,
        })
        if scenario.get("solution"):
            calls = [json.dumps({"name": name, "arguments": args}) for name, args in scenario["solution"]]
            solutions[f"{env_id}__{scenario['task_id']}.jsonl"] = "\n".join(calls) + "\n"
    return records, solutions


def find_class(tree: ast.Module, name: str | None) -> str:
    """The named class, or the module's only class with public methods."""
    index = index_module(tree)
    if name:
        if name not in index.classes:
            raise AssembleError(f"no class {name!r} (classes: {', '.join(index.classes) or 'none'})")
        return name
    candidates = [c for c in index.classes if c not in index.typeddict_nodes
                  and any(is_tool(m, node) for m, node in class_methods(c, index).items())]
    if len(candidates) != 1:
        raise AssembleError(f"say which class with --class ({len(candidates)} classes have public methods: "
                            f"{', '.join(candidates) or 'none'})")
    return candidates[0]


def docstring_meta(tree: ast.Module, class_name: str) -> dict[str, Any]:
    """Summary (the docstring's first line), introduction (the rest) and the bullets under `Rules:`."""
    node = index_module(tree).classes[class_name]
    text = ast.get_docstring(node) or ast.get_docstring(tree) or class_name
    body, _, rules_part = text.partition("\nRules:")
    rules = [line.strip()[2:].strip() for line in rules_part.splitlines() if line.strip().startswith(("- ", "* "))]
    summary = body.strip().split("\n")[0].strip()
    return {"environment_summary": summary, "environment_introduction": " ".join(body.split()) or summary,
            "constraints_rules": rules}


def read_scenarios(path: Path) -> tuple[dict[str, Any], dict[str, Any] | None, list[dict[str, Any]]]:
    """(META, BASE, SCENARIOS) from a .py or .json file."""
    try:
        if path.suffix == ".py":
            module = runpy.run_path(str(path))
            data: Any = {k: module.get(k) for k in ("META", "BASE", "SCENARIOS")}
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AssembleError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise AssembleError(f"{path}: invalid JSON: {exc.msg} at line {exc.lineno}") from None
    except Exception as exc:  # the author's own script failed: say where, no traceback
        raise AssembleError(f"{path}: running it failed: {type(exc).__name__}: {exc}") from None
    if isinstance(data, list):
        data = {"SCENARIOS": data}
    scenarios = data.get("SCENARIOS") if isinstance(data, dict) else None
    if not isinstance(scenarios, list):
        raise AssembleError(f"{path}: no SCENARIOS list (a JSON list, or SCENARIOS = [...] in Python)")
    meta = data.get("META") or {}
    if not isinstance(meta, dict):
        raise AssembleError(f"{path}: META must be a dict, got {type(meta).__name__}")
    _unknown_field(meta, META_FIELDS, META_ALIASES, f"{path}: META")
    base = data.get("BASE")
    if base is not None and not isinstance(base, dict):
        raise AssembleError(f"{path}: BASE must be a dict (the default init_config), got {type(base).__name__}")
    return meta, base, scenarios


def _merge_json(path: Path, env_id: str, records: Any, keyed: bool) -> None:
    """Adds or replaces this environment's records in an existing file, so several environments share a corpus."""
    if keyed:
        current = json.loads(path.read_text()) if path.exists() else {}
        if isinstance(current, list):
            current = {r["env_id"]: r for r in current}
        current[env_id] = records
    else:
        current = [r for r in (json.loads(path.read_text()) if path.exists() else []) if r.get("env_id") != env_id]
        current += records
    path.write_text(json.dumps(current, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def assembled_problems(env_py: Path, scenarios: Path | None, record: dict[str, Any],
                       scen_records: list[dict[str, Any]]) -> list[Problem]:
    """What `validate` would say of the records about to be written, each located in the author's own files."""
    spec = EnvSpec.model_validate(record)
    problems = validate_env(f"{env_py} ({spec.env_id})", spec)
    for raw in scen_records:
        try:
            scenario = Scenario.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise AssembleError(f"{scenarios}: scenario {raw['task_id']}: {'.'.join(map(str, first['loc']))}: "
                                f"{first['msg']}") from None
        problems += validate_scenario(f"{scenarios} ({spec.env_id}/{scenario.task_id})", scenario,
                                      {spec.env_id: spec})
    return problems


def assemble(env_py: Path, out: Path, class_name: str | None = None, scenarios: Path | None = None,
             env_id: str | None = None, strict: bool = False) -> dict[str, Any]:
    """Write the records; refused (nothing written) when `validate` would report an error, or with `strict` any
    problem. The result's "problems" are the warnings left."""
    try:
        code = env_py.read_text(encoding="utf-8")
    except OSError as exc:
        raise AssembleError(f"{env_py}: cannot read: {exc.strerror or exc}") from None
    try:
        tree = parse_module(code)
        name = find_class(tree, class_name)
        meta, base, scenario_list = read_scenarios(scenarios) if scenarios else ({}, None, [])
        if meta.get("env_class_name") and not class_name and meta["env_class_name"] != name:
            name = find_class(tree, meta["env_class_name"])
        meta = {**docstring_meta(tree, name), **meta}
        meta["env_id"] = env_id or meta.get("env_id") or f"env_{env_py.stem.removesuffix('_env')}"
        record = env_record(code, name, meta)
    except SchemaError as exc:
        raise AssembleError(f"{env_py}: {exc}") from None
    if not record["tools"]:
        raise AssembleError(f"{env_py}: class {name!r} has no public methods, so no tools")
    try:
        scen_records, solutions = scenario_records(meta["env_id"], name, scenario_list, base)
    except AssembleError as exc:
        raise AssembleError(f"{scenarios}: {exc}") from None
    problems = assembled_problems(env_py, scenarios, record, scen_records)
    refused = strictly(problems) if strict else [p for p in problems if p.severity == "error"]
    if refused:
        lines = "\n".join(located(p) for p in refused)
        raise AssembleError(f"{len(refused)} problem{'s' if len(refused) > 1 else ''}"
                            f"{' (--strict)' if strict else ''}, nothing written:\n{lines}")
    out.mkdir(parents=True, exist_ok=True)
    _merge_json(out / "env_metadata.json", meta["env_id"], record, keyed=True)
    if scenarios is not None:
        _merge_json(out / "scenarios.json", meta["env_id"], scen_records, keyed=False)
    if solutions:
        (out / "solutions").mkdir(exist_ok=True)
        for file_name, text in solutions.items():
            (out / "solutions" / file_name).write_text(text, encoding="utf-8")
    return {"env_id": meta["env_id"], "class": name, "tools": len(record["tools"]), "scenarios": len(scen_records),
            "solutions": len(solutions), "problems": problems}


def located(problem: Problem) -> str:
    """`file (env): line N: field: message`: a problem of the environment's code at its line in the source."""
    line = f"line {problem.line}: " if problem.line else ""
    field = f"{problem.field}: " if problem.field else ""
    return f"{problem.severity}: {problem.record}: {line}{field}{problem.message}"
