"""OpenAI tool schemas derived from an environment class by reading its AST.

Nothing here executes the environment's code. Compared with EnvScaler's own
derivation: parameters with defaults are optional, `__init__` and `_private`
methods are never tools, Literal/Union/Optional/TypedDict/containers map to
precise JSON Schema, docstring `Args:` sections (Google, NumPy, reST) give
per-parameter descriptions, and unannotated parameters are accepted.
"""

from __future__ import annotations

import ast
import inspect
import json
import pickle
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import docstring_parser

JsonSchema = dict[str, Any]


class SchemaError(ValueError):
    """The code cannot yield tools (does not parse, or the class is missing)."""


class AnnotationTooComplex(SchemaError):
    """An annotation past the limits below: the message says which limit."""


# Limits on reading annotations, so that hostile code (alias chains thousands long, exponential alias
# unions, Literals of a million members) is an error for its record, not a crash or a hang of the host.
MAX_ANNOTATION_DEPTH = 64  # nesting, counting every alias, subscript, union member and TypedDict base resolved
MAX_PARAMETER_NODES = 5_000  # annotation nodes read (Literal members included) for one parameter
MAX_CLASS_NODES = 200_000  # the same, for all the tools of one class
MAX_INHERITANCE_DEPTH = 64


@dataclass
class _Walk:
    """The work done reading annotations; raises AnnotationTooComplex past a limit."""

    depth: int = 0
    nodes: int = 0
    total: int = 0

    def charge(self, count: int = 1) -> None:
        self.nodes += count
        self.total += count
        if self.nodes > MAX_PARAMETER_NODES:
            raise AnnotationTooComplex(f"annotation has more than {MAX_PARAMETER_NODES} type nodes "
                                       "(aliases and Literal members included)")
        if self.total > MAX_CLASS_NODES:
            raise AnnotationTooComplex(f"the class's annotations have more than {MAX_CLASS_NODES} type nodes")

    @contextmanager
    def level(self) -> Iterator[None]:
        self.depth += 1
        try:
            if self.depth > MAX_ANNOTATION_DEPTH:
                raise AnnotationTooComplex(f"annotation nests deeper than {MAX_ANNOTATION_DEPTH} levels "
                                           "(aliases and TypedDict bases included)")
            self.charge()
            yield
        finally:
            self.depth -= 1


_SCALARS: dict[str, JsonSchema] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "bytes": {"type": "string"},
    "None": {"type": "null"},
    "NoneType": {"type": "null"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "Any": {},
    "object": {},
}
_ARRAYS = {"list", "List", "Sequence", "MutableSequence", "Iterable", "Collection", "set", "Set",
           "frozenset", "FrozenSet", "AbstractSet", "MutableSet", "tuple", "Tuple", "Deque", "deque"}
_OBJECTS = {"dict", "Dict", "Mapping", "MutableMapping", "OrderedDict", "DefaultDict", "defaultdict", "Counter"}
_WRAPPERS = {"Annotated", "Required", "NotRequired", "ReadOnly", "Final", "ClassVar"}


@dataclass
class ModuleIndex:
    """What the module defines that annotations may refer to."""

    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    typeddicts: dict[str, JsonSchema | None] = field(default_factory=dict)  # None until resolved
    typeddict_costs: dict[str, int] = field(default_factory=dict)  # nodes read to resolve each, charged on reuse
    typeddict_nodes: dict[str, ast.AST] = field(default_factory=dict)
    aliases: dict[str, ast.expr] = field(default_factory=dict)


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _is_typeddict_class(node: ast.ClassDef, known: set[str]) -> bool:
    return any(_name(base) == "TypedDict" or _name(base) in known for base in node.bases)


def index_module(tree: ast.Module) -> ModuleIndex:
    index = ModuleIndex()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            index.classes[node.name] = node
            if _is_typeddict_class(node, set(index.typeddict_nodes)):
                index.typeddict_nodes[node.name] = node
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
            if isinstance(value, ast.Call) and _name(value.func) == "TypedDict":
                index.typeddict_nodes[target] = value
            elif isinstance(value, ast.Name | ast.Attribute | ast.Subscript | ast.BinOp):
                index.aliases[target] = value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None \
                and _name(node.annotation) == "TypeAlias":
            index.aliases[node.target.id] = node.value
    return index


def _is_json(value: object) -> bool:
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode()
    except (TypeError, ValueError, RecursionError):  # ValueError: NaN, a lone surrogate, an int past 4300 digits
        return False
    return True


def _union(members: list[JsonSchema]) -> JsonSchema:
    unique: list[JsonSchema] = []
    for member in members:
        if member == {}:
            return {}
        if member not in unique:
            unique.append(member)
    if len(unique) == 1:
        return unique[0]
    if all(set(m) == {"type"} and isinstance(m["type"], str) for m in unique):
        return {"type": [m["type"] for m in unique]}
    return {"anyOf": unique}


