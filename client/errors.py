"""The one error type clients raise, whatever the transport."""

from __future__ import annotations

import grpc


class EnvClientError(RuntimeError):
    """A call the server refused or could not complete; `code` is the gRPC status name."""

    def __init__(self, method: str, code: str, details: str) -> None:
        super().__init__(f"{method}: {code}: {details}")
        self.method = method
        self.code = code
        self.details = details


def wrap_rpc_error(method: str, exc: grpc.RpcError) -> EnvClientError:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return EnvClientError(method, code.name if code else "UNKNOWN", details or "")
