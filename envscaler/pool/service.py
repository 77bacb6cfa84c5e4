"""PoolService over grpc.aio: leases, and EnvService calls routed by lease."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

from envscaler.pool.manager import PoolError, PoolManager, Upstream
from envscaler.protocol.deadlines import Deadline
from envscaler.protocol.sessions import SESSION_METHODS, RequestError, session_error, session_kind
from envscaler.spec.loader import Corpus
from envscaler.spec.toolschema import served_tools
from envscaler.v1 import env_pb2 as pb
from envscaler.v1 import pool_pb2 as ppb
from envscaler.v1 import pool_pb2_grpc as ppb_grpc


def list_envs_response(corpus: Corpus, env_ids: list[str], tool_schemas: str = "derived") -> ppb.ListEnvsResponse:
    envs = []
    for env_id in env_ids:
        spec = corpus.envs[env_id]
        tools = [pb.Tool(name=t["function"]["name"], description=t["function"].get("description", ""),
                         parameters_json=json.dumps(t["function"].get("parameters", {}), sort_keys=True))
                 for t in served_tools(spec.tools, spec.env_class_code, spec.env_class_name, tool_schemas)]
        envs.append(ppb.EnvSummary(env_id=env_id, spec_hash=spec.spec_hash,
                                   environment_summary=spec.environment_summary, tools=tools,
                                   scenario_ids=list(corpus.scenarios_of(env_id))))
    return ppb.ListEnvsResponse(envs=envs)


HOP_MARGIN = 0.05


async def session_step(manager: PoolManager, request: ppb.LeaseSessionRequest | RequestError,
                       upstreams: dict[str, Upstream]) -> pb.SessionResponse:
    """One message of a client's session (a PoolService.Session stream or the pool's session socket)."""
    try:
        kind = session_kind(request if isinstance(request, RequestError) else request.request)
        assert not isinstance(request, RequestError)  # session_kind raised it
        if kind == "end_episode":
            raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "a lease's episode ends with Release")
        if kind == "episode_channel":  # the pool's connection is the pool's: it opens its leases' channels itself
            raise RequestError(grpc.StatusCode.PERMISSION_DENIED, "a pool holds its leases' episode channels "
                                                                  "itself; send call_tool as usual")
        return await manager.forward_session(request.lease_id, request.request, kind, SESSION_METHODS[kind],
                                             upstreams)
    except RequestError as exc:
        return session_error(exc.code, exc.message)


def close_upstreams(upstreams: dict[str, Upstream]) -> None:
    for upstream in upstreams.values():
        upstream.close()
    upstreams.clear()


if TYPE_CHECKING:  # generic only in the stubs
    Context = grpc.aio.ServicerContext[Any, Any]  # a PoolService handler's (requests are parsed by hand)


class PoolServicer(ppb_grpc.PoolServiceServicer):
    def __init__(self, manager: PoolManager, corpus: Corpus, session_socket: str = "",
                 tool_schemas: str = "derived") -> None:
        self.manager = manager
        self.session_socket = session_socket  # the pool's own, when it listens on a Unix socket
        self.envs = list_envs_response(corpus, list(manager.config.images), tool_schemas)

    async def _guard(self, context: Context, coroutine: Any) -> Any:
        try:
            return await coroutine
        except PoolError as exc:
            await context.abort(exc.code, exc.message)

    def _lease_message(self, lease: Any, reset: pb.ResetResponse | None = None) -> ppb.Lease:
        now = asyncio.get_running_loop().time()
        return ppb.Lease(lease_id=lease.lease_id, env_id=lease.slot.env_id, expires_unix_ms=lease.expires_unix_ms(now),
                         reset=reset, direct_session_socket=lease.slot.route, session_socket=self.session_socket)

    async def Acquire(self, request: ppb.AcquireRequest, context: Context) -> ppb.Lease:
        # The caller's deadline bounds the wait and the first Reset; a grant it would never see is released.
        deadline = Deadline.after(context.time_remaining())
        wait = request.wait_ms / 1000 if request.wait_ms else 0.0
        lease, reset = await self._guard(context, self.manager.acquire(
            request.env_id, request.scenario_id, request.lease_ttl_ms / 1000, wait, request.seed, deadline))
        return self._lease_message(lease, reset)

    async def Release(self, request: ppb.ReleaseRequest, context: Context) -> ppb.ReleaseResponse:
        await self._guard(context, self.manager.release(request.lease_id))
        return ppb.ReleaseResponse()

    async def Renew(self, request: ppb.RenewRequest, context: Context) -> ppb.Lease:
        lease = await self._guard(context, self.manager.renew(request.lease_id))
        return self._lease_message(lease)

    async def _route(self, context: Context, lease_id: str, method: str, request: Any) -> Any:
        remaining = context.time_remaining()
        # The hop to the container expires just before the caller's deadline, so the pool sees the overrun.
        timeout = None if remaining is None else max(remaining - HOP_MARGIN, 0.01)
        return await self._guard(context, self.manager.forward(lease_id, method, request, timeout))

    async def Describe(self, request: ppb.LeaseDescribeRequest, context: Context) -> Any:
        return await self._route(context, request.lease_id, "Describe", pb.DescribeRequest())

    async def Reset(self, request: ppb.LeaseResetRequest, context: Context) -> Any:
        return await self._route(context, request.lease_id, "Reset", request.request)

    async def CallTool(self, request: ppb.LeaseCallToolRequest, context: Context) -> Any:
        return await self._route(context, request.lease_id, "CallTool", request.request)

    async def GetState(self, request: ppb.LeaseGetStateRequest, context: Context) -> Any:
        return await self._route(context, request.lease_id, "GetState", request.request)

    async def Evaluate(self, request: ppb.LeaseEvaluateRequest, context: Context) -> Any:
        return await self._route(context, request.lease_id, "Evaluate", request.request)

    async def Session(self, requests: AsyncIterator[ppb.LeaseSessionRequest | RequestError],
                      context: Context) -> AsyncIterator[pb.SessionResponse]:
        upstreams: dict[str, Upstream] = {}
        try:
            async for request in requests:
                yield await session_step(self.manager, request, upstreams)
        finally:
            close_upstreams(upstreams)

    async def ListEnvs(self, request: ppb.ListEnvsRequest, context: Context) -> Any:
        return self.envs

    async def Stats(self, request: ppb.StatsRequest, context: Context) -> ppb.StatsResponse:
        stats = self.manager.stats()
        envs = [ppb.EnvStats(env_id=env, idle=c["idle"], leased=c["leased"], starting=c["starting"],
                             failed=c["failed"], failing=c["failing"]) for env, c in stats["envs"].items()]
        return ppb.StatsResponse(size=stats["size"], containers=stats["containers"], envs=envs,
                                 acquired=stats["acquired"], replaced=stats["replaced"],
                                 leases_expired=stats["expired"])
