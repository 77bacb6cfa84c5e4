"""Run a recorded solution (JSONL of {"name", "arguments"}) against a fresh episode."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from envscaler.client.env_client import EnvMethods
from envscaler.client.models import Evaluation, ToolResult


class ToolCall(BaseModel):
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class ReplayReport(BaseModel):
    env_id: str
    scenario_id: str
    initial_sha256: str
    steps: list[ToolResult]
    final_sha256: str = ""  # empty when a step broke the episode
    evaluation: Evaluation | None = None


class CallsFileError(ValueError):
    """A calls file that cannot be replayed; the message names the line."""


def read_calls(path: Path) -> list[ToolCall]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CallsFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    calls = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            calls.append(ToolCall.model_validate(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise CallsFileError(f"{path.name}:{number}: invalid JSON: {exc.msg} at column {exc.colno}") from None
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "record"
            raise CallsFileError(f"{path.name}:{number}: {field}: {err['msg']}") from None
    return calls


def unserved_calls(tools: list[dict[str, Any]], calls: list[ToolCall]) -> list[str]:
    """One line per call naming a tool the environment does not serve (a typo guard: such calls are still
    replayed, and answered in band with UNKNOWN_TOOL, as EnvScaler replays an LLM's recorded calls)."""
    served = {t.get("function", {}).get("name") for t in tools}
    return [f"call {number}: no tool named {call.name[:80]!r} (served: {', '.join(sorted(n for n in served if n))}); "
            "replayed all the same, answered in band" for number, call in enumerate(calls, start=1)
            if call.name not in served]


def replay(client: EnvMethods, scenario_id: str, calls: list[ToolCall],
           warn: Callable[[str], None] = lambda _: None) -> ReplayReport:
    info = client.describe()
    for line in unserved_calls(info.tools, calls):
        warn(line)
    reset = client.reset(scenario_id)
    report = ReplayReport(env_id=info.env_id, scenario_id=scenario_id, initial_sha256=reset.state_sha256, steps=[])
    for call in calls:
        step = client.call(call.name, call.arguments)
        report.steps.append(step)
        if step.episode_broken:
            return report
    report.final_sha256 = client.state().sha256
    report.evaluation = client.evaluate()
    return report
