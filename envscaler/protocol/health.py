"""Is a server SERVING (grpc.health.v1)? Asked by the pool before it hands out a container, and by the image's
HEALTHCHECK: `python -m envscaler.protocol.health ADDRESS` exits 0 when it is (no shell, no extra tool)."""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from envscaler.protocol.addresses import SOCKET


def check(address: str, timeout: float = 2.0) -> bool:
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


if __name__ == "__main__":
    sys.exit(0 if check(sys.argv[1] if len(sys.argv) > 1 else f"unix:{SOCKET}") else 1)
