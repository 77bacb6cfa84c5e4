from envscaler.v1 import env_pb2 as _env_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkerLimits(_message.Message):
    __slots__ = ("memory_bytes", "file_bytes", "open_files")
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    FILE_BYTES_FIELD_NUMBER: _ClassVar[int]
    OPEN_FILES_FIELD_NUMBER: _ClassVar[int]
    memory_bytes: int
    file_bytes: int
    open_files: int
    def __init__(self, memory_bytes: _Optional[int] = ..., file_bytes: _Optional[int] = ..., open_files: _Optional[int] = ...) -> None: ...

class WorkerLoad(_message.Message):
    __slots__ = ("code", "class_name", "env_id", "tools", "observation", "sandbox", "max_result_bytes", "max_state_bytes", "limits")
    CODE_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    ENV_ID_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_STATE_BYTES_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    code: str
    class_name: str
    env_id: str
    tools: _containers.RepeatedScalarFieldContainer[str]
    observation: str
    sandbox: str
    max_result_bytes: int
    max_state_bytes: int
    limits: WorkerLimits
    def __init__(self, code: _Optional[str] = ..., class_name: _Optional[str] = ..., env_id: _Optional[str] = ..., tools: _Optional[_Iterable[str]] = ..., observation: _Optional[str] = ..., sandbox: _Optional[str] = ..., max_result_bytes: _Optional[int] = ..., max_state_bytes: _Optional[int] = ..., limits: _Optional[_Union[WorkerLimits, _Mapping]] = ...) -> None: ...

class WorkerSpawn(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkerReap(_message.Message):
    __slots__ = ("pid",)
    PID_FIELD_NUMBER: _ClassVar[int]
    pid: int
    def __init__(self, pid: _Optional[int] = ...) -> None: ...

class WorkerSweep(_message.Message):
    __slots__ = ("keep",)
    KEEP_FIELD_NUMBER: _ClassVar[int]
    keep: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, keep: _Optional[_Iterable[int]] = ...) -> None: ...

class WorkerRenew(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkerReset(_message.Message):
    __slots__ = ("init_config_json", "seed")
    INIT_CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    init_config_json: bytes
    seed: int
    def __init__(self, init_config_json: _Optional[bytes] = ..., seed: _Optional[int] = ...) -> None: ...

class WorkerCall(_message.Message):
    __slots__ = ("name", "arguments_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    arguments_json: bytes
    def __init__(self, name: _Optional[str] = ..., arguments_json: _Optional[bytes] = ...) -> None: ...

class WorkerGetState(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkerPing(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkerAttach(_message.Message):
    __slots__ = ("episode_id", "max_argument_bytes")
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_ARGUMENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    episode_id: str
    max_argument_bytes: int
    def __init__(self, episode_id: _Optional[str] = ..., max_argument_bytes: _Optional[int] = ...) -> None: ...

class WorkerEvaluate(_message.Message):
    __slots__ = ("checks",)
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    checks: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, checks: _Optional[_Iterable[str]] = ...) -> None: ...

class WorkerNext(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkerRequest(_message.Message):
    __slots__ = ("load", "spawn", "reap", "sweep", "renew", "reset", "call", "state", "ping", "attach", "evaluate", "next")
    LOAD_FIELD_NUMBER: _ClassVar[int]
    SPAWN_FIELD_NUMBER: _ClassVar[int]
    REAP_FIELD_NUMBER: _ClassVar[int]
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    RENEW_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    ATTACH_FIELD_NUMBER: _ClassVar[int]
    EVALUATE_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    load: WorkerLoad
    spawn: WorkerSpawn
    reap: WorkerReap
    sweep: WorkerSweep
    renew: WorkerRenew
    reset: WorkerReset
    call: WorkerCall
    state: WorkerGetState
    ping: WorkerPing
    attach: WorkerAttach
    evaluate: WorkerEvaluate
    next: WorkerNext
    def __init__(self, load: _Optional[_Union[WorkerLoad, _Mapping]] = ..., spawn: _Optional[_Union[WorkerSpawn, _Mapping]] = ..., reap: _Optional[_Union[WorkerReap, _Mapping]] = ..., sweep: _Optional[_Union[WorkerSweep, _Mapping]] = ..., renew: _Optional[_Union[WorkerRenew, _Mapping]] = ..., reset: _Optional[_Union[WorkerReset, _Mapping]] = ..., call: _Optional[_Union[WorkerCall, _Mapping]] = ..., state: _Optional[_Union[WorkerGetState, _Mapping]] = ..., ping: _Optional[_Union[WorkerPing, _Mapping]] = ..., attach: _Optional[_Union[WorkerAttach, _Mapping]] = ..., evaluate: _Optional[_Union[WorkerEvaluate, _Mapping]] = ..., next: _Optional[_Union[WorkerNext, _Mapping]] = ...) -> None: ...

class WorkerDone(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkerFailure(_message.Message):
    __slots__ = ("kind", "message")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    kind: _env_pb2.ErrorKind
    message: str
    def __init__(self, kind: _Optional[_Union[_env_pb2.ErrorKind, str]] = ..., message: _Optional[str] = ...) -> None: ...

class WorkerSpawned(_message.Message):
    __slots__ = ("pid", "pidfd")
    PID_FIELD_NUMBER: _ClassVar[int]
    PIDFD_FIELD_NUMBER: _ClassVar[int]
    pid: int
    pidfd: bool
    def __init__(self, pid: _Optional[int] = ..., pidfd: _Optional[bool] = ...) -> None: ...

class WorkerReaped(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: str
    def __init__(self, status: _Optional[str] = ...) -> None: ...

class WorkerState(_message.Message):
    __slots__ = ("state_json", "sha256", "state_error")
    STATE_JSON_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    STATE_ERROR_FIELD_NUMBER: _ClassVar[int]
    state_json: str
    sha256: str
    state_error: WorkerFailure
    def __init__(self, state_json: _Optional[str] = ..., sha256: _Optional[str] = ..., state_error: _Optional[_Union[WorkerFailure, _Mapping]] = ...) -> None: ...

class WorkerResult(_message.Message):
    __slots__ = ("result_json", "observation")
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    observation: str
    def __init__(self, result_json: _Optional[str] = ..., observation: _Optional[str] = ...) -> None: ...

class WorkerCheck(_message.Message):
    __slots__ = ("pid",)
    PID_FIELD_NUMBER: _ClassVar[int]
    pid: int
    def __init__(self, pid: _Optional[int] = ...) -> None: ...

class WorkerReply(_message.Message):
    __slots__ = ("done", "failure", "spawned", "reaped", "state", "result", "check")
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    SPAWNED_FIELD_NUMBER: _ClassVar[int]
    REAPED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CHECK_FIELD_NUMBER: _ClassVar[int]
    done: WorkerDone
    failure: WorkerFailure
    spawned: WorkerSpawned
    reaped: WorkerReaped
    state: WorkerState
    result: WorkerResult
    check: WorkerCheck
    def __init__(self, done: _Optional[_Union[WorkerDone, _Mapping]] = ..., failure: _Optional[_Union[WorkerFailure, _Mapping]] = ..., spawned: _Optional[_Union[WorkerSpawned, _Mapping]] = ..., reaped: _Optional[_Union[WorkerReaped, _Mapping]] = ..., state: _Optional[_Union[WorkerState, _Mapping]] = ..., result: _Optional[_Union[WorkerResult, _Mapping]] = ..., check: _Optional[_Union[WorkerCheck, _Mapping]] = ...) -> None: ...
