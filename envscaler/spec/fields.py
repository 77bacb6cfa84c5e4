"""Which fields a record may have, and a "did you mean" for one it may not.

A misspelt field (`checks`, `init_configs`) would otherwise be kept as an extra and the real one left at its
default: a scenario without checks, an environment started empty. So a field that is most likely a misspelling of
one the record lacks is an error naming the field it meant; any other unknown field is a warning (it is kept, and
nothing reads it). EnvScaler's own fields stay accepted, its pipeline's by-products included
(../shared/reference/envscaler.md), and so does any field starting with `x_`: a place for the author's own notes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

OWN_PREFIX = "x_"  # the author's own fields: kept, never called unknown
LIKELY = 0.8  # difflib ratio from which a name is taken for a misspelling (init_confg, checklist_with_funcs)
CLOSE = 0.6  # ratio from which a name is only suggested


def _normal(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(" ", "")


def misspelling_of(name: str, known: Iterable[str], aliases: Mapping[str, str] | None = None) -> str | None:
    """The known name `name` is most likely a misspelling of: a name people write for it (`checks`), the same name
    up to case, dashes, underscores or a plural `s`, or one a letter or two away. None when it is not that close."""
    names = sorted(set(known))
    if aliases and (hit := aliases.get(name.lower())) in names:
        return hit
    normal = {_normal(k): k for k in names}
    for form in (_normal(name), _normal(name).removesuffix("s")):
        if form in normal:
            return normal[form]
    close = difflib.get_close_matches(name, names, n=1, cutoff=LIKELY)
    return close[0] if close else None


def suggestion(name: str, known: Iterable[str], aliases: Mapping[str, str] | None = None) -> str | None:
    """The known name `name` most likely meant, or None: a misspelling, a name somewhat alike, or a longer name it
    starts (`init` for init_config)."""
    names = sorted(set(known))
    if hit := misspelling_of(name, names, aliases):
        return hit
    close = difflib.get_close_matches(name, names, n=1, cutoff=CLOSE)
    if close:
        return close[0]
    if len(name) >= 3:
        longer = [k for k in names if k.lower().startswith(name.lower())]
        if longer:
            return min(longer, key=len)
    tails = {k.rsplit("_", 1)[-1]: k for k in names if "_" in k}  # `sumary` for environment_summary
    close = difflib.get_close_matches(name.lower(), sorted(tails), n=1, cutoff=LIKELY)
    return tails[close[0]] if close else None


def did_you_mean(name: str, known: Iterable[str], aliases: Mapping[str, str] | None = None,
                 what: str = "known") -> str:
    """`; did you mean 'x'?`, or the known names when none is close."""
    names = sorted(set(known))
    hit = suggestion(name, names, aliases)
    return f"; did you mean {hit!r}?" if hit else f" ({what}: {', '.join(names)})"


@dataclass(frozen=True)
class FieldFinding:
    path: str  # e.g. "checklist_with_func[0].func"
    message: str
    severity: Literal["error", "warning"]
    meant: str | None = None  # the path of the field it was meant for, when that one is missing


def unknown_fields(data: Mapping[str, Any], known: Iterable[str], aliases: Mapping[str, str] | None = None,
                   prefix: str = "") -> list[FieldFinding]:
    """A finding for every key of `data` that is neither known nor the author's own: an error when it stands in
    for a known field the record lacks, else a warning."""
    names = set(known)
    findings = []
    for key in data:
        name = str(key)
        if name in names or name.startswith(OWN_PREFIX):
            continue
        meant = misspelling_of(name, names, aliases)
        if meant is not None and meant not in data:
            findings.append(FieldFinding(f"{prefix}{name}", f"unknown field {name!r}; did you mean {meant!r}? "
                                         f"(without it, {meant} is left empty)", "error", f"{prefix}{meant}"))
        elif meant is not None:
            findings.append(FieldFinding(f"{prefix}{name}", f"unknown field {name!r}, ignored (the record has "
                                         f"{meant!r} too)", "warning"))
        else:
            hit = suggestion(name, names, aliases)
            hint = f"; did you mean {hit!r}?" if hit else \
                f" (known: {', '.join(sorted(names))}; fields of your own start with {OWN_PREFIX!r})"
            findings.append(FieldFinding(f"{prefix}{name}", f"unknown field {name!r}, ignored{hint}", "warning"))
    return findings
