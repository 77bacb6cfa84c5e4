"""OpenEnv's wire shapes, as openenv-core 0.3's server writes them and its clients read them: the errors, the
actions of its tool-environment convention (list_tools / call_tool, plus final_answer, which ends the episode),
the reset arguments and the observations. Pure functions: parsing in, JSON-ready dicts out.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from envscaler.client.models import ToolResult

# ---------------------------------------------------------------- errors


class OpenEnvError(Exception):
    """A refusal the client sees as OpenEnv's error frame `{"type": "error", "data": {"message", "code"}}` (one line)
    or, over HTTP, as FastAPI's `{"detail": message}` with `status`. One subclass per code."""

    code = "EXECUTION_ERROR"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def frame(self) -> dict[str, Any]:
        return {"type": "error", "data": {"message": self.message, "code": self.code}}


class InvalidJson(OpenEnvError):
    code, status = "INVALID_JSON", 400


class UnknownType(OpenEnvError):
    code, status = "UNKNOWN_TYPE", 400


class Invalid(OpenEnvError):
    """The message, the action or the reset arguments do not fit (OpenEnv's VALIDATION_ERROR)."""

    code, status = "VALIDATION_ERROR", 422


class Refused(OpenEnvError):
    """A well-formed step the session cannot take now (no episode yet, the episode is over), or a pool refusal."""

    code, status = "EXECUTION_ERROR", 409


class PoolFailed(OpenEnvError):
    """The pool could not do it (unreachable, an environment failing to start): not the caller's doing."""

    code, status = "EXECUTION_ERROR", 502


class AtCapacity(OpenEnvError):
    code, status = "CAPACITY_REACHED", 503


class SessionFailed(OpenEnvError):
    """The session cannot go on as it was (its lease is gone, the environment is unknown)."""

    code, status = "SESSION_ERROR", 404


def _first_error(where: str, exc: ValidationError) -> str:
    """Pydantic's first complaint as one line: `action.tool_name: Field required`."""
    error = exc.errors()[0]
    loc = ".".join(str(part) for part in (where, *error["loc"]))
    return f"{loc}: {error['msg']}"


# ---------------------------------------------------------------- actions


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # OpenEnv's Action forbids unknown fields too


class ListTools(_Model):
    type: Literal["list_tools"] = "list_tools"
    metadata: dict[str, Any] = Field(default_factory=dict)


class CallTool(_Model):
    type: Literal["call_tool"] = "call_tool"
    tool_name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class FinalAnswer(_Model):
    """The agent's last word: ends the episode; the scenario's checks run in the sandbox and give the reward."""

    type: Literal["final_answer"] = "final_answer"
    answer: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


Action = ListTools | CallTool | FinalAnswer
ACTIONS: dict[str, type[ListTools] | type[CallTool] | type[FinalAnswer]] = {
    "list_tools": ListTools, "call_tool": CallTool, "final_answer": FinalAnswer}


def parse_action(data: Any) -> Action:
    """An action dict as the client sent it; Invalid naming what is wrong and where."""
    if not isinstance(data, dict):
        raise Invalid(f"action: expected a JSON object, not {type(data).__name__}")
    # OpenEnv's CallToolAction defaults its type, so a bare {"tool_name": ...} is a call there and here.
    kind = data.get("type", "call_tool" if "tool_name" in data else None)
    if kind is None:
        raise Invalid(f"action: no type; expected one of {', '.join(ACTIONS)}")
    model = ACTIONS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise Invalid(f"action.type: {str(kind)[:64]!r} is not an action here; expected one of {', '.join(ACTIONS)}")
    try:
        return model.model_validate({**data, "type": kind})
    except ValidationError as exc:
        raise Invalid(_first_error("action", exc)) from None


class ResetArgs(_Model):
    """reset(**kwargs): `scenario` picks the scenario (a random one without it, drawn with `seed`). Unknown
    arguments are refused rather than dropped, so that a misspelt `scenario` does not become a random one."""

    scenario: str | None = Field(default=None, min_length=1)
    seed: int | None = Field(default=None, ge=0, lt=2**63)
    episode_id: str | None = Field(default=None, max_length=255)


def parse_reset(data: Any) -> ResetArgs:
    if not isinstance(data, dict):
        raise Invalid(f"reset: expected a JSON object of arguments, not {type(data).__name__}")
    if unknown := sorted(set(data) - set(ResetArgs.model_fields)):
        raise Invalid(f"reset: unknown argument(s) {unknown}; reset takes scenario, seed and episode_id")
    try:
        return ResetArgs.model_validate(data)
    except ValidationError as exc:
        raise Invalid(_first_error("reset", exc)) from None


# ---------------------------------------------------------------- WebSocket messages

MESSAGE_FIELDS = {"reset": {"type", "data"}, "step": {"type", "data"}, "state": {"type"}, "close": {"type"},
                  "mcp": {"type", "data"}}


def parse_message(raw: str | bytes) -> tuple[str, Any]:
    """(type, data) of one WebSocket frame; InvalidJson, UnknownType or Invalid as OpenEnv's server answers."""
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"Invalid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise Invalid(f"message: expected a JSON object, not {type(message).__name__}")
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in MESSAGE_FIELDS:
        raise UnknownType(f"Unknown message type: {str(kind)[:64]}; expected one of {', '.join(MESSAGE_FIELDS)}")
    if extra := sorted(set(message) - MESSAGE_FIELDS[kind]):
        raise Invalid(f"message: {kind} takes no field(s) {extra}")
    if kind in ("step", "mcp") and "data" not in message:
        raise Invalid(f"message.data: {kind} needs data (the {'action' if kind == 'step' else 'JSON-RPC request'})")
    return kind, message.get("data", {})


# ---------------------------------------------------------------- observations
# The `data` of an observation frame, and the body of HTTP /reset and /step: {"observation", "reward", "done"}.


def result(observation: dict[str, Any], reward: float | None = None, done: bool = False) -> dict[str, Any]:
    return {"observation": observation, "reward": reward, "done": done}


def tool_spec(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """One tool as OpenEnv's ListToolsObservation lists it (MCP's Tool: the schema under input_schema)."""
    return {"name": name, "description": description, "input_schema": parameters}


# ToolError.error_type of OpenEnv for our error kinds; the rest are execution errors.
ERROR_TYPES = {"UNKNOWN_TOOL": "tool_not_found", "INVALID_ARGUMENTS": "invalid_args",
               "ARGUMENTS_TOO_LARGE": "invalid_args", "DEADLINE_EXCEEDED": "timeout"}


def call_observation(name: str, outcome: ToolResult) -> dict[str, Any]:
    """OpenEnv's CallToolObservation: a result in the shape of FastMCP's CallToolResult (its clients read `data`),
    or a ToolError whose message begins with our error kind."""
    if not outcome.ok:
        return {"tool_name": name, "result": None,
                "error": {"error_type": ERROR_TYPES.get(outcome.error_kind, "execution_error"),
                          "message": f"{outcome.error_kind}: {outcome.error_message}"}}
    structured = outcome.result if isinstance(outcome.result, dict) else {"result": outcome.result}
    return {"tool_name": name, "error": None,
            "result": {"content": [{"type": "text", "text": outcome.observation}], "structured_content": structured,
                       "data": outcome.result, "is_error": False}}
