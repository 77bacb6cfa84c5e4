"""Clients for the EnvService methods: `EnvClient` / `AsyncEnvClient` talk to one
environment server; pool sessions (pool_client.py) reuse the same methods and only
change how a request travels (wrapped with a lease, through the pool). Both send
their calls on one Session stream (session_stream.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from envscaler.client.auth import open_aio_channel, open_channel, security_of
from envscaler.client.models import EnvInfo, Evaluation, ResetResult, StateSnapshot, ToolResult
from envscaler.client.session_socket import AsyncSocketSession, SocketSession
from envscaler.client.session_stream import AsyncSessionStream, SessionStream
from envscaler.v1 import env_pb2 as pb
from envscaler.v1 import env_pb2_grpc as pb_grpc

CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
EVALUATE_TIMEOUT = 120.0


def target_of(address: str) -> str:
    """Accept what `serve --listen` takes: unix:/path, tcp:HOST:PORT or HOST:PORT."""
    return address[4:] if address.startswith("tcp:") else address


def reset_request(scenario: str | None, init_config: dict[str, Any] | None, seed: int) -> pb.ResetRequest:
    if scenario is not None and init_config is not None:
        raise ValueError("reset takes a scenario or an init_config, not both")
    if scenario is not None:
        return pb.ResetRequest(scenario_id=scenario, seed=seed)
    return pb.ResetRequest(init_config_json=json.dumps(init_config or {}), seed=seed)


def call_request(episode_id: str, name: str, arguments: dict[str, Any] | str | None,
                 timeout: float | None) -> pb.CallToolRequest:
    # A string is passed through untouched: an LLM's raw arguments, validated by the server.
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return pb.CallToolRequest(episode_id=episode_id, name=name, arguments_json=raw,
                              timeout_ms=int(timeout * 1000) if timeout else 0)


# An ad-hoc check: a (check_item, check_func source) pair, or a record of checklist_with_func as EnvScaler writes it.
Check = tuple[str, str] | Mapping[str, str]


def check_function(index: int, check: Any) -> pb.CheckFunction:
    """One ad-hoc check on the wire; TypeError naming it when it is neither shape (a dict is not unpacked into its
    keys)."""
    if isinstance(check, Mapping):
        item, func = check.get("check_item", ""), check.get("check_func")
    elif isinstance(check, tuple | list) and len(check) == 2:
        item, func = check
    else:
        raise TypeError(f"checks[{index}]: expected a (check_item, check_func source) pair or "
                        f"{{'check_item': ..., 'check_func': ...}}, got {type(check).__name__}")
    if not isinstance(item, str) or not isinstance(func, str):
        raise TypeError(f"checks[{index}]: check_item and check_func must be text (check_func is the source of "
                        "def check_func(final_state))")
    return pb.CheckFunction(check_item=item, check_func=func)


def evaluate_request(episode_id: str, scenario: str | None,
                     checks: Sequence[Check] | None) -> pb.EvaluateRequest:
    if isinstance(checks, str | bytes | Mapping):
        raise TypeError(f"checks: expected a list of checks, got one {type(checks).__name__}")
    adhoc = [check_function(i, check) for i, check in enumerate(checks or [])]
    return pb.EvaluateRequest(episode_id=episode_id, scenario_id=scenario or "", checks=adhoc)


class EnvMethods:
    """reset / call / state / evaluate / tools over any blocking `_invoke`."""

    timeout: float = 30.0
    episode_id: str = ""
    _info: EnvInfo | None = None

    def _invoke(self, method: str, request: Any, timeout: float | None = None) -> Any:
        raise NotImplementedError

    def _call_deadline(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else max(self.timeout, timeout + 1.0)

    def describe(self) -> EnvInfo:
        if self._info is None:
            self._info = EnvInfo.from_pb(self._invoke("Describe", pb.DescribeRequest()))
        return self._info

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The tools in OpenAI's `tools` format."""
        return self.describe().tools

    def reset(self, scenario: str | None = None, *, init_config: dict[str, Any] | None = None,
              seed: int = 0) -> ResetResult:
        result = ResetResult.from_pb(self._invoke("Reset", reset_request(scenario, init_config, seed)))
        self.episode_id = result.episode_id
        return result

    def call(self, name: str, arguments: dict[str, Any] | str | None = None, *,
             timeout: float | None = None) -> ToolResult:
        request = call_request(self.episode_id, name, arguments, timeout)
        return ToolResult.from_pb(name, self._invoke("CallTool", request, self._call_deadline(timeout)))

    def state(self) -> StateSnapshot:
        return StateSnapshot.from_pb(self._invoke("GetState", pb.GetStateRequest(episode_id=self.episode_id)))

    def evaluate(self, scenario: str | None = None, *, checks: Sequence[Check] | None = None) -> Evaluation:
        """A scenario's checks, or ad-hoc `checks`: (check_item, check_func source) pairs or
        {"check_item", "check_func"} records."""
        request = evaluate_request(self.episode_id, scenario, checks)
        return Evaluation.from_pb(self._invoke("Evaluate", request, max(self.timeout, EVALUATE_TIMEOUT)))


