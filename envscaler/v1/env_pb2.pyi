from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_KIND_UNSPECIFIED: _ClassVar[ErrorKind]
    UNKNOWN_TOOL: _ClassVar[ErrorKind]
    INVALID_ARGUMENTS: _ClassVar[ErrorKind]
    TOOL_EXCEPTION: _ClassVar[ErrorKind]
    DEADLINE_EXCEEDED: _ClassVar[ErrorKind]
    WORKER_CRASHED: _ClassVar[ErrorKind]
    RESULT_TOO_LARGE: _ClassVar[ErrorKind]
    ARGUMENTS_TOO_LARGE: _ClassVar[ErrorKind]
    UNSERIALIZABLE_RESULT: _ClassVar[ErrorKind]
    PROTOCOL_ERROR: _ClassVar[ErrorKind]
    UNSERIALIZABLE_STATE: _ClassVar[ErrorKind]
    WORKER_ERROR: _ClassVar[ErrorKind]
    EPISODE_BROKEN: _ClassVar[ErrorKind]
    LOAD_FAILED: _ClassVar[ErrorKind]
    RESET_FAILED: _ClassVar[ErrorKind]

class CheckOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHECK_OUTCOME_UNSPECIFIED: _ClassVar[CheckOutcome]
    PASS: _ClassVar[CheckOutcome]
    FAIL: _ClassVar[CheckOutcome]
    ERROR: _ClassVar[CheckOutcome]
ERROR_KIND_UNSPECIFIED: ErrorKind
UNKNOWN_TOOL: ErrorKind
INVALID_ARGUMENTS: ErrorKind
TOOL_EXCEPTION: ErrorKind
DEADLINE_EXCEEDED: ErrorKind
WORKER_CRASHED: ErrorKind
RESULT_TOO_LARGE: ErrorKind
ARGUMENTS_TOO_LARGE: ErrorKind
UNSERIALIZABLE_RESULT: ErrorKind
PROTOCOL_ERROR: ErrorKind
UNSERIALIZABLE_STATE: ErrorKind
WORKER_ERROR: ErrorKind
EPISODE_BROKEN: ErrorKind
LOAD_FAILED: ErrorKind
RESET_FAILED: ErrorKind
CHECK_OUTCOME_UNSPECIFIED: CheckOutcome
PASS: CheckOutcome
FAIL: CheckOutcome
ERROR: CheckOutcome