def _nullable(schema: JsonSchema) -> JsonSchema:
    return _union([schema, {"type": "null"}])


def _typeddict_schema(name: str, index: ModuleIndex, stack: tuple[str, ...], walk: _Walk) -> JsonSchema:
    if name in stack:  # recursive TypedDict: stop at an open object
        return {"type": "object"}
    cached = index.typeddicts.get(name)
    if cached is not None:
        walk.charge(index.typeddict_costs.get(name, 1))  # reuse costs what it adds to the schema
        return cached
    with walk.level():
        before = walk.nodes
        schema = _typeddict_body(name, index, stack, walk)
        index.typeddict_costs[name] = max(1, walk.nodes - before)
    index.typeddicts[name] = schema
    return schema


def _typeddict_body(name: str, index: ModuleIndex, stack: tuple[str, ...], walk: _Walk) -> JsonSchema:
    node = index.typeddict_nodes[name]
    properties: dict[str, JsonSchema] = {}
    required: list[str] = []
    stack = (*stack, name)
    if isinstance(node, ast.ClassDef):
        total = not any(k.arg == "total" and isinstance(k.value, ast.Constant) and k.value.value is False
                        for k in node.keywords)
        for base in node.bases:  # inherited keys from TypedDicts of this module
            if _name(base) in index.typeddict_nodes:
                parent = _typeddict_schema(_name(base), index, stack, walk)
                properties.update(parent.get("properties", {}))
                required += parent.get("required", [])
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                key = item.target.id
                properties[key] = annotation_schema(item.annotation, index, stack, walk)
                wrapper = _name(item.annotation.value) if isinstance(item.annotation, ast.Subscript) else ""
                if (total and wrapper != "NotRequired") or wrapper == "Required":
                    required.append(key)
    elif isinstance(node, ast.Call) and len(node.args) >= 2 and isinstance(node.args[1], ast.Dict):
        for key_node, value_node in zip(node.args[1].keys, node.args[1].values, strict=False):
            if isinstance(key_node, ast.Constant) and isinstance(key_node.value, str):
                properties[key_node.value] = annotation_schema(value_node, index, stack, walk)
                required.append(key_node.value)
    schema: JsonSchema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _subscript_args(node: ast.Subscript) -> list[ast.expr]:
    return list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]


def annotation_schema(node: ast.expr | None, index: ModuleIndex, stack: tuple[str, ...] = (),
                      walk: _Walk | None = None) -> JsonSchema:
    """JSON Schema for one annotation expression; {} (anything) when unknown or absent.
    Raises AnnotationTooComplex past the limits above."""
    walk = walk if walk is not None else _Walk()
    with walk.level():
        return _annotation(node, index, stack, walk)


def _annotation(node: ast.expr | None, index: ModuleIndex, stack: tuple[str, ...], walk: _Walk) -> JsonSchema:
    if node is None:
        return {}
    if isinstance(node, ast.Constant):
        if node.value is None:
            return {"type": "null"}
        if isinstance(node.value, str):  # a forward reference written as a string
            try:
                parsed = ast.parse(node.value, mode="eval").body
            except (SyntaxError, SystemError, ValueError, RecursionError, MemoryError):
                return {}
            return annotation_schema(parsed, index, stack, walk)
        return {}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        members: list[ast.expr] = []
        while isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # `a | b | c` nests to the left
            members.append(node.right)
            node = node.left
        members.append(node)
        return _union([annotation_schema(m, index, stack, walk) for m in reversed(members)])
    if isinstance(node, ast.Name | ast.Attribute):
        name = _name(node)
        if name in _SCALARS:
            return dict(_SCALARS[name])
        if name in _ARRAYS:
            return {"type": "array"}
        if name in _OBJECTS:
            return {"type": "object"}
        if name in index.typeddict_nodes:
            return _typeddict_schema(name, index, stack, walk)
        if name in index.aliases and name not in stack:
            return annotation_schema(index.aliases[name], index, (*stack, name), walk)
        return {"type": "object"}  # a class: passed as its attributes
    if isinstance(node, ast.Subscript):
        base, args = _name(node.value), _subscript_args(node)
        if base == "Optional":
            return _nullable(annotation_schema(args[0], index, stack, walk))
        if base == "Union":
            return _union([annotation_schema(a, index, stack, walk) for a in args])
        if base == "Literal":
            walk.charge(len(args))
            # JSON values only: Literal[...], bytes or complex members cannot be sent by a client anyway
            values = [a.value for a in args if isinstance(a, ast.Constant) and _is_json(a.value)]
            kinds = sorted({_SCALARS[type(v).__name__]["type"] for v in values if type(v).__name__ in _SCALARS})
            schema: JsonSchema = {"enum": values}
            if kinds:
                schema["type"] = kinds[0] if len(kinds) == 1 else kinds
            return schema
        if base in _WRAPPERS:
            return annotation_schema(args[0], index, stack, walk)
        if base in _ARRAYS:
            items = [a for a in args if not (isinstance(a, ast.Constant) and a.value is Ellipsis)]
            member = _union([annotation_schema(a, index, stack, walk) for a in items]) if items else {}
            return {"type": "array", "items": member} if member else {"type": "array"}
        if base in _OBJECTS:
            value = annotation_schema(args[-1], index, stack, walk) if len(args) == 2 else {}
            return {"type": "object", "additionalProperties": value} if value else {"type": "object"}
        return annotation_schema(node.value, index, stack, walk)
    return {}


