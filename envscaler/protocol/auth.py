"""Who may call a server over TCP: a bearer token, checked on every RPC, and TLS.

A server that listens where other machines can reach it (TCP, not loopback) needs both: the token says who may call,
TLS keeps the token (and every lease's data) off the wire in the clear. Unix sockets and loopback are guarded by the
host itself (file modes, the machine's own users) and may go without. The pool (grpc.aio) and `serve` (grpc, sync)
check the token with the same function; clients send it as `authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

TOKEN_ENV = "ENVSCALER_TOKEN"  # what clients send when not given a token
CA_FILE_ENV = "ENVSCALER_CA_FILE"  # the CA clients trust when not given one
METADATA_KEY = "authorization"
MIN_TOKEN_CHARS = 16
NO_TOKEN = f"this server requires a bearer token: pass token= (or set {TOKEN_ENV})"
WRONG_TOKEN = "the bearer token is not this server's"


def is_loopback(address: str) -> bool:
    """Whether only this machine can reach an address (unix:/path, tcp:HOST:PORT, HOST:PORT): a Unix socket, a
    loopback IP or `localhost`. Any other name, and the wildcard addresses, count as reachable from elsewhere."""
    if address.startswith("unix:"):
        return True
    host = address.removeprefix("tcp:").rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(path: str | Path) -> str:
    """The token in a file (surrounding whitespace dropped); ValueError naming the file when it is unusable."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--token-file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() or not c.isprintable() for c in token):
        raise ValueError(f"--token-file {path}: expected one line of at least {MIN_TOKEN_CHARS} printable characters "
                         f"without spaces (e.g. `openssl rand -hex 32 > {path}`)")
    return token


def _read_pem(flag: str, path: str, marker: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"{flag} {path}: {exc.strerror or exc}") from None
    if marker.encode() not in data:
        raise ValueError(f"{flag} {path}: not a PEM file with a {marker.lower()} in it")
    return data


def read_ca(path: str | Path) -> bytes:
    """A CA file's PEM certificates, for a client to trust."""
    return _read_pem("ca_file", str(path), "CERTIFICATE")


@dataclass(frozen=True)
class ServerSecurity:
    """What a server enforces: a token ('' for none) and TLS credentials (None: plaintext)."""

    token: str = ""
    credentials: grpc.ServerCredentials | None = None


def server_security(address: str, token_file: str = "", tls_cert: str = "", tls_key: str = "") -> ServerSecurity:
    """The token and TLS a server at `address` runs with; ValueError (one line, naming what to add) when an address
    other machines can reach would go without either."""
    if bool(tls_cert) != bool(tls_key):
        raise ValueError("TLS takes both --tls-cert and --tls-key")
    missing = [flag for flag, given in (("--token-file PATH", token_file), ("--tls-cert/--tls-key", tls_cert))
               if not given]
    if missing and not is_loopback(address):
        raise ValueError(f"{address} is reachable from other machines: add {' and '.join(missing)} (or listen on "
                         "127.0.0.1 or a unix: socket)")
    token = read_token(token_file) if token_file else ""
    credentials = None
    if tls_cert:
        pair = (_read_pem("--tls-key", tls_key, "PRIVATE KEY"), _read_pem("--tls-cert", tls_cert, "CERTIFICATE"))
        credentials = grpc.ssl_server_credentials([pair])
    return ServerSecurity(token, credentials)


def refusal(metadata: Iterable[Any] | None, token: str) -> str:
    """Why a call's metadata does not carry `token` ('' : it does). Constant time in the token's contents."""
    sent = [value for key, value in (metadata or ()) if key == METADATA_KEY]
    if not sent:
        return NO_TOKEN
    value = sent[0] if isinstance(sent[0], bytes) else str(sent[0]).encode()
    return "" if hmac.compare_digest(value, f"Bearer {token}".encode()) else WRONG_TOKEN


if TYPE_CHECKING:  # generic only in the stubs
    Handler = grpc.RpcMethodHandler[Any, Any]
_FACTORIES = {(False, False): grpc.unary_unary_rpc_method_handler,
              (False, True): grpc.unary_stream_rpc_method_handler,
              (True, False): grpc.stream_unary_rpc_method_handler,
              (True, True): grpc.stream_stream_rpc_method_handler}


def _shaped(handler: Handler | None, behaviour: Callable[..., Any]) -> Handler:
    """A handler of the same kind (and (de)serializers) as `handler` that runs `behaviour` instead."""
    if handler is None:  # an unknown method: refused the same way, so the unauthenticated learn nothing
        return grpc.stream_stream_rpc_method_handler(behaviour)
    factory = _FACTORIES[(handler.request_streaming, handler.response_streaming)]
    return factory(behaviour, request_deserializer=handler.request_deserializer,
                   response_serializer=handler.response_serializer)


class TokenInterceptor(grpc.ServerInterceptor):
    """For grpc's sync server (`serve`): every RPC without the token ends UNAUTHENTICATED, before its handler runs."""

    def __init__(self, token: str) -> None:
        self.token = token

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
                          handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        handler = continuation(handler_call_details)
        why = refusal(handler_call_details.invocation_metadata, self.token)
        if not why:
            return handler

        def refuse(_request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, why)

        return _shaped(handler, refuse)


class AsyncTokenInterceptor(grpc.aio.ServerInterceptor):
    """The same for grpc.aio servers (the pool)."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
            handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        handler = await continuation(handler_call_details)
        why = refusal(handler_call_details.invocation_metadata, self.token)
        if not why:
            return handler

        async def refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, why)

        return _shaped(handler, refuse)
