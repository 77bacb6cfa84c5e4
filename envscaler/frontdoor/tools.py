"""One MCP server over pool leases: the environment's tools as MCP tools, tool results as CallToolResults.

The server does not know where its lease comes from: `resolve(ctx)` finds it (from the URL on HTTP, the one
lease of the process on stdio), so one `Server` serves every lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import anyio
import grpc
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

from envscaler.client.env_client import AsyncEnvClient
from envscaler.client.errors import EnvClientError, wrap_rpc_error
from envscaler.client.models import ToolResult
from envscaler.client.pool_client import AsyncPoolSession, acquire_lease_async
from envscaler.client.transport import Transport, choose
from envscaler.v1 import pool_pb2 as ppb
from envscaler.v1 import pool_pb2_grpc as ppb_grpc

SERVER_NAME = "envscaler-runtime"
STATE_URI = "envscaler://state"
EVALUATION_URI = "envscaler://evaluation"


class LeaseGone(Exception):
    """The pool no longer holds this lease (expired, released, or its container is gone)."""


class Handle:
    """One pool lease held by the front door: its session, its tools, and when the pool will reclaim it."""

    def __init__(self, stub: ppb_grpc.PoolServiceAsyncStub, lease: ppb.Lease, timeout: float,
                 transport: Transport = "stream") -> None:
        self.stub = stub
        self.session = AsyncPoolSession(stub, lease, timeout, transport)
        if transport == "socket" and lease.direct_session_socket:
            # On the pool's host: the lease's own route into its container skips the pool's hop (the pool
            # still grants, renews and releases; Release closes the route).
            self.session.direct = AsyncEnvClient(f"unix:{lease.direct_session_socket}", timeout=timeout,
                                                 session_socket=lease.direct_session_socket)
        self.pool_lease_id = lease.lease_id
        self.env_id = lease.env_id
        self.task = self.session.initial.task if self.session.initial else ""
        self.tools: list[types.Tool] = []
        self._set_expiry(lease.expires_unix_ms)
        self._renewing: asyncio.Lock = asyncio.Lock()

    def _set_expiry(self, expires_unix_ms: int) -> None:
        self.expires_unix = expires_unix_ms / 1000
        # The pool's TTL: renewal resets the lease to this from now.
        self.ttl = max(0.001, self.expires_unix - time.time())

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_unix

    async def load_tools(self) -> None:
        info = await self.session.describe()
        self.tools = [mcp_tool(t) for t in info.tools]

    async def renew(self, *, force: bool = False) -> None:
        """Keep the lease alive while it is used: renew once less than half its TTL is left (one RPC, not per call)."""
        if not force and self.expires_unix - time.time() > self.ttl / 2:
            return
        async with self._renewing:
            if not force and self.expires_unix - time.time() > self.ttl / 2:
                return
            try:
                lease = await self.stub.Renew(ppb.RenewRequest(lease_id=self.pool_lease_id),
                                              timeout=self.session.timeout)
            except grpc.RpcError as exc:
                error = wrap_rpc_error("Renew", exc)
                if error.code == "NOT_FOUND":
                    raise LeaseGone(error.details) from None
                raise error from None
            self.expires_unix = lease.expires_unix_ms / 1000

    async def release(self) -> None:
        with contextlib.suppress(EnvClientError):  # already expired or released: the pool has it back either way
            await self.session.release()


async def acquire(stub: ppb_grpc.PoolServiceAsyncStub, pool_address: str, env_id: str, scenario_id: str | None,
                  init_config: dict[str, Any] | None, *, ttl: float | None = None, wait: float | None = None,
                  seed: int = 0, timeout: float = 30.0) -> Handle:
    """Lease a container, reset it to the scenario (or init_config) and learn its tools; EnvClientError if not."""
    lease = await acquire_lease_async(stub, env_id, scenario_id, ttl, wait, seed, timeout)
    handle = Handle(stub, lease, timeout, choose("auto", pool_address, lease.session_socket))
    try:
        if init_config is not None:
            handle.task = (await handle.session.reset(init_config=init_config, seed=seed)).task
        await handle.load_tools()
    except BaseException:
        with anyio.CancelScope(shield=True):  # also when cancelled: the pool granted it, so give it back
            await handle.release()
        raise
    return handle


def mcp_tool(tool: dict[str, Any]) -> types.Tool:
    """An OpenAI-format tool as an MCP tool: name, description, and `parameters` as the inputSchema, unchanged."""
    function = tool["function"]
    return types.Tool(name=function["name"], description=function.get("description") or None,
                      input_schema=function.get("parameters") or {"type": "object", "properties": {}})


def call_result(result: ToolResult) -> types.CallToolResult:
    """The observation is the text; the JSON result the structured content (an object as it is, else under
    "result", since MCP's structured content is an object); a tool error is isError with its kind first."""
    if not result.ok:
        text = f"{result.error_kind}: {result.error_message}"
        if result.episode_broken:
            text += " (the episode is broken: evaluate or release the lease)"
        return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)
    structured = result.result if isinstance(result.result, dict) else {"result": result.result}
    return types.CallToolResult(content=[types.TextContent(text=result.observation)], structured_content=structured)


