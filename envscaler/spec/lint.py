"""What an environment's code tells the agent, read from its AST (nothing is executed): tools and classes without a
docstring, parameters nobody describes, and tool schemas the code contradicts.

These degrade the agent's prompt or mislead it, but the environment still runs: they are warnings of `validate` and
`assemble`, errors under `--strict`.
"""

from __future__ import annotations

import ast
import inspect
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as JsonSchemaError

from envscaler.spec.toolschema import (
    ModuleIndex,
    class_methods,
    index_module,
    is_tool,
    parse_docstring,
    parse_module,
    served_tools,
)

Finding = tuple[str, int, str]  # (field, line in the code, message)


def documentation_findings(code: str, class_name: str, tools: list[dict[str, Any]] | None) -> list[Finding]:
    """Every finding for the class's tools, in source order. (The class's own docstring reaches the agent only
    through the record's environment_introduction, which `validate` checks, and `assemble` fills from it.)"""
    index = index_module(parse_module(code))
    methods = class_methods(class_name, index)
    served = {t["function"]["name"]: t["function"] for t in served_tools(tools, code, class_name, "derived")}
    findings: list[Finding] = []
    for name, node in methods.items():
        if is_tool(name, node) and name in served:
            findings += _tool_findings(node, served[name], index)
    return findings


def _tool_findings(node: ast.FunctionDef, served: dict[str, Any], index: ModuleIndex) -> list[Finding]:
    name = node.name
    where = f"env_class_code.{name}"
    findings: list[Finding] = []

    def add(message: str) -> None:
        findings.append((where, node.lineno, message))

    parameters = served.get("parameters") or {}
    properties: dict[str, Any] = parameters.get("properties") or {}
    description = str(served.get("description") or "").strip()
    if not description or description == name:
        add(f"tool {name!r} has no docstring: the agent sees only its name")
    undocumented = [p for p, schema in properties.items() if not str(schema.get("description") or "").strip()]
    if undocumented:
        add(f"tool {name!r}: parameter{'s' if len(undocumented) > 1 else ''} "
            f"{', '.join(map(repr, undocumented))} not described (add an Args: section to its docstring)")
    doc = inspect.cleandoc(ast.get_docstring(node, clean=False) or "")
    parsed = parse_docstring(doc)
    if doc.strip() and parsed is None:
        add(f"tool {name!r}: its docstring is in none of the styles read (Google, ReST, NumPy, Epydoc), "
            "so its parameters go undescribed")
    documented = [p.arg_name for p in parsed.params] if parsed else []
    strays = [p for p in documented if p not in properties and p.lstrip("*") not in properties]
    if strays:
        add(f"tool {name!r}: its docstring describes {', '.join(map(repr, strays))}, which "
            f"{'is not a parameter' if len(strays) == 1 else 'are not parameters'}")
    for param, schema in properties.items():
        if "default" in schema:
            bare = {k: v for k, v in schema.items() if k not in ("default", "description")}
            if problem := _misfit(bare, schema["default"]):
                add(f"tool {name!r}: parameter {param!r} defaults to {schema['default']!r}, "
                    f"which its annotation does not allow ({problem})")
    findings += _unread_required_keys(node, properties, index)
    return findings


