"""Static validation of env metadata and scenarios: AST only, nothing is executed."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as JsonSchemaError

from envscaler.spec.loader import (
    Problem,
    RawRecord,
    SpecError,
    bundled_envs_path,
    bundled_scenarios_path,
    iter_records,
    iter_scenarios,
    parse_envs,
    read_records,
)
from envscaler.spec.models import EnvSpec, Scenario
from envscaler.spec.toolschema import (
    SchemaError,
    class_methods,
    derive_tools,
    index_module,
    is_tool,
    parse_module,
)

Kind = Literal["env", "scenario", "file"]


@dataclass
class RecordReport:
    kind: Kind
    location: str
    record_id: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def status(self) -> str:
        if any(p.severity == "error" for p in self.problems):
            return "error"
        return "warning" if self.problems else "ok"


@dataclass
class ValidationReport:
    records: list[RecordReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.status != "error" for r in self.records)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.records)


def _tool_shape_problems(location: str, tools: list[Any]) -> list[Problem]:
    problems = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            problems.append(Problem(location, where, 'expected {"type": "function", "function": {"name": ...}}'))
            continue
        parameters = function.get("parameters", {"type": "object"})
        try:
            Draft202012Validator.check_schema(parameters)
        except JsonSchemaError as exc:
            path = ".".join(str(p) for p in exc.path)
            problems.append(Problem(location, f"{where}.function.parameters{'.' + path if path else ''}",
                                    f"invalid JSON Schema: {exc.message}"))
        except RecursionError:
            problems.append(Problem(location, f"{where}.function.parameters", "JSON Schema nests too deeply"))
            continue
        if isinstance(parameters, dict) and parameters.get("type", "object") != "object":
            problems.append(Problem(location, f"{where}.function.parameters.type", "must be 'object'"))
    return problems


def _tools_agreement(location: str, published: list[Any], derived: list[dict[str, Any]]) -> list[Problem]:
    """Where the record's own tools disagree with the class (warnings: they are served as published only
    with --tool-schemas record; by default the schemas are derived from the code)."""
    problems = []
    derived_by_name = {t["function"]["name"]: t["function"] for t in derived}
    names = []
    for i, tool in enumerate(published):
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            continue
        names.append(name)
        where = f"tools[{i}]"
        if name.startswith("_"):
            problems.append(Problem(location, where, f"{name!r} is private; it is never served as a tool", "warning"))
        elif name not in derived_by_name:
            problems.append(Problem(location, where, f"{name!r} is not a public method of the class", "warning"))
        else:
            props = set((function.get("parameters") or {}).get("properties", {}))
            code_props = set(derived_by_name[name]["parameters"]["properties"])
            if props != code_props:
                problems.append(Problem(location, f"{where}.function.parameters.properties",
                                        f"{name!r}: tools list {sorted(props)}, code has {sorted(code_props)}",
                                        "warning"))
            required = (function.get("parameters") or {}).get("required")
            optional = sorted(set(required if isinstance(required, list) else []) & (code_props
                              - set(derived_by_name[name]["parameters"].get("required", []))))
            if optional:
                problems.append(Problem(location, f"{where}.function.parameters.required",
                                        f"{name!r}: {optional} required in the tools list but with a default in "
                                        "the code", "warning"))
    for name in derived_by_name:
        if name not in names:
            problems.append(Problem(location, "tools", f"public method {name!r} is missing from tools", "warning"))
    return problems


def _unicode_problem(location: str, record: object) -> list[Problem]:
    """A lone surrogate escape (valid JSON, not Unicode) cannot go into an image or over the wire."""
    try:
        json.dumps(record, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return [Problem(location, "", "holds a string that is not valid Unicode (a lone surrogate escape)")]
    except (TypeError, ValueError, RecursionError):
        return []  # reported by the other checks
    return []


def validate_env(location: str, spec: EnvSpec) -> list[Problem]:
    if unicode := _unicode_problem(location, spec.model_dump(mode="json")):
        return unicode
    try:
        tree = parse_module(spec.env_class_code)
    except SchemaError as exc:
        return [Problem(location, "env_class_code", str(exc))]
    index = index_module(tree)
    if spec.env_class_name not in index.classes:
        defined = ", ".join(index.classes) or "none"
        return [Problem(location, "env_class_name", f"class {spec.env_class_name!r} is not defined in "
                                                     f"env_class_code (classes: {defined})")]
    problems: list[Problem] = []
    try:
        methods = class_methods(spec.env_class_name, index)
        derived = derive_tools(spec.env_class_code, spec.env_class_name)
    except SchemaError as exc:  # e.g. an annotation past the limits: this record alone fails
        return [Problem(location, "env_class_code", str(exc))]
    if not any(is_tool(name, node) for name, node in methods.items()):
        problems.append(Problem(location, "env_class_code", f"class {spec.env_class_name!r} has no public methods"))
    problems += _tool_shape_problems(location, derived)
    if spec.tools is not None:
        problems += _tool_shape_problems(location, spec.tools)
        problems += _tools_agreement(location, spec.tools, derived)
    return problems


def check_func_problem(source: str) -> str | None:
    """Why a check function's source is unusable, or None."""
    try:
        tree = parse_module(source)
    except SchemaError as exc:
        return str(exc).replace("code does not parse", "does not parse")
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "check_func":
            if not node.args.args and not node.args.vararg:
                return "check_func must take the final state as its argument"
            return None
    return "does not define a top-level function check_func(final_state)"


