"""gRPC server reflection (grpcio-reflection) for the host-side servers, `serve` and `pool`: any gRPC client
(grpcurl, Postman, a client in any language) can discover the services and build their messages without our protos.

Host side (here, out of the runtime image); `serve` imports it only when asked. The sandbox's own server does not
get it: only the pool talks to it, over a private socket, and reflection would add a service to the trusted server
(and a package to the runtime image) that nothing there uses.
"""

from __future__ import annotations

from typing import Any

from grpc_health.v1 import health
from grpc_reflection.v1alpha import reflection


def enable_reflection(server: Any, *services: str) -> None:
    """Serve reflection for `services` (full names), health and reflection itself; sync or asyncio server."""
    reflection.enable_server_reflection((*services, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