def _misfit(schema: dict[str, Any], value: Any) -> str | None:
    try:
        error = next(iter(Draft202012Validator(schema).iter_errors(value)), None)
    except JsonSchemaError:
        return None
    return error.message[:120] if error is not None else None


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    return {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _reads(body: ast.FunctionDef, variable: str, parents: dict[int, ast.AST]) -> set[str] | None:
    """The string keys the method reads from `variable` (v["k"], v.get("k"), "k" in v); None when the value goes
    anywhere else (passed on, stored, unpacked, rebound), so that what it is used for cannot be known."""
    keys: set[str] = set()
    for node in ast.walk(body):
        if not (isinstance(node, ast.Name) and node.id == variable):
            continue
        parent = parents.get(id(node))
        if isinstance(parent, ast.For | ast.comprehension) and parent.target is node:
            continue  # bound by the loop over the list
        if not isinstance(node.ctx, ast.Load):
            return None
        if isinstance(parent, ast.Subscript) and parent.value is node:
            if not (isinstance(parent.slice, ast.Constant) and isinstance(parent.slice.value, str)):
                return None
            keys.add(parent.slice.value)
        elif isinstance(parent, ast.Attribute) and parent.attr == "get":
            call = parents.get(id(parent))
            if not (isinstance(call, ast.Call) and call.func is parent and call.args
                    and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)):
                return None
            keys.add(call.args[0].value)
        elif isinstance(parent, ast.Compare) and node in parent.comparators and isinstance(parent.left, ast.Constant) \
                and isinstance(parent.left.value, str):
            keys.add(parent.left.value)  # "k" in v
        elif isinstance(parent, ast.Compare) and all(isinstance(op, ast.Is | ast.IsNot) for op in parent.ops):
            continue  # v is None
        elif isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id == "isinstance":
            continue
        elif isinstance(parent, ast.If | ast.While | ast.IfExp | ast.BoolOp | ast.UnaryOp | ast.Assert):
            continue  # truthiness
        else:
            return None
    return keys


def _loop_variables(body: ast.FunctionDef, param: str, parents: dict[int, ast.AST]) -> list[str] | None:
    """The names `for x in param` binds; None when the list is used any other way than iterated."""
    names: list[str] = []
    for node in ast.walk(body):
        if not (isinstance(node, ast.Name) and node.id == param):
            continue
        parent = parents.get(id(node))
        if isinstance(parent, ast.For | ast.comprehension) and parent.iter is node and \
                isinstance(parent.target, ast.Name):
            names.append(parent.target.id)
        elif (isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name)
              and parent.func.id in ("len", "isinstance")) \
                or isinstance(parent, ast.If | ast.While | ast.IfExp | ast.BoolOp | ast.UnaryOp) \
                or (isinstance(parent, ast.Compare) and all(isinstance(op, ast.Is | ast.IsNot) for op in parent.ops)):
            continue  # measured, type-tested or tested for truth
        else:
            return None
    return names


def _typeddict_name(annotation: ast.expr | None, index: ModuleIndex) -> str:
    for node in ast.walk(annotation) if annotation is not None else ():
        if isinstance(node, ast.Name) and node.id in index.typeddict_nodes:
            return node.id
    return ""


def _unread_required_keys(node: ast.FunctionDef, properties: dict[str, Any], index: ModuleIndex) -> list[Finding]:
    """A TypedDict parameter (or a list of them) whose schema requires keys the method never reads: a caller must
    invent a value the code then ignores or overwrites (a line's unit_price, filled in from the catalogue)."""
    parents = _parents(node)
    annotations = {a.arg: a.annotation for a in [*node.args.args, *node.args.kwonlyargs]}
    findings: list[Finding] = []
    for param, schema in properties.items():
        if schema.get("type") == "object" and schema.get("required"):
            shape, variables, path = schema, [param], param
        elif schema.get("type") == "array" and isinstance(schema.get("items"), dict) \
                and schema["items"].get("type") == "object" and schema["items"].get("required"):
            shape, path = schema["items"], f"{param}[]"
            found = _loop_variables(node, param, parents)
            if not found:
                continue
            variables = found
        else:
            continue
        reads: set[str] = set()
        for variable in variables:
            keys = _reads(node, variable, parents)
            if keys is None:
                break
            reads |= keys
        else:
            unread = [k for k in shape["required"] if k not in reads]
            if reads and unread:
                typed = _typeddict_name(annotations.get(param), index)
                findings.append((f"env_class_code.{node.name}", node.lineno, f"tool {node.name!r}: its schema requires "
                                 f"{', '.join(f'{path}.{k}' for k in unread)}{f' (from {typed})' if typed else ''}, "
                                 "which the code never reads: a caller must invent it; give the parameter a "
                                 "TypedDict of what the caller supplies, or mark the key NotRequired"))
    return findings
