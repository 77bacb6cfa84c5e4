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


# Methods only PoolService has: UNIMPLEMENTED on one of them means the address is not a pool.
POOL_METHODS = frozenset({"Acquire", "Release", "Renew", "ListEnvs", "Stats"})


def wrong_server(method: str, code: str, details: str) -> str:
    """One line naming the mistake when a client reached the wrong kind of server; '' when it did not."""
    if code == "UNAVAILABLE" and ("Failed parsing HTTP/2" in details or "Expected SETTINGS frame" in details):
        return ("the server at this address does not speak gRPC (an HTTP/1 server, such as a pool's metrics "
                "port?): give the pool's --listen address")
    if code == "UNIMPLEMENTED":
        if method in POOL_METHODS:
            return ("this address serves no envscaler.v1.PoolService, so it is not a pool (an environment server? "
                    "use EnvClient there, or give the address of `envscaler-runtime pool`)")
        return ("this address serves no envscaler.v1.EnvService, so it is not an environment server (a pool? "
                "use Pool(address).session(env_id) there)")
    return ""


def wrap_rpc_error(method: str, exc: grpc.RpcError) -> EnvClientError:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    name = code.name if code else "UNKNOWN"
    return EnvClientError(method, name, wrong_server(method, name, details or "") or details or "")