def validate_scenario(location: str, scenario: Scenario, envs: dict[str, EnvSpec]) -> list[Problem]:
    problems: list[Problem] = _unicode_problem(location, scenario.model_dump(mode="json"))
    env = envs.get(scenario.env_id)
    if env is None:
        problems.append(Problem(location, "env_id", f"unknown env_id {scenario.env_id!r}"))
    elif scenario.env_class_name and scenario.env_class_name != env.env_class_name:
        problems.append(Problem(location, "env_class_name", f"{scenario.env_class_name!r} differs from the "
                                                              f"environment's {env.env_class_name!r}", "warning"))
    for i, check in enumerate(scenario.checklist_with_func):
        reason = check_func_problem(check.check_func)
        if reason:
            problems.append(Problem(location, f"checklist_with_func[{i}].check_func", reason))
    return problems


def _group(kind: Kind, location: str, record_id: str, problems: list[Problem]) -> RecordReport:
    return RecordReport(kind, location, record_id, [p for p in problems if p.record == location])


def validate_files(envs_path: Path | None = None, scenarios_path: Path | None = None) -> ValidationReport:
    report = ValidationReport()
    env_file = envs_path or bundled_envs_path()
    scen_file = scenarios_path if scenarios_path is not None else (bundled_scenarios_path() if envs_path is None
                                                                   else None)
    env_records = _read(report, env_file)
    parsed_envs, load_problems = parse_envs(env_records)
    specs = {spec.env_id: spec for _, spec in parsed_envs}
    parsed_ids = {id(record): spec for record, spec in parsed_envs}
    for record in env_records:
        spec = parsed_ids.get(id(record))
        problems = load_problems + (validate_env(record.location, spec) if spec else [])
        record_id = spec.env_id if spec else (record.key or "?")
        report.records.append(_group("env", record.location, record_id, problems))
    if scen_file is None:
        return report
    try:  # one scenario at a time: a file of hundreds of megabytes is never held whole
        for record, scenario, load_problems in iter_scenarios(iter_records(scen_file)):
            problems = load_problems + (validate_scenario(record.location, scenario, specs) if scenario else [])
            record_id = f"{scenario.env_id}/{scenario.task_id}" if scenario else "?"
            report.records.append(_group("scenario", record.location, record_id, problems))
    except SpecError as exc:
        report.records.append(RecordReport("file", str(scen_file), scen_file.name,
                                           [Problem(str(scen_file), "", str(exc))]))
    return report


def _read(report: ValidationReport, path: Path) -> list[RawRecord]:
    try:
        return read_records(path)
    except SpecError as exc:
        report.records.append(RecordReport("file", str(path), path.name, [Problem(str(path), "", str(exc))]))
        return []
