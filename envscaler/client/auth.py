"""The channel a client opens: plaintext or TLS (trusting a CA file), with a bearer token on every call.

`token` and `ca_file` default to ENVSCALER_TOKEN and ENVSCALER_CA_FILE. A token is sent in the clear only to this
machine (a Unix socket, loopback): elsewhere it needs TLS, or it is refused here before anything is sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from envscaler.protocol.auth import CA_FILE_ENV, METADATA_KEY, TOKEN_ENV, is_loopback, read_ca


@dataclass(frozen=True)
class ChannelSecurity:
    token: str = ""
    root_certificates: bytes | None = None  # PEM; None: plaintext


def security_of(address: str, token: str | None = None, ca_file: str | None = None,
                root_certificates: bytes | None = None) -> ChannelSecurity:
    """What a client of `address` sends and trusts; ValueError (one line) for a CA it cannot read, or a token that
    would cross the network in the clear."""
    token = os.environ.get(TOKEN_ENV, "") if token is None else token
    ca_file = os.environ.get(CA_FILE_ENV, "") if ca_file is None else ca_file
    if root_certificates is None and ca_file:
        root_certificates = read_ca(ca_file)
    if token and root_certificates is None and not is_loopback(address):
        raise ValueError(f"a token goes to {address} only over TLS: pass ca_file= (or set {CA_FILE_ENV}) with the CA "
                         "that signed the server's certificate")
    return ChannelSecurity(token.strip(), root_certificates)


def _with_token(details: Any, token: str) -> Any:
    metadata = [*(details.metadata or ()), (METADATA_KEY, f"Bearer {token}")]
    return details._replace(metadata=metadata)


class _Token(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
             grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    def __init__(self, token: str) -> None:
        self.token = token

    def _call(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(_with_token(details, self.token), request)

    # One behaviour for the four kinds (the stubs type each kind's own signature).
    intercept_unary_unary = intercept_unary_stream = _call  # type: ignore[assignment]
    intercept_stream_unary = intercept_stream_stream = _call  # type: ignore[assignment]


class _AsyncToken:
    def __init__(self, token: str) -> None:
        self.token = token

    async def _call(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        # grpc.aio's own Metadata type: its streaming calls take nothing else
        metadata = grpc.aio.Metadata(*(details.metadata or ()), (METADATA_KEY, f"Bearer {self.token}"))
        return await continuation(details._replace(metadata=metadata), request)


# grpc.aio files each interceptor under one kind only (the first it is an instance of): one object per kind.
class _AsyncUnaryUnary(_AsyncToken, grpc.aio.UnaryUnaryClientInterceptor):
    intercept_unary_unary = _AsyncToken._call  # type: ignore[assignment]


class _AsyncUnaryStream(_AsyncToken, grpc.aio.UnaryStreamClientInterceptor):
    intercept_unary_stream = _AsyncToken._call  # type: ignore[assignment]


class _AsyncStreamUnary(_AsyncToken, grpc.aio.StreamUnaryClientInterceptor):
    intercept_stream_unary = _AsyncToken._call  # type: ignore[assignment]


class _AsyncStreamStream(_AsyncToken, grpc.aio.StreamStreamClientInterceptor):
    intercept_stream_stream = _AsyncToken._call  # type: ignore[assignment]


def _async_interceptors(token: str) -> list[grpc.aio.ClientInterceptor] | None:
    kinds = (_AsyncUnaryUnary, _AsyncUnaryStream, _AsyncStreamUnary, _AsyncStreamStream)
    return [kind(token) for kind in kinds] if token else None


def open_channel(target: str, security: ChannelSecurity, options: list[tuple[str, Any]]) -> grpc.Channel:
    """A channel to a gRPC `target` (as grpc writes it) with `security`."""
    if security.root_certificates is not None:
        credentials = grpc.ssl_channel_credentials(root_certificates=security.root_certificates)
        channel = grpc.secure_channel(target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    return grpc.intercept_channel(channel, _Token(security.token)) if security.token else channel


def open_aio_channel(target: str, security: ChannelSecurity,
                     options: list[tuple[str, Any]]) -> grpc.aio.Channel:
    interceptors = _async_interceptors(security.token)
    if security.root_certificates is not None:
        credentials = grpc.ssl_channel_credentials(root_certificates=security.root_certificates)
        return grpc.aio.secure_channel(target, credentials, options=options, interceptors=interceptors)
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
