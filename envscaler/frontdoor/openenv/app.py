"""The OpenEnv front door's ASGI app: every pooled environment an OpenEnv environment server under /envs/<env_id>.

    WS   /envs/{env_id}/ws        OpenEnv's session: reset / step / state / close / mcp frames; one lease
    POST /envs/{env_id}/reset     stateless, as in OpenEnv (a fresh environment per request: lease, reset, release)
    POST /envs/{env_id}/step      stateless: list_tools answers; a call needs an episode, so a session
    GET  /envs/{env_id}/state     stateless: a fresh environment's state
    POST /envs/{env_id}/mcp       JSON-RPC: tools/list, tools/call, openenv/session/create and /close (HTTP sessions,
                                  ended when idle past the timeout)
    GET  /envs/{env_id}/health, /metadata, /schema;  GET /envs lists the environments

A guard in front of everything checks the Host header (and an Origin, when a browser sends one) against the allowed
hosts, so that a DNS-rebinding or cross-site page cannot drive a session, and the bearer token when there is one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import grpc.aio
from pydantic import TypeAdapter
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from envscaler.client.env_client import CHANNEL_OPTIONS, target_of
from envscaler.frontdoor.cli import LOOPBACK
from envscaler.frontdoor.http import ApiError, read_body
from envscaler.frontdoor.openenv.actions import (
    Action,
    CallTool,
    Invalid,
    InvalidJson,
    OpenEnvError,
    SessionFailed,
    parse_action,
    parse_message,
    parse_reset,
)
from envscaler.frontdoor.openenv.session import EnvEntry, PoolLink, Session, Sessions
from envscaler.v1 import pool_pb2_grpc as ppb_grpc

log = logging.getLogger("envscaler.frontdoor.openenv")


@dataclass
class OpenEnvConfig:
    pool: str
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # None: no authentication (loopback only, enforced by the command)
    allowed_hosts: tuple[str, ...] = LOOPBACK  # host names a request's Host (and Origin) may carry
    max_sessions: int = 64  # sessions (so leases) at once through this front door
    max_body: int = 1 << 20  # bytes of an HTTP body or a WebSocket message
    acquire_wait: float = 30.0  # seconds a reset waits for a free container
    session_timeout: float = 300.0  # seconds a session may sit idle before its lease goes back
    timeout: float = 30.0  # deadline of each pool call


def _detail(status: int, message: str, code: str | None = None) -> JSONResponse:
    """FastAPI's error body, as OpenEnv's server answers over HTTP, plus OpenEnv's error code."""
    return JSONResponse({"detail": message, **({"code": code} if code else {})}, status_code=status)


# ---------------------------------------------------------------- the guard


