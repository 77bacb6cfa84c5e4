"""What makes a CallTool request well-formed: one check, made by whoever receives the call (the server, or the
episode's worker on its episode channel), so a caller gets the same named error by either path."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from envscaler.runtime.messages import WorkerKind


def parse_json(text: str, what: str) -> Any:
    """JSON from a client, as the worker will see it: a lone surrogate (not UTF-8) or an integer past Python's
    digit limit is the caller's error, named, never an exception in the server."""
    try:
        value = json.loads(text)
        if "\\u" in text:  # only an escape can make a lone surrogate (the text itself is UTF-8)
            json.dumps(value, ensure_ascii=False).encode()
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None
    except UnicodeEncodeError:
        raise ValueError(f"{what} holds a string that is not valid Unicode (a lone surrogate escape)") from None
    except ValueError as exc:  # int digits limit
        raise ValueError(f"{what} holds a number out of range: {str(exc)[:120]}") from None
    return value


def call_arguments(name: str, arguments_json: str, tools: Collection[str],
                   max_argument_bytes: int) -> dict[str, Any] | tuple[WorkerKind, str]:
    """A call's arguments as an object, or the kind and message of what is wrong with the call."""
    if len(arguments_json) > max_argument_bytes:
        return "ARGUMENTS_TOO_LARGE", (f"arguments of {name!r} are {len(arguments_json)} bytes, over the "
                                       f"{max_argument_bytes}-byte cap")
    if name not in tools:
        private = " (private methods are not tools)" if name.startswith("_") else ""
        return "UNKNOWN_TOOL", f"unknown tool {name[:80]!r}{private}; available: {', '.join(sorted(tools))}"
    if not arguments_json.strip():
        return {}
    try:
        arguments = parse_json(arguments_json, f"arguments of {name!r}")
    except ValueError as exc:
        return "INVALID_ARGUMENTS", str(exc)
    if not isinstance(arguments, dict):
        return "INVALID_ARGUMENTS", f"arguments of {name!r} must be a JSON object, got {type(arguments).__name__}"
    return arguments
