"""Trajectory files as the rollouts page reads them: the report (envscaler/rollout/report.py), a list with filters, one
record at a time for the viewer. Files are read again on each request, so a running rollout shows up."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envscaler.rollout.report import Report, build_report
from envscaler.rollout.runner import read_records


@dataclass(frozen=True)
class Filters:
    env: str = ""
    min_reward: float | None = None
    max_reward: float | None = None
    error_kind: str = ""  # "none" for episodes that ran to their end

    @classmethod
    def from_query(cls, query: Any) -> tuple[Filters, list[str]]:
        problems = []

        def number(name: str) -> float | None:
            text = (query.get(name) or "").strip()
            if not text:
                return None
            try:
                return float(text)
            except ValueError:
                problems.append(f"{name}: expected a number, got {text!r}")
                return None

        return cls(env=query.get("env", "").strip(), min_reward=number("min_reward"),
                   max_reward=number("max_reward"), error_kind=query.get("error_kind", "").strip()), problems

    def keep(self, record: dict[str, Any]) -> bool:
        reward = float(record.get("total_reward", 0.0))
        kind = record.get("error_kind") or ""
        return ((not self.env or record.get("task_info", {}).get("env_id") == self.env)
                and (self.min_reward is None or reward >= self.min_reward)
                and (self.max_reward is None or reward <= self.max_reward)
                and (not self.error_kind or kind == self.error_kind or (self.error_kind == "none" and not kind)))


@dataclass
class Rollouts:
    files: list[Path]

    def records(self) -> list[dict[str, Any]]:
        return [r for path in self.files for r in read_records(path) if isinstance(r, dict)]

    def report(self) -> Report:
        return build_report(self.files)

    def record(self, index: int) -> dict[str, Any] | None:
        records = self.records()
        return records[index] if 0 <= index < len(records) else None


def checks_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The final evaluation's per-check results, if the episode got that far."""
    evaluation = (record.get("final_info") or {}).get("evaluation") or {}
    return [c for c in evaluation.get("checks") or [] if isinstance(c, dict)]


def shown_arguments(arguments: Any) -> list[tuple[str, str]]:
    """A tool call's arguments as name/value rows (values as compact JSON); raw text stays one row."""
    if isinstance(arguments, dict):
        return [(str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)) for k, v in arguments.items()]
    return [("(raw)", arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False))]


def message_calls(message: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """An assistant message's tool calls as (name, argument rows); arguments arrive as JSON text."""
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {} if isinstance(call, dict) else {}
        text = function.get("arguments", "")
        try:
            parsed = json.loads(text) if isinstance(text, str) else text
        except json.JSONDecodeError:
            parsed = text
        calls.append((str(function.get("name", "?")), shown_arguments(parsed)))
    return calls
