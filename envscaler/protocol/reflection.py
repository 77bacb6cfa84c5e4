"""gRPC server reflection (grpcio-reflection) for the host-side servers, `serve` and `pool`: any gRPC client
(grpcurl, Postman, a client in any language) can discover the services and build their messages without our protos.

grpcio-reflection is a host-side dependency: the runtime image does not ship it, and the sandbox's server imports this
module only when `serve` asks for reflection on the host (in a container only the pool talks to the server).
"""

from __future__ import annotations

from typing import Any

from grpc_health.v1 import health
from grpc_reflection.v1alpha import reflection


def enable_reflection(server: Any, *services: str) -> None:
    """Serve reflection for `services` (full names), health and reflection itself; sync or asyncio server."""
    reflection.enable_server_reflection((*services, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
