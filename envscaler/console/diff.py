"""What a tool call changed: the difference of two state snapshots, as rows a table shows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

Change = Literal["added", "removed", "changed"]
MISSING: Any = object()


@dataclass(frozen=True)
class DiffRow:
    path: str  # e.g. inventory["SKU-1"].quantity or loans[2]
    change: Change
    before: str  # compact JSON; "" when added
    after: str  # compact JSON; "" when removed


def _key(path: str, key: str) -> str:
    plain = key.isidentifier()
    return f"{path}.{key}" if plain and path else key if plain else f"{path}[{json.dumps(key)}]"


def _shown(value: Any) -> str:
    return "" if value is MISSING else json.dumps(value, ensure_ascii=False, sort_keys=False)


def state_diff(before: Any, after: Any, path: str = "") -> list[DiffRow]:
    """Leaves that differ, in the state's own order: dicts by key, lists by index (appended items are `added`),
    a record or list added or removed whole as one row per field or item; a value whose type changed is one
    `changed` row."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        rows: list[DiffRow] = []
        for key in [*before, *(k for k in after if k not in before)]:
            rows += state_diff(before.get(key, MISSING), after.get(key, MISSING), _key(path, str(key)))
        return rows
    if isinstance(before, list) and isinstance(after, list):
        rows = []
        for i in range(max(len(before), len(after))):
            rows += state_diff(before[i] if i < len(before) else MISSING, after[i] if i < len(after) else MISSING,
                               f"{path}[{i}]")
        return rows
    if before is MISSING and after:  # a new record or list: one row per field or item
        if isinstance(after, dict):
            return [row for key, value in after.items() for row in state_diff(MISSING, value, _key(path, str(key)))]
        if isinstance(after, list):
            return [row for i, value in enumerate(after) for row in state_diff(MISSING, value, f"{path}[{i}]")]
    if after is MISSING and before:
        if isinstance(before, dict):
            return [row for key, value in before.items() for row in state_diff(value, MISSING, _key(path, str(key)))]
        if isinstance(before, list):
            return [row for i, value in enumerate(before) for row in state_diff(value, MISSING, f"{path}[{i}]")]
    change: Change = "added" if before is MISSING else "removed" if after is MISSING else "changed"
    return [DiffRow(path=path or "(state)", change=change, before=_shown(before), after=_shown(after))]


def state_rows(state: Any) -> list[DiffRow]:
    """The whole state as path/value rows (every leaf, as if added to an empty state)."""
    return state_diff({}, state) if isinstance(state, dict) else [DiffRow("(state)", "added", "", _shown(state))]
