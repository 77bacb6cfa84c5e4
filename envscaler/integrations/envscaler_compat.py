"""EnvScaler's step semantics as pure functions, for the drop-ins in envscaler_gem.py.

What EnvScaler's `EnvScalerBaseEnv.step` does in the trainer's process with the environment's instance at hand
(hasattr on it, `getattr(instance, name)(**arguments)`, a traceback when that raises) is worked out here from
what the trainer may see without running environment code: the class's syntax (never executed), the tools the
pool serves, the episode's state as canonical JSON, and the sandbox's typed errors. Restated from EnvScaler's
public code (RUC-NLPIR/EnvScaler, commit 87e66739), not copied; docs/envscaler_gem.md lists where it differs.
"""

from __future__ import annotations

import ast
import json
import re
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any, Literal

# The texts EnvScaler's step returns as user observations; trainers match on them.
PARSE_RESPONSE_FAILED = "Error: Failed to parse response to struct response"
PARSE_ACTION_FAILED = "Error: Failed to parse response to action"
INVALID_ACTION = "Error: Invalid action"
TASK_FINISHED = "Task finished"
EXCEPTION_PREFIX = "Error: <Exception>\n"
CHAT = "chat_with_user"

_THINK = re.compile(r"(?:<|@)think(?:>|@)\s*(.*?)(?:<|@)/think(?:>|@)", re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"(?:<|@)think(?:>|@)", re.IGNORECASE)
_TOOL_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)


# ---------------------------------------------------------------- a model's reply -> an action


def parse_response(text: str) -> tuple[bool, dict[str, Any]]:
    """A text reply (prompt mode) as {reasoning_content, tool_calls, content}, and whether its structure is sound:
    a <think> block must close, a <tool_call> must close and hold JSON with "name" and "arguments" (the first of
    several is taken). Content is what stands outside the think block and before the tool call."""
    ok = True
    result: dict[str, Any] = {"reasoning_content": None, "tool_calls": None, "content": None}
    text = text.strip()
    think = _THINK.search(text)
    if think:
        result["reasoning_content"] = think.group(1).strip()
    elif _THINK_OPEN.search(text):
        ok = False
        result["reasoning_content"] = {"error": "Missing </think> or malformed think block"}
    calls = list(_TOOL_CALL.finditer(text))
    call = calls[0] if calls else None
    if call is None and "<tool_call>" in text and "</tool_call>" not in text:
        ok = False
        result["tool_calls"] = [{"error": "Unclosed <tool_call> tag"}]
    body = call.group(1) if call else None
    if think and body:
        result["content"] = text[think.end():call.start()].strip() if call else ""
    elif think:
        result["content"] = text[think.end():].strip()
    elif body and call:
        result["content"] = text[:call.start()].strip()
    else:
        result["content"] = text.strip()
    if body:
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError as exc:
            return False, {**result, "tool_calls": [{"error": f"Failed to parse tool_call JSON: {exc}", "raw": body}]}
        missing = [f for f in ("name", "arguments") if f not in parsed]
        if missing:
            ok = False
            result["tool_calls"] = [{"error": f"Missing required field(s): {missing}", "raw": parsed}]
        else:
            result["tool_calls"] = [{"function": parsed}]
    return ok, result


def parse_action(response: Any) -> tuple[bool, dict[str, Any]]:
    """A structured reply ({content, tool_calls: [{function: {name, arguments}}]}, OpenAI's shape) as an action:
    its first tool call (arguments given as JSON text are decoded), else its text as `chat_with_user`; (False, {})
    when it has neither or is not of that shape."""
    try:
        content, calls = response.get("content"), response.get("tool_calls")
        if calls:
            action = deepcopy(calls[0]["function"])
            if isinstance(action["arguments"], str):
                action["arguments"] = json.loads(action["arguments"])
            return True, action
        if content:
            return True, {"name": CHAT, "arguments": {"content": content}}
        return False, {}
    except Exception:  # the reply is the trainer's own data; any shape error is EnvScaler's "cannot parse"
        return False, {}


# ---------------------------------------------------------------- the class, read from its syntax


Param = tuple[str, bool]  # a parameter's name, and whether it has a default