_PARAM_HEADER = re.compile(r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments)\s*:?\s*$")
_REST_PARAM = re.compile(r"^:(param|parameter|arg|argument|key|keyword|type)\b")
_NUMPY_RULE = re.compile(r"^-{3,}\s*$")


def _is_rule(lines: list[str], i: int) -> bool:
    return i < len(lines) and _NUMPY_RULE.match(lines[i].strip()) is not None


def _skip_google(lines: list[str], i: int, indent: int) -> int:
    while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
        i += 1
    return i


def _skip_numpy(lines: list[str], i: int) -> int:
    while i < len(lines) and not _is_rule(lines, i + 1):
        i += 1
    return i


def strip_param_section(doc: str) -> str:
    """The docstring without its parameter section (moved into the parameters)."""
    lines = doc.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line, stripped = lines[i], lines[i].strip()
        if _PARAM_HEADER.match(stripped) and _is_rule(lines, i + 1):
            i = _skip_numpy(lines, i + 2)
        elif (_PARAM_HEADER.match(stripped) and stripped.endswith(":")) or _REST_PARAM.match(stripped):
            i = _skip_google(lines, i + 1, len(line) - len(line.lstrip()))
        else:
            out.append(line)
            i += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def _decorators(node: ast.FunctionDef) -> set[str]:
    return {_name(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list}


def class_methods(class_name: str, index: ModuleIndex, _seen: tuple[str, ...] = ()) -> dict[str, ast.FunctionDef]:
    """Methods of the class, including those inherited from classes of the same module."""
    if len(_seen) >= MAX_INHERITANCE_DEPTH:
        raise SchemaError(f"class {_seen[0]!r} inherits through more than {MAX_INHERITANCE_DEPTH} classes")
    methods: dict[str, ast.FunctionDef] = {}
    node = index.classes[class_name]
    seen = (*_seen, class_name)
    for base in reversed(node.bases):
        base_name = _name(base)
        if base_name in index.classes and base_name not in seen:  # a cycle cannot be defined; skip it
            methods.update(class_methods(base_name, index, seen))
    for item in node.body:
        if isinstance(item, ast.FunctionDef):
            methods[item.name] = item
        elif isinstance(item, ast.AsyncFunctionDef):
            methods.pop(item.name, None)
    return methods


def is_tool(name: str, node: ast.FunctionDef) -> bool:
    return not name.startswith("_") and not {"property", "setter", "deleter"} & _decorators(node)


def parse_docstring(doc: str) -> docstring_parser.Docstring | None:
    """The docstring's sections in whichever style it is written; None when empty or in none of them (`validate`
    says so: its parameters go undescribed)."""
    try:
        return docstring_parser.parse(doc) if doc.strip() else None
    except docstring_parser.ParseError:
        return None


def method_tool(node: ast.FunctionDef, index: ModuleIndex, walk: _Walk | None = None) -> dict[str, Any]:
    """One tool's schema; SchemaError naming the tool and parameter when an annotation is past the limits."""
    walk = walk if walk is not None else _Walk()
    doc = inspect.cleandoc(ast.get_docstring(node, clean=False) or "")
    parsed = parse_docstring(doc)
    param_docs = {p.arg_name: (p.description or "").strip() for p in (parsed.params if parsed else [])}
    args = node.args
    positional = args.args if "staticmethod" in _decorators(node) else args.args[1:]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    pairs = list(zip(positional, defaults, strict=True)) + list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
    properties: dict[str, JsonSchema] = {}
    required: list[str] = []
    for arg, default in pairs:
        walk.nodes = 0
        try:
            schema = annotation_schema(arg.annotation, index, (), walk)
        except AnnotationTooComplex as exc:
            raise AnnotationTooComplex(f"tool {node.name!r}, parameter {arg.arg!r}: {exc}") from None
        except RecursionError:  # a limit above should come first; never let it out as a traceback
            raise AnnotationTooComplex(f"tool {node.name!r}, parameter {arg.arg!r}: annotation nests too deeply") \
                from None
        if default is None:
            required.append(arg.arg)
        else:
            try:
                value = ast.literal_eval(default)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                pass
            else:
                if value is None and schema and "null" not in str(schema):
                    schema = _nullable(schema)
                if _is_json(value):  # a default of b"", {1, 2}, 1j or ... is left out of the schema
                    schema = {**schema, "default": value}
        if param_docs.get(arg.arg):
            schema = {**schema, "description": param_docs[arg.arg]}
        properties[arg.arg] = schema
    description = strip_param_section(doc) if doc else node.name
    return {
        "type": "function",
        "function": {
            "name": node.name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


def _parse_in_child(code: str) -> ast.Module:
    """CPython 3.11.7 can raise a spurious SystemError ("AST constructor recursion depth mismatch") in
    threads after sys.setrecursionlimit changed; a fresh interpreter parses the same text cleanly."""
    script = "import ast, pickle, sys; sys.stdout.buffer.write(pickle.dumps(ast.parse(sys.stdin.read())))"
    done = subprocess.run([sys.executable, "-I", "-c", script], input=code.encode(), capture_output=True,
                          timeout=60, check=False)
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise SyntaxError(lines[-1] if lines else "unparsable")
    return pickle.loads(done.stdout)  # produced by ast.parse in our own child: AST nodes only


def parse_module(code: str) -> ast.Module:
    try:
        try:
            return ast.parse(code)
        except SystemError:
            return _parse_in_child(code)
    except SyntaxError as exc:
        raise SchemaError(f"code does not parse: {exc.msg} at line {exc.lineno}") from None
    except (ValueError, RecursionError, MemoryError, subprocess.TimeoutExpired) as exc:
        raise SchemaError(f"code does not parse: {exc}") from None


def derive_tools(code: str, class_name: str) -> list[dict[str, Any]]:
    """The OpenAI `tools` list for the class's public methods, in source order."""
    index = index_module(parse_module(code))
    if class_name not in index.classes:
        raise SchemaError(f"class {class_name!r} is not defined at the top level of the code")
    walk = _Walk()  # one budget for the class: many tools cannot add up to a hang
    return [method_tool(node, index, walk) for name, node in class_methods(class_name, index).items()
            if is_tool(name, node)]


def tool_names(tools: list[dict[str, Any]]) -> list[str]:
    return [t.get("function", {}).get("name", "") for t in tools if isinstance(t, dict)]


TOOL_SCHEMAS = ("derived", "record")


def served_tools(tools: list[dict[str, Any]] | None, code: str, class_name: str,
                 mode: str = "derived") -> list[dict[str, Any]]:
    """What the server offers. `derived` (the default): schemas from the code, with the record's own
    descriptions (of the tool and of each parameter) where its names match, and the record's tools that the
    code defines nowhere visible as they are. `record`: the record's own list as published, minus `_private`
    helpers (EnvScaler's prompts, bit for bit); derived when it has none."""
    if mode not in TOOL_SCHEMAS:
        raise SchemaError(f"tool schemas {mode!r}: expected one of {', '.join(TOOL_SCHEMAS)}")
    own = [t for t in tools or [] if isinstance(t, dict) and isinstance(t.get("function"), dict)
           and isinstance(t["function"].get("name"), str) and not t["function"]["name"].startswith("_")]
    if mode == "record" and tools is not None:
        return own
    derived = derive_tools(code, class_name)
    by_name = {t["function"]["name"]: t["function"] for t in own}
    served = [_with_descriptions(tool, by_name.get(tool["function"]["name"])) for tool in derived]
    # A record's tool the class does not define where the AST can see it (an alias `b = a`, a method made by a
    # decorator): served as the record has it, so deriving never loses a tool EnvScaler would offer.
    defined = set(class_methods(class_name, index_module(parse_module(code))))
    return served + [t for t in own if t["function"]["name"] not in defined]


def _with_descriptions(tool: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any]:
    if record is None:
        return tool
    function = dict(tool["function"])
    if isinstance(record.get("description"), str) and record["description"].strip():
        function["description"] = record["description"]
    params = record.get("parameters")
    theirs = params.get("properties") if isinstance(params, dict) else None
    if isinstance(theirs, dict) and isinstance(function.get("parameters"), dict):
        properties = dict(function["parameters"].get("properties") or {})
        for name, schema in properties.items():
            text = theirs.get(name, {}).get("description") if isinstance(theirs.get(name), dict) else None
            if isinstance(text, str) and text.strip():
                properties[name] = {**schema, "description": text}
        function["parameters"] = {**function["parameters"], "properties": properties}
    return {**tool, "function": function}
