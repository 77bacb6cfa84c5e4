"""Static validation of env metadata and scenarios: AST only, nothing is executed."""

from __future__ import annotations

import ast
import builtins
import dataclasses
import difflib
import functools
import json
import os
import symtable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as JsonSchemaError

from envscaler.spec.fields import did_you_mean, misspelling_of
from envscaler.spec.lint import documentation_findings
from envscaler.spec.loader import (
    Problem,
    RawRecord,
    Severity,
    SpecError,
    as_path,
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
    if spec.environment_introduction.strip() in ("", spec.env_class_name):
        problems.append(Problem(location, "environment_introduction", "says nothing about the environment (empty or "
                                "only the class name), and it opens the agent's system prompt", "warning"))
    try:
        problems += [Problem(location, where, message, "warning", line)
                     for where, line, message in documentation_findings(spec.env_class_code, spec.env_class_name,
                                                                  spec.tools)]
    except SchemaError as exc:
        problems.append(Problem(location, "env_class_code", str(exc)))
    return problems


def strictly(problems: list[Problem]) -> list[Problem]:
    """--strict: every warning is an error."""
    return [dataclasses.replace(p, severity="error") for p in problems]


def check_func_problem(source: str) -> str | None:
    """Why a check function's source is unusable, or None."""
    try:
        tree = parse_module(source)
    except SchemaError as exc:
        return str(exc).replace("code does not parse", "does not parse")
    if isinstance(table := _symbols(source), str):
        return table
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "check_func":
            if not node.args.args and not node.args.vararg:
                return "check_func must take the final state as its argument"
            return None
    return "does not define a top-level function check_func(final_state)"


# What a check's source sees besides its own definitions (runtime/sandbox/worker.py check_outcome).
CHECK_GLOBALS = frozenset(dir(builtins)) | {"initial_state", "__name__", "__builtins__"}


def _symbols(source: str) -> symtable.SymbolTable | str | None:
    """The source's symbol table (the compiler's scopes, nothing run); why it does not compile (a duplicate
    argument, a misplaced global or nonlocal); or None when it nests too deeply to say."""
    try:
        return symtable.symtable(source, "<check_func>", "exec")
    except SyntaxError as exc:
        return f"does not compile: {exc.msg} at line {exc.lineno}"
    except (ValueError, RecursionError, MemoryError, SystemError):
        return None


def undefined_names(source: str) -> list[str]:
    """Global names the source reads that nothing defines (not the check's own imports, functions or assignments,
    not a builtin, not initial_state), in order of appearance: each is a NameError when the check reaches it."""
    table = _symbols(source)
    if not isinstance(table, symtable.SymbolTable) or any(
            isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names)
            for node in ast.walk(ast.parse(source))):
        return []  # `from x import *`: anything may be defined
    defined = set(CHECK_GLOBALS)
    read: list[str] = []
    pending = [table]
    while pending:
        scope = pending.pop(0)
        for symbol in scope.get_symbols():
            name = symbol.get_name()
            top = scope is table and (symbol.is_assigned() or symbol.is_imported())
            if top or (symbol.is_declared_global() and symbol.is_assigned()):
                defined.add(name)
            if symbol.is_referenced() and (scope is table or symbol.is_global()) and name not in read:
                read.append(name)
        pending += scope.get_children()
    return [name for name in read if name not in defined]


def undefined_names_problem(source: str) -> str | None:
    """A one-line "refers to x, which nothing defines; did you mean y?", or None."""
    missing = undefined_names(source)
    if not missing:
        return None
    table = _symbols(source)
    names: set[str] = {"initial_state"}
    pending = [table] if isinstance(table, symtable.SymbolTable) else []
    while pending:
        scope = pending.pop()
        names.update(s.get_name() for s in scope.get_symbols() if s.get_name() not in missing)
        pending += scope.get_children()
    hints = [f"{name!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(name, sorted(names), 1))
             else repr(name) for name in missing]
    return (f"check_func refers to {', '.join(hints)}, which nothing defines (not the check, not a builtin, not "
            "initial_state): a NameError when it runs")