class Tool(_message.Message):
    __slots__ = ("name", "description", "parameters_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    parameters_json: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., parameters_json: _Optional[str] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("env_id", "env_class_name", "spec_hash", "environment_summary", "environment_introduction", "constraints_rules", "tools", "scenario_ids", "observation_format", "isolation", "tool_schemas")
    ENV_ID_FIELD_NUMBER: _ClassVar[int]
    ENV_CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_HASH_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_INTRODUCTION_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_RULES_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_IDS_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_FORMAT_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    TOOL_SCHEMAS_FIELD_NUMBER: _ClassVar[int]
    env_id: str
    env_class_name: str
    spec_hash: str
    environment_summary: str
    environment_introduction: str
    constraints_rules: _containers.RepeatedScalarFieldContainer[str]
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    scenario_ids: _containers.RepeatedScalarFieldContainer[str]
    observation_format: str
    isolation: Isolation
    tool_schemas: str
    def __init__(self, env_id: _Optional[str] = ..., env_class_name: _Optional[str] = ..., spec_hash: _Optional[str] = ..., environment_summary: _Optional[str] = ..., environment_introduction: _Optional[str] = ..., constraints_rules: _Optional[_Iterable[str]] = ..., tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ..., scenario_ids: _Optional[_Iterable[str]] = ..., observation_format: _Optional[str] = ..., isolation: _Optional[_Union[Isolation, _Mapping]] = ..., tool_schemas: _Optional[str] = ...) -> None: ...

class Isolation(_message.Message):
    __slots__ = ("server_uid", "sandbox_uid", "landlock_abi", "server_non_dumpable", "client_checks")
    SERVER_UID_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_UID_FIELD_NUMBER: _ClassVar[int]
    LANDLOCK_ABI_FIELD_NUMBER: _ClassVar[int]
    SERVER_NON_DUMPABLE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_CHECKS_FIELD_NUMBER: _ClassVar[int]
    server_uid: int
    sandbox_uid: int
    landlock_abi: int
    server_non_dumpable: bool
    client_checks: bool
    def __init__(self, server_uid: _Optional[int] = ..., sandbox_uid: _Optional[int] = ..., landlock_abi: _Optional[int] = ..., server_non_dumpable: _Optional[bool] = ..., client_checks: _Optional[bool] = ...) -> None: ...

class ResetRequest(_message.Message):
    __slots__ = ("scenario_id", "init_config_json", "seed")
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    INIT_CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    scenario_id: str
    init_config_json: str
    seed: int
    def __init__(self, scenario_id: _Optional[str] = ..., init_config_json: _Optional[str] = ..., seed: _Optional[int] = ...) -> None: ...

class ResetResponse(_message.Message):
    __slots__ = ("episode_id", "scenario_id", "task", "state_json", "state_sha256", "state_error")
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    STATE_JSON_FIELD_NUMBER: _ClassVar[int]
    STATE_SHA256_FIELD_NUMBER: _ClassVar[int]
    STATE_ERROR_FIELD_NUMBER: _ClassVar[int]
    episode_id: str
    scenario_id: str
    task: str
    state_json: str
    state_sha256: str
    state_error: ToolError
    def __init__(self, episode_id: _Optional[str] = ..., scenario_id: _Optional[str] = ..., task: _Optional[str] = ..., state_json: _Optional[str] = ..., state_sha256: _Optional[str] = ..., state_error: _Optional[_Union[ToolError, _Mapping]] = ...) -> None: ...

class ToolError(_message.Message):
    __slots__ = ("kind", "message")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    kind: ErrorKind
    message: str
    def __init__(self, kind: _Optional[_Union[ErrorKind, str]] = ..., message: _Optional[str] = ...) -> None: ...

class CallToolRequest(_message.Message):
    __slots__ = ("episode_id", "name", "arguments_json", "timeout_ms")
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_JSON_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    episode_id: str
    name: str
    arguments_json: str
    timeout_ms: int
    def __init__(self, episode_id: _Optional[str] = ..., name: _Optional[str] = ..., arguments_json: _Optional[str] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class CallToolResponse(_message.Message):
    __slots__ = ("result_json", "observation", "error", "episode_broken", "duration_us")
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    EPISODE_BROKEN_FIELD_NUMBER: _ClassVar[int]
    DURATION_US_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    observation: str
    error: ToolError
    episode_broken: bool
    duration_us: int
    def __init__(self, result_json: _Optional[str] = ..., observation: _Optional[str] = ..., error: _Optional[_Union[ToolError, _Mapping]] = ..., episode_broken: _Optional[bool] = ..., duration_us: _Optional[int] = ...) -> None: ...

class GetStateRequest(_message.Message):
    __slots__ = ("episode_id",)
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    episode_id: str
    def __init__(self, episode_id: _Optional[str] = ...) -> None: ...

class GetStateResponse(_message.Message):
    __slots__ = ("state_json", "sha256", "error")
    STATE_JSON_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    state_json: str
    sha256: str
    error: ToolError
    def __init__(self, state_json: _Optional[str] = ..., sha256: _Optional[str] = ..., error: _Optional[_Union[ToolError, _Mapping]] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("episode_id", "scenario_id", "timeout_ms", "checks")
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    episode_id: str
    scenario_id: str
    timeout_ms: int
    checks: _containers.RepeatedCompositeFieldContainer[CheckFunction]
    def __init__(self, episode_id: _Optional[str] = ..., scenario_id: _Optional[str] = ..., timeout_ms: _Optional[int] = ..., checks: _Optional[_Iterable[_Union[CheckFunction, _Mapping]]] = ...) -> None: ...

class CheckFunction(_message.Message):
    __slots__ = ("check_item", "check_func")
    CHECK_ITEM_FIELD_NUMBER: _ClassVar[int]
    CHECK_FUNC_FIELD_NUMBER: _ClassVar[int]
    check_item: str
    check_func: str
    def __init__(self, check_item: _Optional[str] = ..., check_func: _Optional[str] = ...) -> None: ...

class CheckResult(_message.Message):
    __slots__ = ("index", "check_item", "outcome", "message")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CHECK_ITEM_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    check_item: str
    outcome: CheckOutcome
    message: str
    def __init__(self, index: _Optional[int] = ..., check_item: _Optional[str] = ..., outcome: _Optional[_Union[CheckOutcome, str]] = ..., message: _Optional[str] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("scenario_id", "reward", "passed", "total", "checks", "message")
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    scenario_id: str
    reward: float
    passed: int
    total: int
    checks: _containers.RepeatedCompositeFieldContainer[CheckResult]
    message: str
    def __init__(self, scenario_id: _Optional[str] = ..., reward: _Optional[float] = ..., passed: _Optional[int] = ..., total: _Optional[int] = ..., checks: _Optional[_Iterable[_Union[CheckResult, _Mapping]]] = ..., message: _Optional[str] = ...) -> None: ...

class EndEpisodeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EndEpisodeResponse(_message.Message):
    __slots__ = ("dirty", "route")
    DIRTY_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    dirty: bool
    route: str
    def __init__(self, dirty: _Optional[bool] = ..., route: _Optional[str] = ...) -> None: ...

class EpisodeChannelRequest(_message.Message):
    __slots__ = ("episode_id", "failed", "overran_ms")
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    OVERRAN_MS_FIELD_NUMBER: _ClassVar[int]
    episode_id: str
    failed: ErrorKind
    overran_ms: int
    def __init__(self, episode_id: _Optional[str] = ..., failed: _Optional[_Union[ErrorKind, str]] = ..., overran_ms: _Optional[int] = ...) -> None: ...

class EpisodeChannelResponse(_message.Message):
    __slots__ = ("episode_id", "call_timeout_ms", "max_frame_bytes")
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAME_BYTES_FIELD_NUMBER: _ClassVar[int]
    episode_id: str
    call_timeout_ms: int
    max_frame_bytes: int
    def __init__(self, episode_id: _Optional[str] = ..., call_timeout_ms: _Optional[int] = ..., max_frame_bytes: _Optional[int] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("describe", "reset", "call_tool", "get_state", "evaluate", "end_episode", "episode_channel", "deadline_ms")
    DESCRIBE_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    CALL_TOOL_FIELD_NUMBER: _ClassVar[int]
    GET_STATE_FIELD_NUMBER: _ClassVar[int]
    EVALUATE_FIELD_NUMBER: _ClassVar[int]
    END_EPISODE_FIELD_NUMBER: _ClassVar[int]
    EPISODE_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    describe: DescribeRequest
    reset: ResetRequest
    call_tool: CallToolRequest
    get_state: GetStateRequest
    evaluate: EvaluateRequest
    end_episode: EndEpisodeRequest
    episode_channel: EpisodeChannelRequest
    deadline_ms: int
    def __init__(self, describe: _Optional[_Union[DescribeRequest, _Mapping]] = ..., reset: _Optional[_Union[ResetRequest, _Mapping]] = ..., call_tool: _Optional[_Union[CallToolRequest, _Mapping]] = ..., get_state: _Optional[_Union[GetStateRequest, _Mapping]] = ..., evaluate: _Optional[_Union[EvaluateRequest, _Mapping]] = ..., end_episode: _Optional[_Union[EndEpisodeRequest, _Mapping]] = ..., episode_channel: _Optional[_Union[EpisodeChannelRequest, _Mapping]] = ..., deadline_ms: _Optional[int] = ...) -> None: ...

class SessionError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class SessionResponse(_message.Message):
    __slots__ = ("describe", "reset", "call_tool", "get_state", "evaluate", "end_episode", "episode_channel", "error")
    DESCRIBE_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    CALL_TOOL_FIELD_NUMBER: _ClassVar[int]
    GET_STATE_FIELD_NUMBER: _ClassVar[int]
    EVALUATE_FIELD_NUMBER: _ClassVar[int]
    END_EPISODE_FIELD_NUMBER: _ClassVar[int]
    EPISODE_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    describe: DescribeResponse
    reset: ResetResponse
    call_tool: CallToolResponse
    get_state: GetStateResponse
    evaluate: EvaluateResponse
    end_episode: EndEpisodeResponse
    episode_channel: EpisodeChannelResponse
    error: SessionError
    def __init__(self, describe: _Optional[_Union[DescribeResponse, _Mapping]] = ..., reset: _Optional[_Union[ResetResponse, _Mapping]] = ..., call_tool: _Optional[_Union[CallToolResponse, _Mapping]] = ..., get_state: _Optional[_Union[GetStateResponse, _Mapping]] = ..., evaluate: _Optional[_Union[EvaluateResponse, _Mapping]] = ..., end_episode: _Optional[_Union[EndEpisodeResponse, _Mapping]] = ..., episode_channel: _Optional[_Union[EpisodeChannelResponse, _Mapping]] = ..., error: _Optional[_Union[SessionError, _Mapping]] = ...) -> None: ...
