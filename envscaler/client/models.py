"""Typed results at the client's edge, converted from the wire messages."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel

from envscaler.v1 import env_pb2 as pb


class EnvInfo(BaseModel):
    env_id: str
    env_class_name: str
    spec_hash: str
    environment_summary: str
    environment_introduction: str
    constraints_rules: list[str]
    tools: list[dict[str, Any]]  # OpenAI format
    scenario_ids: list[str]
    observation_format: str
    # The sandbox's fences as the server reports them: server_uid, sandbox_uid, landlock_abi, server_non_dumpable,
    # client_checks (see proto Isolation).
    isolation: dict[str, Any] = {}
    tool_schemas: str = ""  # "derived" or "record" (empty from an older server)

    @classmethod
    def from_pb(cls, m: pb.DescribeResponse) -> EnvInfo:
        tools = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                   "parameters": json.loads(t.parameters_json or "{}")}}
                 for t in m.tools]
        return cls(env_id=m.env_id, env_class_name=m.env_class_name, spec_hash=m.spec_hash,
                   environment_summary=m.environment_summary, environment_introduction=m.environment_introduction,
                   constraints_rules=list(m.constraints_rules), tools=tools, scenario_ids=list(m.scenario_ids),
                   observation_format=m.observation_format,
                   isolation={"server_uid": m.isolation.server_uid, "sandbox_uid": m.isolation.sandbox_uid,
                              "landlock_abi": m.isolation.landlock_abi,
                              "server_non_dumpable": m.isolation.server_non_dumpable,
                              "client_checks": m.isolation.client_checks},
                   tool_schemas=m.tool_schemas)


def _error(m: Any, field: str) -> tuple[str, str]:
    """(ErrorKind name, message) of an optional ToolError field; empty when unset."""
    if not m.HasField(field) or getattr(m, field).kind == pb.ERROR_KIND_UNSPECIFIED:
        return "", ""
    error = getattr(m, field)
    return pb.ErrorKind.Name(error.kind), error.message


class ResetResult(BaseModel):
    episode_id: str
    scenario_id: str
    task: str
    state: dict[str, Any] | None  # None when the state has no canonical JSON (see state_error_kind)
    state_sha256: str
    state_error_kind: str = ""  # UNSERIALIZABLE_STATE when set: the episode runs all the same
    state_error_message: str = ""

    @classmethod
    def from_pb(cls, m: pb.ResetResponse) -> ResetResult:
        kind, message = _error(m, "state_error")
        return cls(episode_id=m.episode_id, scenario_id=m.scenario_id, task=m.task,
                   state=json.loads(m.state_json) if m.state_json else None, state_sha256=m.state_sha256,
                   state_error_kind=kind, state_error_message=message)


class ToolResult(BaseModel):
    name: str
    result: Any = None
    observation: str
    error_kind: str = ""  # an ErrorKind name; empty on success
    error_message: str = ""
    episode_broken: bool = False
    duration_us: int = 0

    @property
    def ok(self) -> bool:
        return not self.error_kind

    @classmethod
    def from_pb(cls, name: str, m: pb.CallToolResponse) -> ToolResult:
        failed = m.HasField("error") and m.error.kind != pb.ERROR_KIND_UNSPECIFIED
        return cls(name=name, result=json.loads(m.result_json) if m.result_json else None,
                   observation=m.observation, error_kind=pb.ErrorKind.Name(m.error.kind) if failed else "",
                   error_message=m.error.message if failed else "", episode_broken=m.episode_broken,
                   duration_us=m.duration_us)


class StateSnapshot(BaseModel):
    state: dict[str, Any] | None  # None when the state has no canonical JSON (see error_kind)
    sha256: str
    error_kind: str = ""  # UNSERIALIZABLE_STATE when set: the episode goes on
    error_message: str = ""

    @classmethod
    def from_pb(cls, m: pb.GetStateResponse) -> StateSnapshot:
        kind, message = _error(m, "error")
        return cls(state=json.loads(m.state_json) if m.state_json else None, sha256=m.sha256,
                   error_kind=kind, error_message=message)


Outcome = Literal["PASS", "FAIL", "ERROR"]
_OUTCOMES: dict[int, Outcome] = {pb.PASS: "PASS", pb.FAIL: "FAIL", pb.ERROR: "ERROR"}


def _outcome(value: int) -> Outcome:
    return _OUTCOMES.get(value, "ERROR")  # unspecified (an older server): no verdict, so not a pass


class CheckResult(BaseModel):
    index: int
    check_item: str
    outcome: Outcome
    message: str


class Evaluation(BaseModel):
    scenario_id: str
    reward: float
    passed: int
    total: int
    checks: list[CheckResult]
    message: str = ""

    @classmethod
    def from_pb(cls, m: pb.EvaluateResponse) -> Evaluation:
        checks = [CheckResult(index=c.index, check_item=c.check_item, message=c.message,
                              outcome=_outcome(c.outcome))
                  for c in m.checks]
        return cls(scenario_id=m.scenario_id, reward=m.reward, passed=m.passed, total=m.total, checks=checks,
                   message=m.message)
