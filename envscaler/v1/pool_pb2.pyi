from envscaler.v1 import env_pb2 as _env_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AcquireRequest(_message.Message):
    __slots__ = ("env_id", "scenario_id", "lease_ttl_ms", "wait_ms", "seed")
    ENV_ID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    env_id: str
    scenario_id: str
    lease_ttl_ms: int
    wait_ms: int
    seed: int
    def __init__(self, env_id: _Optional[str] = ..., scenario_id: _Optional[str] = ..., lease_ttl_ms: _Optional[int] = ..., wait_ms: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class Lease(_message.Message):
    __slots__ = ("lease_id", "env_id", "expires_unix_ms", "reset", "direct_address", "session_socket", "direct_session_socket")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    ENV_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    DIRECT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SESSION_SOCKET_FIELD_NUMBER: _ClassVar[int]
    DIRECT_SESSION_SOCKET_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    env_id: str
    expires_unix_ms: int
    reset: _env_pb2.ResetResponse
    direct_address: str
    session_socket: str
    direct_session_socket: str
    def __init__(self, lease_id: _Optional[str] = ..., env_id: _Optional[str] = ..., expires_unix_ms: _Optional[int] = ..., reset: _Optional[_Union[_env_pb2.ResetResponse, _Mapping]] = ..., direct_address: _Optional[str] = ..., session_socket: _Optional[str] = ..., direct_session_socket: _Optional[str] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("lease_id",)
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    def __init__(self, lease_id: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RenewRequest(_message.Message):
    __slots__ = ("lease_id",)
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    def __init__(self, lease_id: _Optional[str] = ...) -> None: ...

class LeaseDescribeRequest(_message.Message):
    __slots__ = ("lease_id",)
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    def __init__(self, lease_id: _Optional[str] = ...) -> None: ...

class LeaseResetRequest(_message.Message):
    __slots__ = ("lease_id", "request")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    request: _env_pb2.ResetRequest
    def __init__(self, lease_id: _Optional[str] = ..., request: _Optional[_Union[_env_pb2.ResetRequest, _Mapping]] = ...) -> None: ...

class LeaseCallToolRequest(_message.Message):
    __slots__ = ("lease_id", "request")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    request: _env_pb2.CallToolRequest
    def __init__(self, lease_id: _Optional[str] = ..., request: _Optional[_Union[_env_pb2.CallToolRequest, _Mapping]] = ...) -> None: ...

class LeaseGetStateRequest(_message.Message):
    __slots__ = ("lease_id", "request")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    request: _env_pb2.GetStateRequest
    def __init__(self, lease_id: _Optional[str] = ..., request: _Optional[_Union[_env_pb2.GetStateRequest, _Mapping]] = ...) -> None: ...

class LeaseEvaluateRequest(_message.Message):
    __slots__ = ("lease_id", "request")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    request: _env_pb2.EvaluateRequest
    def __init__(self, lease_id: _Optional[str] = ..., request: _Optional[_Union[_env_pb2.EvaluateRequest, _Mapping]] = ...) -> None: ...

class LeaseSessionRequest(_message.Message):
    __slots__ = ("lease_id", "request")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    request: _env_pb2.SessionRequest
    def __init__(self, lease_id: _Optional[str] = ..., request: _Optional[_Union[_env_pb2.SessionRequest, _Mapping]] = ...) -> None: ...

class ListEnvsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EnvSummary(_message.Message):
    __slots__ = ("env_id", "spec_hash", "environment_summary", "tools", "scenario_ids")
    ENV_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_HASH_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_IDS_FIELD_NUMBER: _ClassVar[int]
    env_id: str
    spec_hash: str
    environment_summary: str
    tools: _containers.RepeatedCompositeFieldContainer[_env_pb2.Tool]
    scenario_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, env_id: _Optional[str] = ..., spec_hash: _Optional[str] = ..., environment_summary: _Optional[str] = ..., tools: _Optional[_Iterable[_Union[_env_pb2.Tool, _Mapping]]] = ..., scenario_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListEnvsResponse(_message.Message):
    __slots__ = ("envs",)
    ENVS_FIELD_NUMBER: _ClassVar[int]
    envs: _containers.RepeatedCompositeFieldContainer[EnvSummary]
    def __init__(self, envs: _Optional[_Iterable[_Union[EnvSummary, _Mapping]]] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EnvStats(_message.Message):
    __slots__ = ("env_id", "idle", "leased", "starting", "failed", "failing")
    ENV_ID_FIELD_NUMBER: _ClassVar[int]
    IDLE_FIELD_NUMBER: _ClassVar[int]
    LEASED_FIELD_NUMBER: _ClassVar[int]
    STARTING_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    FAILING_FIELD_NUMBER: _ClassVar[int]
    env_id: str
    idle: int
    leased: int
    starting: int
    failed: int
    failing: str
    def __init__(self, env_id: _Optional[str] = ..., idle: _Optional[int] = ..., leased: _Optional[int] = ..., starting: _Optional[int] = ..., failed: _Optional[int] = ..., failing: _Optional[str] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("size", "containers", "envs", "acquired", "replaced", "leases_expired")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    ENVS_FIELD_NUMBER: _ClassVar[int]
    ACQUIRED_FIELD_NUMBER: _ClassVar[int]
    REPLACED_FIELD_NUMBER: _ClassVar[int]
    LEASES_EXPIRED_FIELD_NUMBER: _ClassVar[int]
    size: int
    containers: int
    envs: _containers.RepeatedCompositeFieldContainer[EnvStats]
    acquired: int
    replaced: int
    leases_expired: int
    def __init__(self, size: _Optional[int] = ..., containers: _Optional[int] = ..., envs: _Optional[_Iterable[_Union[EnvStats, _Mapping]]] = ..., acquired: _Optional[int] = ..., replaced: _Optional[int] = ..., leases_expired: _Optional[int] = ...) -> None: ...