def host_of(value: str) -> str:
    """The host name of a Host header (`127.0.0.1:8000`, `[::1]:8000`, `localhost`), lower-cased."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def refusal(headers: dict[bytes, bytes], allowed: tuple[str, ...], token: bytes | None) -> tuple[int, str] | None:
    """Why a request may not reach the app (status, reason), or None. Host, then Origin, then the token."""
    host = headers.get(b"host", b"").decode("latin-1")
    if not host:
        return 421, "no Host header"
    if host_of(host) not in allowed:
        return 421, (f"Host {host[:100]!r} is not allowed here (allowed: {', '.join(allowed)}; "
                     "more with --allowed-host)")
    origin = headers.get(b"origin")
    if origin is not None:
        origin_host = urlsplit(origin.decode("latin-1")).hostname or ""
        if origin_host.lower() not in allowed:
            return 403, f"Origin {origin.decode('latin-1')[:100]!r} is not allowed here"
    if token is not None and not _authorized(headers.get(b"authorization", b""), token):
        given = headers.get(b"authorization")
        return 401, (f"{'wrong' if given else 'missing'} token: send Authorization: Bearer <the token of "
                     "--token-file>, or put it in the URL as http://openenv:<token>@host:port/...")
    return None


def _authorized(given: bytes, token: bytes) -> bool:
    """Bearer <token>, or Basic auth with the token as password: what OpenEnv's clients send for a URL with
    user info, since they take no headers."""
    scheme, _, credentials = given.partition(b" ")
    if scheme.lower() == b"bearer":
        return hmac.compare_digest(credentials.strip(), token)
    if scheme.lower() == b"basic":
        try:
            _, _, password = base64.b64decode(credentials.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(password, token)
    return False


class Guard:
    """Outermost layer, for HTTP and WebSocket alike; for HTTP it also turns any failure into a JSON error with
    no traceback."""

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...], token: str | None) -> None:
        self.app = app
        self.allowed = tuple(h.lower() for h in allowed_hosts)
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refused = refusal(dict(scope["headers"]), self.allowed, self.token)
        if refused is not None:
            status, reason = refused
            if scope["type"] == "websocket":
                await _deny_handshake(scope, receive, send, status, reason)
            else:
                headers = {"WWW-Authenticate": 'Bearer realm="envscaler"'} if status == 401 else None
                await JSONResponse({"detail": reason}, status_code=status, headers=headers)(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except OpenEnvError as exc:
            if not started:
                await _detail(exc.status, exc.message, exc.code)(scope, receive, send)
        except ApiError as exc:
            if not started:
                await _detail(exc.status, exc.reason)(scope, receive, send)
        except Exception:
            log.exception("openenv: unexpected failure on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await _detail(500, "internal error of the front door (logged)")(scope, receive, send)


async def _deny_handshake(scope: Scope, receive: Receive, send: Send, status: int, reason: str) -> None:
    """Refuse a WebSocket before it opens: an HTTP answer with the reason where the server can send one."""
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "websocket.http.response.body", "body": json.dumps({"detail": reason}).encode()})
    else:
        await send({"type": "websocket.close", "code": 1008})


# ---------------------------------------------------------------- JSON-RPC (OpenEnv's /mcp)

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR, SERVER_ERROR = \
    -32700, -32600, -32601, -32602, -32603, -32000
RPC_CODE_OF_TOOL_ERROR = {"tool_not_found": INVALID_PARAMS, "invalid_args": INVALID_PARAMS}


def rpc_error(code: int, message: str, request_id: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message, "data": None}}


def rpc_result(value: Any, request_id: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": value}


def rpc_request(value: Any) -> tuple[str, dict[str, Any], Any]:
    """(method, params, id) of a JSON-RPC 2.0 request; Invalid naming what is wrong."""
    if not isinstance(value, dict):
        raise Invalid(f"Invalid request: expected a JSON object, not {type(value).__name__}")
    if value.get("jsonrpc") != "2.0":
        raise Invalid("Invalid request: jsonrpc must be \"2.0\"")
    method, params, request_id = value.get("method"), value.get("params", {}), value.get("id")
    if not isinstance(method, str) or not method:
        raise Invalid("Invalid request: method must be a non-empty string")
    if not isinstance(params, dict):
        raise Invalid("Invalid request: params must be an object")
    if request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, str | int)):
        raise Invalid("Invalid request: id must be a string, an integer or null")
    if extra := sorted(set(value) - {"jsonrpc", "method", "params", "id"}):
        raise Invalid(f"Invalid request: unknown field(s) {extra}")
    return method, params, request_id


# ---------------------------------------------------------------- the app


def build_app(config: OpenEnvConfig, envs: dict[str, EnvEntry]) -> Starlette:
    """The app over the environments `envs` (the pool's ListEnvs); its lifespan opens the pool channel and ends
    every session (releasing its lease) on shutdown."""
    held: list[Sessions] = []  # the lifespan's (made there: its locks belong to the serving event loop)
    action_schema = TypeAdapter(Action).json_schema()

    def sessions() -> Sessions:
        return held[0]

    def env_of(env_id: str) -> EnvEntry:
        env = envs.get(env_id)
        if env is None:
            raise SessionFailed(f"unknown environment {env_id[:128]!r}; this pool serves {', '.join(sorted(envs))} "
                                "(GET /envs lists them)")
        return env

    async def run(session: Session, kind: str, data: Any) -> dict[str, Any] | None:
        """One WebSocket message's answer frame, or None for close. OpenEnvError for a refusal."""
        async with session.lock:
            session.touch()
            try:
                if kind == "reset":
                    return {"type": "observation", "data": await session.reset(parse_reset(data))}
                if kind == "step":
                    return {"type": "observation", "data": await session.step(parse_action(data))}
                if kind == "state":
                    return {"type": "state", "data": await session.state()}
                if kind == "mcp":
                    return {"type": "mcp", "data": await mcp(session.env, data, session)}
                return None  # close
            finally:
                session.touch()

    # ------------------------------------------------------------ WebSocket

    def open_session(env_id: str, on_end: Any) -> Session | OpenEnvError:
        try:
            return sessions().start(env_of(env_id), on_end=on_end)
        except OpenEnvError as exc:
            return exc

    async def ws_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()

        async def close_socket(why: str) -> None:
            # No frame of our own: every frame answers a message; the close reason says why.
            with contextlib.suppress(Exception):
                await websocket.close(code=1001, reason=f"session ended ({why}); its lease is back in the pool"[:120])

        opened = open_session(websocket.path_params["env_id"], close_socket)
        session = opened if isinstance(opened, Session) else None
        try:
            if isinstance(opened, OpenEnvError):
                # OpenEnv's server refuses a session (capacity, a bad factory) with an error frame, then closes:
                # here the frame answers the first message, so that a client that sends first still reads it.
                await websocket.receive()
                await websocket.send_text(json.dumps(opened.frame()))
                await websocket.close(code=1008)
                return
            assert session is not None
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text, binary = message.get("text"), message.get("bytes")
                raw: str | bytes = text if text is not None else binary or b""
                try:
                    kind, data = parse_message(raw)
                    frame = await run(session, kind, data)
                except OpenEnvError as exc:
                    frame = exc.frame()
                except Exception:
                    log.exception("openenv: unexpected failure in session %s", session.id[:8])
                    frame = {"type": "error", "data": {"message": "internal error of the front door (logged)",
                                                       "code": "EXECUTION_ERROR"}}
                if frame is None:
                    break
                await websocket.send_text(json.dumps(frame))
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away (mid-episode too): the lease goes back below
        finally:
            if session is not None:
                await sessions().end(session, "the WebSocket closed")
            with contextlib.suppress(Exception):
                await websocket.close()

    # ------------------------------------------------------------ JSON-RPC

    async def mcp(env: EnvEntry, body: Any, own: Session | None) -> dict[str, Any]:
        """One JSON-RPC request of OpenEnv's /mcp (HTTP) or its WebSocket `mcp` frame (own: that session)."""
        try:
            method, params, request_id = rpc_request(body)
        except Invalid as exc:
            return rpc_error(INVALID_REQUEST, exc.message, body.get("id") if isinstance(body, dict) else None)
        try:
            return rpc_result(await rpc_method(env, method, params, own), request_id)
        except RpcFailure as failure:
            return rpc_error(failure.code, failure.message, request_id)
        except OpenEnvError as exc:
            return rpc_error(SERVER_ERROR, exc.message, request_id)

    async def rpc_method(env: EnvEntry, method: str, params: dict[str, Any], own: Session | None) -> Any:
        if method == "tools/list":
            return {"tools": list(env.tools)}
        if method == "tools/call":
            return await rpc_call(env, params, own)
        if method == "openenv/session/create":
            if own is not None:
                return {"session_id": own.id}
            return await rpc_create(env, params)
        if method == "openenv/session/close":
            target = params.get("session_id")
            if not isinstance(target, str) or not target:
                raise RpcFailure(INVALID_PARAMS, "Invalid params - 'session_id' is required")
            if own is not None and target == own.id:
                raise RpcFailure(INVALID_REQUEST, "Cannot close active WebSocket-managed session via MCP method")
            await sessions().end(sessions().find(env.env_id, target), "closed by openenv/session/close")
            return {"session_id": target, "closed": True}
        raise RpcFailure(METHOD_NOT_FOUND, f"Method not found: {method[:100]}")

    async def rpc_create(env: EnvEntry, params: dict[str, Any]) -> dict[str, Any]:
        session = sessions().start(env)
        try:
            async with session.lock:
                reset = await session.reset(parse_reset(params))
        except BaseException:
            await sessions().end(session, "its reset failed")
            raise
        session.touch()
        observation = reset["observation"]
        return {"session_id": session.id, **{k: observation[k] for k in ("env_id", "scenario_id", "episode_id",
                                                                         "task")}}

    async def rpc_call(env: EnvEntry, params: dict[str, Any], own: Session | None) -> Any:
        name, arguments, session_id = params.get("name"), params.get("arguments", {}), params.get("session_id")
        if not isinstance(name, str) or not name:
            raise RpcFailure(INVALID_PARAMS, "Missing 'name' in params")
        if not isinstance(arguments, dict):
            raise RpcFailure(INVALID_PARAMS, "Invalid params - 'arguments' must be an object")
        if own is None and not isinstance(session_id, str):
            raise RpcFailure(INVALID_PARAMS, "tools/call needs params.session_id (an episode holds the tools' "
                                             "state): create one with openenv/session/create")
        session = own or sessions().find(env.env_id, str(session_id))
        if own is None:
            await session.lock.acquire()
        try:
            session.touch()
            step = await session.step(CallTool(tool_name=name, arguments=arguments))
        finally:
            session.touch()
            if own is None:
                session.lock.release()
        observation = step["observation"]
        if observation["error"] is not None:
            error = observation["error"]
            raise RpcFailure(RPC_CODE_OF_TOOL_ERROR.get(error["error_type"], INTERNAL_ERROR), error["message"])
        return observation["result"]

    # ------------------------------------------------------------ HTTP

    async def json_of(request: Request, *, default: Any = None) -> Any:
        body = await read_body(request, config.max_body)
        if not body and default is not None:
            return default
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidJson(f"request body is not JSON: {exc}") from None

    async def http_reset(request: Request) -> Response:
        env = env_of(request.path_params["env_id"])
        args = parse_reset(await json_of(request, default={}))
        session = sessions().start(env)
        try:
            return JSONResponse(await session.reset(args))
        finally:
            await sessions().end(session, "a stateless HTTP reset")

    async def http_step(request: Request) -> Response:
        env = env_of(request.path_params["env_id"])
        body = await json_of(request)
        if not isinstance(body, dict) or "action" not in body:
            raise Invalid("step: the body must be a JSON object with an action: {\"action\": {...}}")
        action = parse_action(body["action"])
        session = sessions().start(env)
        try:
            return JSONResponse(await session.step(action))
        finally:
            await sessions().end(session, "a stateless HTTP step")

    async def http_state(request: Request) -> Response:
        env = env_of(request.path_params["env_id"])
        return JSONResponse({"episode_id": None, "step_count": 0, "env_id": env.env_id, "scenario_id": None,
                             "done": False, "reward": None})

    async def http_mcp(request: Request) -> Response:
        env = env_of(request.path_params["env_id"])
        try:
            body = await json_of(request)
        except InvalidJson as exc:
            return JSONResponse(rpc_error(PARSE_ERROR, f"Parse error: {exc.message}"))
        return JSONResponse(await mcp(env, body, None))

    async def health(request: Request) -> Response:
        env_of(request.path_params["env_id"])
        return JSONResponse({"status": "healthy"})

    async def metadata(request: Request) -> Response:
        env = env_of(request.path_params["env_id"])
        return JSONResponse({"name": env.env_id, "description": env.summary, "readme_content": None,
                             "version": None, "author": None, "documentation_url": None})

    async def schema(request: Request) -> Response:
        env_of(request.path_params["env_id"])
        return JSONResponse({"action": action_schema, "observation": {"type": "object"},
                             "state": {"type": "object", "properties": {
                                 "episode_id": {"type": ["string", "null"]}, "step_count": {"type": "integer"}}}})

    async def list_envs(request: Request) -> Response:
        return JSONResponse({"envs": [{"env_id": e.env_id, "base_url": f"/envs/{e.env_id}", "summary": e.summary,
                                       "tools": [t["name"] for t in e.tools], "scenarios": list(e.scenario_ids)}
                                      for e in sorted(envs.values(), key=lambda e: e.env_id)]})

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            return _detail(405, f"{request.method} is not allowed on {request.url.path[:200]}")
        if exc.status_code == 404:
            return _detail(404, f"no route {request.method} {request.url.path[:200]}; each environment is served "
                                "at /envs/<env_id> (GET /envs lists them)")
        return _detail(exc.status_code, str(exc.detail))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        channel = grpc.aio.insecure_channel(target_of(config.pool), options=CHANNEL_OPTIONS)
        link = PoolLink(stub=ppb_grpc.PoolServiceStub(channel), address=config.pool,
                        acquire_wait=config.acquire_wait, timeout=config.timeout)
        held[:] = [Sessions(link, config.max_sessions, config.session_timeout)]
        reaper = asyncio.create_task(sessions().reap())
        try:
            yield
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
            await sessions().close()
            await channel.close()

    base = "/envs/{env_id}"
    routes = [
        Route("/envs", list_envs, methods=["GET"]),
        WebSocketRoute(base + "/ws", ws_endpoint),
        Route(base + "/reset", http_reset, methods=["POST"]),
        Route(base + "/step", http_step, methods=["POST"]),
        Route(base + "/state", http_state, methods=["GET"]),
        Route(base + "/mcp", http_mcp, methods=["POST"]),
        Route(base + "/health", health, methods=["GET"]),
        Route(base + "/metadata", metadata, methods=["GET"]),
        Route(base + "/schema", schema, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: not_found})
    app.add_middleware(_GuardMiddleware, allowed_hosts=config.allowed_hosts, token=config.token)
    return app


class RpcFailure(Exception):
    """A JSON-RPC error answer (its code and one-line message)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _GuardMiddleware(Guard):
    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...] = LOOPBACK, token: str | None = None) -> None:
        super().__init__(app, allowed_hosts, token)