def error_result(kind: str, message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=f"{kind}: {message}")], is_error=True)


Resolver = Callable[[ServerRequestContext[Any, Any]], Handle]


def build_server(resolve: Resolver, on_gone: Callable[[Handle], None] = lambda _: None,
                 current: Callable[[], Handle | None] = lambda: None) -> Server[Any]:
    """The low-level MCP server: tools/list and tools/call of whichever lease `resolve` names.

    `current` names the lease of the request being served, without a context: the SDK's 2026-07-28 path asks for
    a tool's input schema before it builds one, and without an answer it runs the whole tools/list per call.
    """

    def input_schema(name: str) -> dict[str, Any] | None:
        handle = current()
        if handle is None:
            return None
        return next((t.input_schema for t in handle.tools if t.name == name), None)

    async def list_tools(ctx: ServerRequestContext[Any, Any],
                         params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=resolve(ctx).tools)

    async def call_tool(ctx: ServerRequestContext[Any, Any],
                        params: types.CallToolRequestParams) -> types.CallToolResult:
        handle = resolve(ctx)
        # The arguments go to the environment as they came: it validates them and says why they do not fit.
        arguments = params.arguments if params.arguments is not None else {}
        try:
            return call_result(await handle.session.call(params.name, json.dumps(arguments)))
        except EnvClientError as exc:
            if exc.code == "NOT_FOUND":
                on_gone(handle)
                return error_result("LEASE_GONE", exc.details)
            return error_result(exc.code, exc.details)

    # Not tools (the tools are exactly the environment's): the episode's state and its evaluation, for a client
    # that holds no REST handle (stdio) or wants neither.
    resources = [types.Resource(uri=STATE_URI, name="state", mime_type="application/json",
                                description="the episode's canonical state"),
                 types.Resource(uri=EVALUATION_URI, name="evaluation", mime_type="application/json",
                                description="the scenario's checks run on the state as it is now (reward, checks)")]

    async def list_resources(ctx: ServerRequestContext[Any, Any],
                             params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=resources)

    async def read_resource(ctx: ServerRequestContext[Any, Any],
                            params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        handle = resolve(ctx)
        uri = str(params.uri)
        try:
            if uri == STATE_URI:
                value = (await handle.session.state()).model_dump()
            elif uri == EVALUATION_URI:
                value = (await handle.session.evaluate()).model_dump()
            else:
                raise MCPError(types.INVALID_PARAMS, f"no resource {uri[:200]!r}; there are {STATE_URI} and "
                                                     f"{EVALUATION_URI}")
        except EnvClientError as exc:
            raise MCPError(types.INTERNAL_ERROR, f"{exc.method}: {exc.code}: {exc.details}") from None
        return types.ReadResourceResult(contents=[types.TextResourceContents(
            uri=uri, mime_type="application/json", text=json.dumps(value))])

    return Server(SERVER_NAME, version="0.1.0", on_list_tools=list_tools, on_call_tool=call_tool,
                  on_list_resources=list_resources, on_read_resource=read_resource, get_tool_input_schema=input_schema)