@dataclass(frozen=True)
class Signature:
    """What Python checks when a method is called by keywords alone."""

    qualname: str
    positional_only: tuple[Param, ...]
    positional: tuple[Param, ...]  # positional-or-keyword
    keyword_only: tuple[Param, ...]
    var_keyword: bool
    bound: str = ""  # the name self (or cls) has; "" for a staticmethod
    bound_positional_only: bool = False


@dataclass
class ClassModel:
    """The names an instance of the class has before any attribute is set on it, as far as syntax says.
    `methods`: each method and its signature (None where a decorator hides it); `constants`: class-level
    values and their type's name (None where the value is not a literal); `open`: the class defines
    __getattr__ (every name exists) or inherits from a class the module does not define (names unknown)."""

    class_name: str
    defined: bool = False
    methods: dict[str, Signature | None] = field(default_factory=dict)
    constants: dict[str, str | None] = field(default_factory=dict)
    open: bool = False


def _decorator_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = set()
    for d in node.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        names.add(target.id if isinstance(target, ast.Name) else target.attr if isinstance(target, ast.Attribute)
                  else "")
    return names


def _params(args: list[ast.arg], defaults: list[ast.expr | None]) -> tuple[Param, ...]:
    return tuple((a.arg, d is not None) for a, d in zip(args, defaults, strict=True))


def signature_of(node: ast.FunctionDef | ast.AsyncFunctionDef, owner: str) -> Signature | None:
    decorators = _decorator_names(node) - {"staticmethod", "classmethod"}
    if decorators:
        return None  # a wrapper's signature is its own: only running it could tell
    a = node.args
    ordered = [*a.posonlyargs, *a.args]
    defaults: list[ast.expr | None] = [None] * (len(ordered) - len(a.defaults)) + list(a.defaults)
    if "staticmethod" not in _decorator_names(node):
        if not ordered:
            return None  # no slot for self: the call fails in a way syntax does not show
        ordered, defaults = ordered[1:], defaults[1:]
    static = "staticmethod" in _decorator_names(node)
    bound = "" if static else [*a.posonlyargs, *a.args][0].arg
    posonly = max(0, len(a.posonlyargs) - (0 if static else 1))
    return Signature(qualname=f"{owner}.{node.name}", bound=bound, bound_positional_only=bool(bound and a.posonlyargs),
                     positional_only=_params(ordered[:posonly], defaults[:posonly]),
                     positional=_params(ordered[posonly:], defaults[posonly:]),
                     keyword_only=_params(a.kwonlyargs, list(a.kw_defaults)),
                     var_keyword=a.kwarg is not None)


def _literal_type(value: ast.expr) -> str | None:
    try:
        return type(ast.literal_eval(value)).__name__
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def class_model(code: str, class_name: str) -> ClassModel:
    """Read the class from its source; never runs it. A module that does not parse has no class."""
    model = ClassModel(class_name)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return model
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    if class_name not in classes:
        return model
    model.defined = True
    seen: set[str] = set()
    queue = [class_name]  # the class, then its bases depth first: the order Python looks names up in, near enough
    while queue:
        name = queue.pop(0)
        if name in seen:
            continue
        seen.add(name)
        node = classes[name]
        for item in node.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                if item.name not in model.methods and item.name not in model.constants:
                    model.methods[item.name] = signature_of(item, name)
                if item.name == "__getattr__":
                    model.open = True
            elif isinstance(item, ast.Assign):
                for target in item.targets:
                    if isinstance(target, ast.Name) and target.id not in model.methods:
                        model.constants.setdefault(target.id, _literal_type(item.value))
            elif isinstance(item, ast.AnnAssign) and item.value is not None and isinstance(item.target, ast.Name):
                model.constants.setdefault(item.target.id, _literal_type(item.value))
            elif isinstance(item, ast.ClassDef):
                model.constants.setdefault(item.name, None)
        bases = [b.id if isinstance(b, ast.Name) else "" for b in node.bases]
        model.open = model.open or any(b not in classes and b != "object" for b in bases)
        queue.extend(b for b in bases if b in classes)
    return model


# ---------------------------------------------------------------- Python's word on a call by keywords