def _self_attribute(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _config_keys(init: ast.FunctionDef, param: str) -> set[str] | None:
    """The string keys __init__ reads from its config parameter; None when it uses the config wholesale
    (iterates it, passes it on, unpacks it), so that no key can be called unknown."""
    keys: set[str] = set()
    allowed: set[int] = set()

    def is_param(node: ast.AST) -> bool:  # `config`, or `(config or {})`
        return (isinstance(node, ast.Name) and node.id == param) or \
            (isinstance(node, ast.BoolOp) and is_param(node.values[0]))

    for node in ast.walk(init):
        if isinstance(node, ast.Subscript) and is_param(node.value):
            if not (isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)):
                return None
            keys.add(node.slice.value)
            allowed.add(id(node.value))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and is_param(node.func.value):
            if not (node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                return None
            keys.add(node.args[0].value)
            allowed.add(id(node.func.value))
        elif isinstance(node, ast.Compare | ast.BoolOp | ast.If | ast.IfExp | ast.UnaryOp):
            tests = [node.test] if isinstance(node, ast.If | ast.IfExp) else \
                [node.operand] if isinstance(node, ast.UnaryOp) else \
                node.values if isinstance(node, ast.BoolOp) else [node.left, *node.comparators]
            allowed.update(id(t) for t in tests if isinstance(t, ast.Name))
        elif isinstance(node, ast.Assign | ast.AnnAssign):  # `config = config or {}` rebinds, nothing more
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            allowed.update(id(t) for t in targets if isinstance(t, ast.Name))
    for node in ast.walk(init):
        if isinstance(node, ast.Name) and node.id == param and id(node) not in allowed:
            return None
    return keys


@functools.lru_cache(maxsize=256)
def state_attributes(code: str, class_name: str) -> frozenset[str] | None:
    """What an init_config key may name: the attributes the class (or a base of the same module) sets and the
    keys its __init__ reads. None when the class sets attributes dynamically (setattr, __dict__)."""
    try:
        index = index_module(parse_module(code))
        methods = class_methods(class_name, index)
    except (SchemaError, KeyError):
        return None
    names: set[str] = set()
    classes, pending = [], [class_name]
    while pending:  # the class and its bases of the same module
        node = index.classes.get(pending.pop())
        if node is not None and node not in classes:
            classes.append(node)
            pending += [b.id for b in node.bases if isinstance(b, ast.Name)]
    for cls in classes:
        for item in cls.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                names.add(item.target.id)
            elif isinstance(item, ast.Assign):
                names.update(t.id for t in item.targets if isinstance(t, ast.Name))
    for method in methods.values():
        for node in ast.walk(method):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
                return None
            if _self_attribute(node) == "__dict__":
                return None
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
                if isinstance(node, ast.AnnAssign | ast.AugAssign) else []
            names.update(a for t in targets for e in ast.walk(t) if (a := _self_attribute(e)))
    init = methods.get("__init__")
    if init is not None:
        params = [a.arg for a in init.args.args[1:]] + [a.arg for a in init.args.kwonlyargs]
        if init.args.kwarg or init.args.vararg:
            return None
        for param in params:
            keys = _config_keys(init, param)
            if keys is None:
                return None
            names |= keys
    return frozenset(names)


def unknown_init_config_keys(location: str, scenario: Scenario, env: EnvSpec,
                             severity: Severity = "warning") -> list[Problem]:
    """A key of init_config that the class neither sets nor reads is most likely a typo: EnvScaler's setattr would
    add it as a new attribute that no tool ever looks at."""
    if not isinstance(scenario.init_config, dict):
        return []
    known = state_attributes(env.env_class_code, env.env_class_name)
    if known is None:
        return []
    problems = []
    for key in scenario.init_config:
        if key in known:
            continue
        hint = did_you_mean(str(key), known, what="state attributes")
        problems.append(Problem(location, f"init_config.{key}", f"{key!r} is not a state attribute of "
                                                                 f"{env.env_class_name!r}{hint}", severity))
    return problems


MAX_ENTITIES = 1000  # entities of one attribute read for misspelt keys: a large database is sampled, not walked


def _entity_shapes(code: str, class_name: str) -> dict[str, tuple[str, str, frozenset[str]]]:
    """attribute -> (how its value holds entities: "one", "dict" or "list"; the TypedDict; its keys), for the
    attributes the class annotates with a TypedDict of the module (`self.products: Dict[str, ProductInfo]`)."""
    try:
        index = index_module(parse_module(code))
        methods = class_methods(class_name, index)
    except (SchemaError, KeyError):
        return {}

    def keys_of(name: str, seen: tuple[str, ...] = ()) -> frozenset[str] | None:
        node = index.typeddict_nodes.get(name)
        if not isinstance(node, ast.ClassDef) or name in seen or len(seen) > 8:
            return None  # the functional form, or a cycle: not read
        own = {item.target.id for item in node.body if isinstance(item, ast.AnnAssign)
               and isinstance(item.target, ast.Name)}
        for base in node.bases:
            if isinstance(base, ast.Name) and base.id in index.typeddict_nodes:
                inherited = keys_of(base.id, (*seen, name))
                if inherited is None:
                    return None
                own |= inherited
        return frozenset(own)

    def shape(annotation: ast.expr) -> tuple[str, str] | None:
        if isinstance(annotation, ast.Name) and annotation.id in index.typeddict_nodes:
            return "one", annotation.id
        if isinstance(annotation, ast.Subscript) and isinstance(annotation.value, ast.Name | ast.Attribute):
            outer = _name_of(annotation.value)
            args = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
            inner = args[-1] if args else None
            if outer in ("Dict", "dict", "Mapping", "MutableMapping") and isinstance(inner, ast.Name) \
                    and inner.id in index.typeddict_nodes:
                return "dict", inner.id
            if outer in ("List", "list", "Sequence") and isinstance(inner, ast.Name) \
                    and inner.id in index.typeddict_nodes:
                return "list", inner.id
            if outer == "Optional" and inner is not None:
                return shape(inner)
        return None

    shapes: dict[str, tuple[str, str, frozenset[str]]] = {}
    for method in methods.values():
        for node in ast.walk(method):
            if isinstance(node, ast.AnnAssign) and (attribute := _self_attribute(node.target)) \
                    and (found := shape(node.annotation)) and (keys := keys_of(found[1])) is not None:
                shapes[attribute] = (found[0], found[1], keys)
    return shapes


def _name_of(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


@functools.lru_cache(maxsize=256)
def entity_shapes(code: str, class_name: str) -> dict[str, tuple[str, str, frozenset[str]]]:
    return _entity_shapes(code, class_name)


def misspelt_entity_keys(location: str, scenario: Scenario, env: EnvSpec,
                         severity: Severity = "warning") -> list[Problem]:
    """A key of an init_config entity that is a misspelling of a key its TypedDict has and the entity lacks
    (`prodct_id` for product_id): the tools read the real key and find nothing. One problem per misspelling,
    with the first entity that has it. Other extra or missing keys are left alone: generated configs have them."""
    if not isinstance(scenario.init_config, dict):
        return []
    shapes = entity_shapes(env.env_class_code, env.env_class_name)
    problems: list[Problem] = []
    for attribute, (kind, typed, keys) in shapes.items():
        value = scenario.init_config.get(attribute)
        entities: list[tuple[str, Any]] = []
        if kind == "one":
            entities = [("", value)]
        elif kind == "dict" and isinstance(value, dict):
            entities = [(f".{k}", v) for k, v in list(value.items())[:MAX_ENTITIES]]
        elif kind == "list" and isinstance(value, list):
            entities = [(f"[{i}]", v) for i, v in enumerate(value[:MAX_ENTITIES])]
        seen: dict[str, int] = {}
        first: dict[str, str] = {}
        for where, entity in entities:
            if not isinstance(entity, dict):
                continue
            for key in entity:
                if isinstance(key, str) and key not in keys and (meant := misspelling_of(key, keys)) \
                        and meant not in entity:
                    seen[key] = seen.get(key, 0) + 1
                    first.setdefault(key, f"init_config.{attribute}{where}.{key}")
        for key, count in seen.items():
            meant = misspelling_of(key, keys)
            more = f" ({count} entries)" if count > 1 else ""
            problems.append(Problem(location, first[key], f"{key!r} is not a key of {typed}; did you mean "
                                    f"{meant!r}?{more}", severity))
    return problems


def validate_scenario(location: str, scenario: Scenario, envs: dict[str, EnvSpec],
                      guesses: Severity = "warning", unloaded: dict[str, str] | None = None) -> list[Problem]:
    """The scenario's problems. `guesses`: the severity of what the code's text suggests but cannot prove (an
    init_config key nothing reads, a misspelt entity key, a check's undefined name): warnings here (a static
    guess must not stop a build, and EnvScaler's own files have them); `check` and --strict make them errors.
    `unloaded`: env_id -> where the environment that did not load is, so that its scenarios point at the cause."""
    problems: list[Problem] = _unicode_problem(location, scenario.model_dump(mode="json"))
    env = envs.get(scenario.env_id)
    if env is None and unloaded and scenario.env_id in unloaded:
        problems.append(Problem(location, "env_id", f"its environment {scenario.env_id!r} did not load (see "
                                                     f"{unloaded[scenario.env_id]})"))
    elif env is None:
        problems.append(Problem(location, "env_id", f"unknown env_id {scenario.env_id!r}"))
    elif scenario.env_class_name and scenario.env_class_name != env.env_class_name:
        problems.append(Problem(location, "env_class_name", f"{scenario.env_class_name!r} differs from the "
                                                              f"environment's {env.env_class_name!r}", "warning"))
    if env is not None:
        problems += unknown_init_config_keys(location, scenario, env, guesses)
        problems += misspelt_entity_keys(location, scenario, env, guesses)
    for i, check in enumerate(scenario.checklist_with_func):
        where = f"checklist_with_func[{i}].check_func"
        reason = check_func_problem(check.check_func)
        if reason:
            problems.append(Problem(location, where, reason))
        elif names := undefined_names_problem(check.check_func):
            problems.append(Problem(location, where, names, guesses))
    return problems


def validate_files(envs_path: str | os.PathLike[str] | None = None,
                   scenarios_path: str | os.PathLike[str] | None = None, *, strict: bool = False) -> ValidationReport:
    """Every record's problems; `strict`: warnings are errors."""

    def _group(kind: Kind, location: str, record_id: str, problems: list[Problem]) -> RecordReport:
        mine = [p for p in problems if p.record == location]
        return RecordReport(kind, location, record_id, strictly(mine) if strict else mine)

    envs_path, scenarios_path = as_path(envs_path, "envs"), as_path(scenarios_path, "scenarios")
    report = ValidationReport()
    env_file = envs_path or bundled_envs_path()
    scen_file = scenarios_path if scenarios_path is not None else (bundled_scenarios_path() if envs_path is None
                                                                   else None)
    env_records = _read(report, env_file)
    parsed_envs, load_problems = parse_envs(env_records)
    specs = {spec.env_id: spec for _, spec in parsed_envs}
    parsed_ids = {id(record): spec for record, spec in parsed_envs}
    unloaded: dict[str, str] = {}
    for record in env_records:
        spec = parsed_ids.get(id(record))
        problems = load_problems + (validate_env(record.location, spec) if spec else [])
        raw_id = record.data.get("env_id") if isinstance(record.data, dict) else None
        record_id = spec.env_id if spec else str(record.key or raw_id or "")
        if spec is None and record_id:
            unloaded.setdefault(record_id, record.location)
        report.records.append(_group("env", record.location, record_id, problems))
    if scen_file is None:
        return report
    try:  # one scenario at a time: a file of hundreds of megabytes is never held whole
        for record, scenario, load_problems in iter_scenarios(iter_records(scen_file)):
            problems = load_problems + (validate_scenario(record.location, scenario, specs, unloaded=unloaded)
                                        if scenario else [])
            record_id = f"{scenario.env_id}/{scenario.task_id}" if scenario else ""
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


def _type_name(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind:
        return str(kind)
    options = schema.get("anyOf") or schema.get("oneOf") or []
    return " or ".join(_type_name(o) for o in options if isinstance(o, dict)) or "another value"


def call_argument_problem(tools: list[dict[str, Any]], name: str, arguments: Any) -> str | None:
    """Why a call's arguments do not fit the tool's JSON schema (naming the parameter and the type it expects),
    or None. Checked before a replay, so that `"two"` for an integer is not a TOOL_EXCEPTION from deep inside."""
    functions = {t.get("function", {}).get("name"): t.get("function", {}) for t in tools}
    if name not in functions:
        return f"no tool named {name!r} (tools: {', '.join(sorted(n for n in functions if n))})"
    schema = functions[name].get("parameters") or {"type": "object"}
    try:
        errors = sorted(Draft202012Validator(schema).iter_errors(arguments), key=lambda e: list(e.absolute_path))
    except JsonSchemaError:
        return None  # a broken published schema is validate's to report
    if not errors:
        return None
    error = errors[0]
    if not error.absolute_path:
        if error.validator == "required":
            return f"{name}: {error.message.replace('is a required property', 'is a required parameter')}"
        if error.validator == "additionalProperties":
            return f"{name}: {error.message.replace('Additional properties', 'unknown parameters')}"
        return f"{name}: the arguments must be a JSON object"
    param = ".".join(str(p) for p in error.absolute_path)
    if error.validator in ("type", "enum", "anyOf", "oneOf"):
        return f"{name}: parameter {param!r} is {json.dumps(error.instance)[:80]}, expected {_type_name(error.schema)}"
    return f"{name}: parameter {param!r}: {error.message[:200]}"