class AsyncEnvMethods:
    """The same methods, awaited, over any async `_invoke`."""

    timeout: float = 30.0
    episode_id: str = ""
    _info: EnvInfo | None = None

    async def _invoke(self, method: str, request: Any, timeout: float | None = None) -> Any:
        raise NotImplementedError

    def _call_deadline(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else max(self.timeout, timeout + 1.0)

    async def describe(self) -> EnvInfo:
        if self._info is None:
            self._info = EnvInfo.from_pb(await self._invoke("Describe", pb.DescribeRequest()))
        return self._info

    async def tools(self) -> list[dict[str, Any]]:
        return (await self.describe()).tools

    async def reset(self, scenario: str | None = None, *, init_config: dict[str, Any] | None = None,
                    seed: int = 0) -> ResetResult:
        result = ResetResult.from_pb(await self._invoke("Reset", reset_request(scenario, init_config, seed)))
        self.episode_id = result.episode_id
        return result

    async def call(self, name: str, arguments: dict[str, Any] | str | None = None, *,
                   timeout: float | None = None) -> ToolResult:
        request = call_request(self.episode_id, name, arguments, timeout)
        return ToolResult.from_pb(name, await self._invoke("CallTool", request, self._call_deadline(timeout)))

    async def state(self) -> StateSnapshot:
        reply = await self._invoke("GetState", pb.GetStateRequest(episode_id=self.episode_id))
        return StateSnapshot.from_pb(reply)

    async def evaluate(self, scenario: str | None = None, *,
                       checks: Sequence[Check] | None = None) -> Evaluation:
        request = evaluate_request(self.episode_id, scenario, checks)
        return Evaluation.from_pb(await self._invoke("Evaluate", request, max(self.timeout, EVALUATE_TIMEOUT)))


class EnvClient(EnvMethods):
    """Blocking client of one server: `with EnvClient("unix:/tmp/env.sock") as env: env.reset(...)`.
    With `session_socket` (same host), calls go over that socket instead of a gRPC stream, and each episode's tool
    calls on its episode channel, answered by the episode's worker itself (proto: EpisodeChannelRequest; this client
    then enforces each call's deadline); `episode_channel=False` keeps every call on the server's own path.
    `token` (default ENVSCALER_TOKEN) is sent on every call; `ca_file` (default ENVSCALER_CA_FILE) turns on TLS,
    trusting that CA (envscaler/client/auth.py)."""

    def __init__(self, address: str, *, timeout: float = 30.0, session_socket: str | None = None,
                 episode_channel: bool = True, token: str | None = None, ca_file: str | None = None) -> None:
        self.channel = open_channel(target_of(address), security_of(address, token, ca_file), CHANNEL_OPTIONS)
        self.stub = pb_grpc.EnvServiceStub(self.channel)
        self.stream: SessionStream | SocketSession = \
            SocketSession(session_socket, channels=episode_channel) if session_socket \
            else SessionStream(self.stub.Session)
        self.timeout = timeout  # deadline of each call
        self.episode_id = ""
        self._info = None

    def _invoke(self, method: str, request: Any, timeout: float | None = None) -> Any:
        return self.stream.request(method, request, timeout or self.timeout)

    def close(self) -> None:
        self.stream.close()
        self.channel.close()

    def __enter__(self) -> EnvClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncEnvClient(AsyncEnvMethods):
    """asyncio client of one server, with the same methods as EnvClient, awaited."""

    def __init__(self, address: str, *, timeout: float = 30.0, session_socket: str | None = None,
                 episode_channel: bool = True, token: str | None = None, ca_file: str | None = None) -> None:
        self.channel = open_aio_channel(target_of(address), security_of(address, token, ca_file), CHANNEL_OPTIONS)
        self.stub = pb_grpc.EnvServiceStub(self.channel)
        self.stream: AsyncSessionStream | AsyncSocketSession = \
            AsyncSocketSession(session_socket, channels=episode_channel) if session_socket \
            else AsyncSessionStream(self.stub.Session)
        self.timeout = timeout
        self.episode_id = ""
        self._info = None

    async def _invoke(self, method: str, request: Any, timeout: float | None = None) -> Any:
        return await self.stream.request(method, request, timeout or self.timeout)

    async def close(self) -> None:
        await self.stream.close()
        await self.channel.close()

    async def __aenter__(self) -> AsyncEnvClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
