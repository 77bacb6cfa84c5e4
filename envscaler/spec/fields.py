"""Which fields a record may have, and a "did you mean" for one it may not.

A misspelt field (`checklist_with_funcs`, `init`) would otherwise be kept as an extra and the real one left at its
default: a scenario without checks, an environment started empty. So an unknown field is an error, with the
closest known name. EnvScaler's own fields stay accepted, its analysis by-products included
(../shared/reference/envscaler.md), and so does any field starting with `x_`: a place for the author's own notes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

OWN_PREFIX = "x_"  # the author's own fields: kept, never called unknown


def _normal(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(" ", "")


def suggestion(name: str, known: Iterable[str], aliases: Mapping[str, str] | None = None) -> str | None:
    """The known name `name` most likely meant, or None."""
    names = sorted(set(known))
    if aliases and (hit := aliases.get(name.lower())) in names:
        return hit
    normal = {_normal(k): k for k in names}
    if _normal(name) in normal:  # case, dashes or underscores
        return normal[_normal(name)]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return close[0]
    if len(name) >= 3:  # a truncated name: `init` for init_config
        longer = [k for k in names if k.lower().startswith(name.lower())]
        if longer:
            return min(longer, key=len)
    return None


def did_you_mean(name: str, known: Iterable[str], aliases: Mapping[str, str] | None = None) -> str:
    """`; did you mean 'x'?`, or the known names when none is close."""
    names = sorted(set(known))
    hit = suggestion(name, names, aliases)
    return f"; did you mean {hit!r}?" if hit else f" (known: {', '.join(names)})"


def unknown_fields(data: Mapping[str, Any], known: Iterable[str], aliases: Mapping[str, str] | None = None,
                   prefix: str = "") -> list[tuple[str, str]]:
    """(field path, message) for every key of `data` that is neither known nor the author's own."""
    names = set(known)
    return [(f"{prefix}{key}", f"unknown field {key!r}{did_you_mean(str(key), names, aliases)}")
            for key in data if key not in names and not str(key).startswith(OWN_PREFIX)]