def _names(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def call_error(signature: Signature, arguments: dict[Any, Any]) -> str | None:
    """The TypeError message CPython 3.11 raises for `method(**arguments)`, or None when the call binds.
    Its order: each keyword in turn (a positional-only name among them, else the first unknown one), then
    the missing positional parameters, then the missing keyword-only ones."""
    if any(not isinstance(k, str) for k in arguments):
        return "keywords must be strings"
    by_keyword = {n for n, _ in signature.positional} | {n for n, _ in signature.keyword_only}
    positional_only = [n for n, _ in signature.positional_only]
    if signature.bound_positional_only:
        positional_only.insert(0, signature.bound)
    elif signature.bound:
        by_keyword.add(signature.bound)
    for key in arguments:
        if signature.bound and key == signature.bound and not signature.bound_positional_only:
            return f"{signature.qualname}() got multiple values for argument '{key}'"  # self is already bound
        if key in by_keyword or signature.var_keyword:
            continue
        passed = [n for n in positional_only if n in arguments]
        if passed:
            return (f"{signature.qualname}() got some positional-only arguments passed as keyword arguments: "
                    f"'{', '.join(passed)}'")
        return f"{signature.qualname}() got an unexpected keyword argument '{key}'"
    missing = [n for n, d in signature.positional_only if not d] + \
        [n for n, d in signature.positional if not d and n not in arguments]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        return f"{signature.qualname}() missing {len(missing)} required positional argument{plural}: {_names(missing)}"
    missing = [n for n, d in signature.keyword_only if not d and n not in arguments]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        return (f"{signature.qualname}() missing {len(missing)} required keyword-only argument{plural}: "
                f"{_names(missing)}")
    return None


# ---------------------------------------------------------------- what hasattr(instance, name) would say

# What every instance has, whatever its class defines.
OBJECT_NAMES = frozenset({*dir(object), "__dict__", "__module__", "__weakref__"})

Resolution = tuple[Literal["missing", "uncallable", "unreachable"], str]


def value_type(value: Any) -> str | None:
    """The Python type's name of a value of the state, from its canonical JSON (envscaler/runtime/sandbox/codec.py);
    None for an object whose type the encoding only names (it may be callable)."""
    if isinstance(value, dict):
        if "$int" in value:
            return "int"
        if "$bytes" in value:
            return "bytes"
        if "__type__" in value:
            return None
        return "dict"
    if isinstance(value, list):
        return "list"  # a tuple or a set encodes as a list too
    return type(value).__name__


def resolve(name: str, model: ClassModel, state: dict[str, Any] | None) -> Resolution:
    """For a name the pool serves no tool by: would EnvScaler's hasattr find it, and what would calling it do?
    `missing`: no such attribute (EnvScaler says "Invalid action"); `uncallable`: a value whose type is the text
    (calling it raises "'T' object is not callable"); `unreachable`: a private or dunder method, or a value
    of unknown type, that EnvScaler would call and the sandbox does not serve (see docs/envscaler_gem.md)."""
    if state is not None and name in state:
        kind = value_type(state[name])
        return ("uncallable", kind) if kind else ("unreachable", f"{name!r} is an attribute of unknown type")
    if name in model.methods:
        return "unreachable", f"{name!r} is a method the sandbox does not serve as a tool"
    if name in model.constants:
        kind = model.constants[name]
        return ("uncallable", kind) if kind else ("unreachable", f"{name!r} is a class attribute of unknown type")
    if name in OBJECT_NAMES or model.open:
        return "unreachable", f"{name!r} may exist on the instance, but is no tool"
    return "missing", ""


def exception_observation(last_line: str, where: str) -> str:
    """The text of EnvScaler's exception observation for a failure inside the sandbox: a traceback's shape whose
    last line is the exception's ("KeyError: 'b9'"); the frames stay in the sandbox."""
    return (f"{EXCEPTION_PREFIX}Traceback (most recent call last):\n"
            f'  File "<envscaler-runtime sandbox>", in {where}\n{last_line}\n')


def last_line(observation: str) -> str:
    """An exception observation's last line: what the drop-in and EnvScaler share (tests compare on it)."""
    lines = observation.rstrip("\n").splitlines()
    return lines[-1] if lines else ""
