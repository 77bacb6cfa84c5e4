"""Trajectory records in EnvScaler's own layout, plus timings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, Field

# Error kinds that are the infrastructure's fault, not the agent's: such a record is retried on resume.
INFRASTRUCTURE = frozenset({"llm_error", "env_error"})
TOOL_ERROR_PREFIX = "tool "  # a failed tool call's kind in "errors by kind": "tool UNKNOWN_TOOL"


def error_counts(error_kind: str, step_kinds: Iterable[str]) -> Counter[str]:
    """One record's "errors by kind": how its episode ended (deadline, max_steps, ...), when not at its end, and
    each failed tool call by its kind (the agent saw them; the episode went on)."""
    counts = Counter(TOOL_ERROR_PREFIX + kind for kind in step_kinds if kind)
    if error_kind:
        counts[error_kind] += 1
    return counts


class Action(BaseModel):
    name: str
    arguments: Any  # the parsed object, or the raw text when it was not valid JSON


class Observation(BaseModel):
    type: Literal["tool", "user"]
    content: str


class Step(BaseModel):
    step: int
    action: Action
    observation: Observation
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    error_kind: str = ""
    env_seconds: float = 0.0
    llm_seconds: float = 0.0


class TaskInfo(BaseModel):
    env_id: str
    task_id: str
    task: str


class Timings(BaseModel):
    llm_seconds: float = 0.0
    env_seconds: float = 0.0  # inside the sandbox: tool calls as the environment's server timed them
    env_wall_seconds: float = 0.0  # the client's round trips to the sandbox, evaluation included
    total_seconds: float = 0.0


class TrajectoryRecord(BaseModel):
    task_info: TaskInfo
    tools: list[dict[str, Any]]
    tool_schemas: str = ""  # how `tools` was made: "derived" or "record" (the served environment says)
    messages: list[dict[str, Any]]
    user_messages: list[dict[str, Any]] = Field(default_factory=list)
    trajectory: list[Step] = Field(default_factory=list)
    total_reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    final_observation: str = ""
    final_info: dict[str, Any] = Field(default_factory=dict)
    steps: int = 0
    timings: Timings = Field(default_factory=Timings)
    mode: Literal["non-conv", "conv"] = "non-conv"
    model: str = ""
    # llm_error and env_error (infrastructure: never written to the trajectories), deadline, max_steps,
    # empty_replies, episode_broken (a tool ended its worker); empty when the episode ran to its end
    error_kind: str = ""
    sample_index: int = 0  # which of a scenario's --samples this is (GRPO-style groups)

    @property
    def key(self) -> tuple[str, str, int]:
        return self.task_info.env_id, self.task_info.task_id, self.sample_index
