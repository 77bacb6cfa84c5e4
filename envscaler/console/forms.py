"""Tool forms from JSON schemas, and form values back to validated arguments.

Pure functions: a tool's `parameters` schema becomes a list of `Field`s a template renders; the posted
values become the call's arguments, or errors that name the field and what is wrong with it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonschema

Widget = Literal["text", "integer", "number", "boolean", "select", "lines", "json"]


@dataclass(frozen=True)
class Field:
    name: str
    widget: Widget
    required: bool
    nullable: bool = False
    description: str = ""
    type_label: str = ""  # what the schema says, shown next to the field
    options: tuple[str, ...] = ()  # select: the enum's values
    default: str = ""  # the schema's default, as the input shows it
    schema: dict[str, Any] = field(default_factory=dict)  # the property's schema, nullability removed


def _non_null(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The schema without its `null` alternative (`["string", "null"]`, `anyOf: [..., {"type": "null"}]`) and
    whether it had one: the form shows the value's own widget, and an empty optional input means null."""
    kind = schema.get("type")
    if isinstance(kind, list) and "null" in kind:
        rest = [k for k in kind if k != "null"]
        return {**schema, "type": rest[0] if len(rest) == 1 else rest}, True
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and any(isinstance(o, dict) and o.get("type") == "null" for o in options):
            rest = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            if len(rest) == 1 and isinstance(rest[0], dict):
                merged = {k: v for k, v in schema.items() if k != key}
                return {**rest[0], **merged}, True
    return schema, kind == "null"


def _widget(schema: dict[str, Any]) -> Widget:
    if isinstance(schema.get("enum"), list) and all(isinstance(v, str) for v in schema["enum"]):
        return "select"
    kind = schema.get("type")
    if kind == "string":
        return "text"
    if kind in ("integer", "number", "boolean"):
        return kind
    if kind == "array" and isinstance(schema.get("items"), dict) and schema["items"].get("type") == "string":
        return "lines"
    return "json"  # objects, arrays of objects, unions: typed as JSON


def _type_label(schema: dict[str, Any], nullable: bool) -> str:
    kind = schema.get("type", "any")
    label = " | ".join(kind) if isinstance(kind, list) else str(kind)
    items = schema.get("items")
    if kind == "array" and isinstance(items, dict) and "type" in items:
        label = f"array of {items['type']}"
    return f"{label} or null" if nullable else label


def _shown(value: Any, widget: Widget) -> str:
    if value is None:
        return ""
    if widget == "lines" and isinstance(value, list):
        return "\n".join(map(str, value))
    if widget == "json":
        return json.dumps(value)
    if widget == "boolean":
        return "true" if value else "false"
    return str(value)


def form_fields(parameters: dict[str, Any] | None) -> list[Field]:
    """One field per property of a tool's parameters schema, required ones first (in schema order)."""
    if not isinstance(parameters, dict):
        return []
    properties = parameters.get("properties")
    if not isinstance(properties, dict):
        return []
    required = set(parameters.get("required") or [])
    fields = []
    for name, raw in properties.items():
        schema, nullable = _non_null(raw if isinstance(raw, dict) else {})
        widget = _widget(schema)
        fields.append(Field(name=name, widget=widget, required=name in required, nullable=nullable,
                            description=str(schema.get("description", "")), type_label=_type_label(schema, nullable),
                            options=tuple(schema.get("enum") or ()) if widget == "select" else (),
                            default=_shown(schema.get("default"), widget), schema=schema))
    return sorted(fields, key=lambda f: not f.required)


def _number(text: str, integer: bool) -> int | float:
    if integer:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected a whole number, got {text!r}") from None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {text!r}")
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _parse(f: Field, text: str) -> Any:
    if f.widget in ("text", "select"):
        return text
    if f.widget in ("integer", "number"):
        return _number(text.strip(), f.widget == "integer")
    if f.widget == "boolean":
        if text not in ("true", "false"):
            raise ValueError(f"expected true or false, got {text!r}")
        return text == "true"
    if f.widget == "lines":
        return [line.strip() for line in text.splitlines() if line.strip()]
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _where(error: jsonschema.ValidationError) -> str:
    path = list(error.absolute_path)
    return str(path[0]) if path else ""


def arguments_from_form(parameters: dict[str, Any] | None, values: dict[str, str]
                        ) -> tuple[dict[str, Any], dict[str, str]]:
    """The call's arguments from posted form values, and errors by field name ("" for the whole call).

    An empty input leaves an optional parameter out (the tool's own default applies); a required one must be
    filled, except a text field, where the empty string is a value. Each value is then validated against its
    property's schema (type, range, choice), so a typo is named here instead of failing inside the sandbox."""
    arguments: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in form_fields(parameters):
        text = values.get(f.name, "")
        if text == "" and f.widget != "text":
            if f.required and not f.nullable:
                errors[f.name] = "required"
            elif f.required:
                arguments[f.name] = None
            continue
        if text == "" and not f.required:
            continue
        try:
            arguments[f.name] = _parse(f, text)
        except ValueError as exc:
            errors[f.name] = str(exc)
    if errors or not isinstance(parameters, dict):
        return arguments, errors
    try:
        found = sorted(jsonschema.Draft202012Validator(parameters).iter_errors(arguments),
                       key=lambda e: [str(p) for p in e.absolute_path])
    except (jsonschema.SchemaError, TypeError, ValueError):  # a synthesized schema that is itself broken:
        return arguments, errors  # the sandbox's server validates the call and names the problem
    for error in found:
        # Only what the form itself shows: a value's own type, range or choice. Inside nested values the derived
        # schema can be stricter than the code (a TypedDict field the tool fills in itself), so those are left
        # to the tool, as in training, where the sandbox never checks arguments against the schema either.
        if len(error.absolute_path) <= 1:
            errors.setdefault(_where(error), error.message)
    return arguments, errors
