"""`envscaler-runtime mcp --listen`: leases over REST, each lease's URL a Streamable HTTP MCP endpoint.

    POST   /v1/leases                {"env_id", "scenario_id" | "init_config"}  -> 201 {"lease_id", "mcp_url", ...}
    *      /v1/leases/{id}/mcp       the lease's MCP endpoint (both protocol revisions; stateless: the URL is the
                                     handle, so 2026-07-28 clients need no session and 2025-11-25 ones get none)
    POST   /v1/leases/{id}/evaluate  the scenario's evaluation
    GET    /v1/leases/{id}/state     the canonical state
    DELETE /v1/leases/{id}           release (?evaluate=1 evaluates first)

Every failure is JSON `{"error": reason}` with a 4xx (the caller's doing) or 502/503 (the pool's), never a traceback.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import hmac
import json
import logging
import secrets
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc.aio
from mcp.server import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from envscaler.client.env_client import CHANNEL_OPTIONS, target_of
from envscaler.client.errors import EnvClientError
from envscaler.frontdoor.cli import LOOPBACK
from envscaler.frontdoor.tools import Handle, LeaseGone, acquire, build_server
from envscaler.v1 import pool_pb2_grpc as ppb_grpc

log = logging.getLogger("envscaler.frontdoor")

HANDLE_KEY = "envscaler.handle"
CURRENT: contextvars.ContextVar[Handle | None] = contextvars.ContextVar("envscaler_handle", default=None)

# gRPC status of a pool answer -> HTTP status: the caller's mistakes are 4xx, the pool's trouble 502/503.
HTTP_OF_GRPC = {"NOT_FOUND": 404, "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 409, "PERMISSION_DENIED": 403,
                "RESOURCE_EXHAUSTED": 503, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504}


@dataclass
class FrontDoorConfig:
    pool: str
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None  # bearer token; None: no authentication (loopback only by default)
    max_leases: int = 64  # leases held at once through this front door
    max_body: int = 1 << 20  # bytes of any request body
    acquire_wait: float = 30.0  # seconds POST /v1/leases waits for a free container
    timeout: float = 30.0  # deadline of each pool call


class ApiError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Leases:
    """The leases this front door holds, by their public handle (unguessable, and not the pool's own id)."""

    def __init__(self, stub: ppb_grpc.PoolServiceAsyncStub, config: FrontDoorConfig) -> None:
        self.stub = stub
        self.config = config
        self.held: dict[str, Handle] = {}
        self.pending = 0  # acquisitions under way count against the cap
        # Recently ended handles, so a late caller learns why (bounded: old ones read as unknown).
        self.ended: collections.OrderedDict[str, str] = collections.OrderedDict()

    def _forget(self, lease_id: str, why: str) -> Handle | None:
        self.ended[lease_id] = why
        while len(self.ended) > 4096:
            self.ended.popitem(last=False)
        return self.held.pop(lease_id, None)

    def gone(self, handle: Handle) -> None:
        for lease_id, held in list(self.held.items()):
            if held is handle:
                self._forget(lease_id, "reclaimed by the pool")

    async def get(self, lease_id: str) -> Handle:
        """The live lease, renewed when half its TTL has passed; ApiError 404 when it is unknown or expired."""
        handle = self.held.get(lease_id)
        if handle is None:
            why = self.ended.get(lease_id)
            if why:
                raise ApiError(404, f"lease {lease_id[:64]!r} is gone: {why}")
            raise ApiError(404, f"unknown lease {lease_id[:64]!r}: never granted by this front door, or long gone")
        if handle.expired:
            self._forget(lease_id, f"expired at {_iso(handle.expires_unix)} (unused for its TTL of {handle.ttl:g} s)")
            await handle.release()
            raise ApiError(404, f"lease {lease_id[:64]!r} is gone: {self.ended[lease_id]}")
        try:
            await handle.renew()
        except LeaseGone as exc:
            self._forget(lease_id, f"the pool no longer holds it ({exc})")
            raise ApiError(404, f"lease {lease_id[:64]!r} is gone: {self.ended[lease_id]}") from None
        except EnvClientError as exc:
            raise ApiError(HTTP_OF_GRPC.get(exc.code, 502), f"the pool could not renew the lease: {exc.details}") \
                from None
        return handle

    async def create(self, env_id: str, scenario_id: str | None, init_config: dict[str, Any] | None,
                     seed: int, ttl: float | None) -> tuple[str, Handle]:
        if len(self.held) + self.pending >= self.config.max_leases:
            raise ApiError(429, f"this front door holds its cap of {self.config.max_leases} leases: "
                                "release one (DELETE /v1/leases/{id}) first")
        self.pending += 1
        try:
            handle = await acquire(self.stub, self.config.pool, env_id, scenario_id, init_config, ttl=ttl,
                                   wait=self.config.acquire_wait, seed=seed, timeout=self.config.timeout)
        except EnvClientError as exc:
            raise ApiError(HTTP_OF_GRPC.get(exc.code, 502), f"{exc.method}: {exc.details}") from None
        finally:
            self.pending -= 1
        lease_id = secrets.token_urlsafe(18)
        self.held[lease_id] = handle
        return lease_id, handle

    async def release(self, lease_id: str) -> None:
        handle = self._forget(lease_id, "released")
        if handle is not None:
            await handle.release()

    async def reap(self) -> None:
        """Drop expired leases (the pool reclaims their containers on its own clock)."""
        while True:
            await asyncio.sleep(1.0)
            for lease_id, handle in list(self.held.items()):
                if handle.expired:
                    self._forget(lease_id, f"expired at {_iso(handle.expires_unix)} "
                                           f"(unused for its TTL of {handle.ttl:g} s)")
                    await handle.release()

    async def close(self) -> None:
        for lease_id in list(self.held):
            await self.release(lease_id)


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, read no further than `limit` bytes (ApiError 413 past it)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body of {declared} bytes is over the limit of {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body is over the limit of {limit} bytes")
    return bytes(body)


async def _json_body(request: Request, limit: int) -> dict[str, Any]:
    """The request's JSON object, read no further than `limit` bytes."""
    body = await read_body(request, limit)
    if not body:
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(400, f"request body must be a JSON object, not {type(value).__name__}")
    return value


def _lease_request(body: dict[str, Any]) -> tuple[str, str | None, dict[str, Any] | None, int, float | None]:
    known = {"env_id", "scenario_id", "init_config", "seed", "ttl"}
    if unknown := sorted(set(body) - known):
        raise ApiError(400, f"unknown field(s) {unknown}; expected env_id and scenario_id or init_config "
                            "(optional: seed, ttl)")
    env_id = body.get("env_id")
    if not isinstance(env_id, str) or not env_id:
        raise ApiError(400, "env_id is required (a non-empty string)")
    scenario_id, init_config = body.get("scenario_id"), body.get("init_config")
    if (scenario_id is None) == (init_config is None):
        raise ApiError(400, "give exactly one of scenario_id (a bundled scenario) or init_config (an object)")
    if scenario_id is not None and (not isinstance(scenario_id, str) or not scenario_id):
        raise ApiError(400, "scenario_id must be a non-empty string")
    if init_config is not None and not isinstance(init_config, dict):
        raise ApiError(400, "init_config must be a JSON object")
    seed = body.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not -(2**63) <= seed < 2**63:
        raise ApiError(400, "seed must be a 64-bit integer")
    ttl = body.get("ttl")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= 86400):
        raise ApiError(400, "ttl must be seconds in (0, 86400]; the pool may cap it (default: the pool's TTL)")
    return env_id, scenario_id, init_config, seed, float(ttl) if ttl is not None else None


class Guard:
    """Outermost layer: bearer token, and ApiError / anything unexpected as a JSON 4xx/5xx without a traceback."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.token is not None:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, b"Bearer " + self.token):
                reason = "missing bearer token" if not given else "wrong bearer token"
                await _error(401, f"{reason}: send Authorization: Bearer <the token of --token-file>",
                             {"WWW-Authenticate": 'Bearer realm="envscaler"'})(scope, receive, send)
                return
        started = False

        async def watch(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ApiError as exc:
            if not started:
                await _error(exc.status, exc.reason)(scope, receive, send)
        except Exception:
            log.exception("front door: unexpected failure on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await _error(500, "internal error of the front door (logged); the lease is unchanged")(
                    scope, receive, send)


def build_app(config: FrontDoorConfig) -> Starlette:
    """The front door's ASGI app; its lifespan opens the pool channel and releases every lease on shutdown."""
    state: dict[str, Any] = {}

    def leases() -> Leases:
        return state["leases"]

    def resolve(ctx: ServerRequestContext[Any, Any]) -> Handle:
        return ctx.request.scope[HANDLE_KEY]  # put there by mcp_endpoint once the lease was found live

    server = build_server(resolve, on_gone=lambda handle: leases().gone(handle), current=CURRENT.get)
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    ) if config.host in LOOPBACK else None
    # Stateless: the URL is the handle, so nothing else needs remembering between requests; JSON, not SSE.
    manager = StreamableHTTPSessionManager(app=server, stateless=True, json_response=True,
                                           security_settings=security, max_request_body_size=config.max_body)

    class McpEndpoint:
        """An ASGI app (not a request handler): the SDK's transport answers the request itself."""

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            scope[HANDLE_KEY] = handle = await leases().get(scope["path_params"]["lease_id"])
            CURRENT.set(handle)  # seen where the SDK serves the request in this task (the 2026-07-28 path)
            await manager.handle_request(scope, receive, send)

    async def create_lease(request: Request) -> Response:
        env_id, scenario_id, init_config, seed, ttl = _lease_request(await _json_body(request, config.max_body))
        lease_id, handle = await leases().create(env_id, scenario_id, init_config, seed, ttl)
        url = f"/v1/leases/{lease_id}/mcp"
        return JSONResponse({"lease_id": lease_id, "mcp_url": url, "env_id": handle.env_id, "task": handle.task,
                             "expires_at": _iso(handle.expires_unix), "ttl": handle.ttl},
                            status_code=201, headers={"Location": f"/v1/leases/{lease_id}"})

    async def _evaluate(handle: Handle) -> dict[str, Any]:
        try:
            return (await handle.session.evaluate()).model_dump()
        except EnvClientError as exc:
            raise ApiError(HTTP_OF_GRPC.get(exc.code, 502), f"Evaluate: {exc.details}") from None

    async def evaluate(request: Request) -> Response:
        await _json_body(request, config.max_body)  # nothing is taken, but nothing oversized either
        return JSONResponse(await _evaluate(await leases().get(request.path_params["lease_id"])))

    async def get_state(request: Request) -> Response:
        handle = await leases().get(request.path_params["lease_id"])
        try:
            snapshot = await handle.session.state()
        except EnvClientError as exc:
            raise ApiError(HTTP_OF_GRPC.get(exc.code, 502), f"GetState: {exc.details}") from None
        return JSONResponse(snapshot.model_dump())

    async def delete_lease(request: Request) -> Response:
        lease_id = request.path_params["lease_id"]
        flag = request.query_params.get("evaluate", "0")
        if flag not in ("0", "1", "true", "false"):
            raise ApiError(400, f"evaluate must be 1 or 0, not {flag[:32]!r}")
        handle = await leases().get(lease_id)
        body: dict[str, Any] = {"lease_id": lease_id, "released": True}
        try:
            if flag in ("1", "true"):
                body["evaluation"] = await _evaluate(handle)
        finally:
            await leases().release(lease_id)
        return JSONResponse(body)

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            return _error(405, f"{request.method} is not allowed on {request.url.path}")
        return _error(exc.status_code, f"no route {request.method} {request.url.path[:200]}; see /v1/leases"
                      if exc.status_code == 404 else str(exc.detail))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        channel = grpc.aio.insecure_channel(target_of(config.pool), options=CHANNEL_OPTIONS)
        state["leases"] = Leases(ppb_grpc.PoolServiceStub(channel), config)
        async with manager.run():
            reaper = asyncio.create_task(leases().reap())
            try:
                yield
            finally:
                reaper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reaper
                await leases().close()
                await channel.close()

    routes = [
        Route("/v1/leases", create_lease, methods=["POST"]),
        Route("/v1/leases/{lease_id}/mcp", McpEndpoint()),
        Route("/v1/leases/{lease_id}/evaluate", evaluate, methods=["POST"]),
        Route("/v1/leases/{lease_id}/state", get_state, methods=["GET"]),
        Route("/v1/leases/{lease_id}", delete_lease, methods=["DELETE"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: not_found})
    app.add_middleware(_GuardMiddleware, token=config.token)
    return app


class _GuardMiddleware(Guard):
    def __init__(self, app: ASGIApp, token: str | None = None) -> None:
        super().__init__(app, token)


def bind(host: str, port: int) -> tuple[socket.socket, str]:
    """A listening socket and its address as HOST:PORT. OSError (one line) when the address cannot be had: bound
    here, not by uvicorn, which would log and exit."""
    from envscaler.protocol.addresses import ensure_free

    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    ensure_free(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(512)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {address}: {exc.strerror or exc}") from None
    return sock, address


def serve_http(config: FrontDoorConfig) -> None:
    """Serve until SIGINT/SIGTERM; uvicorn runs the lifespan, which releases every lease on the way out."""
    import uvicorn

    sock, address = bind(config.host, config.port)
    print(f"envscaler-runtime mcp: http://{address}/v1/leases (pool {config.pool})", file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(build_app(config), log_level="warning", timeout_graceful_shutdown=5,
                                           limit_concurrency=max(64, config.max_leases * 4)))
    server.run(sockets=[sock])
