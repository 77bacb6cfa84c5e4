"""A gRPC client that knows nothing of envscaler's protos: like grpcurl, it asks the server's reflection service for
the descriptors, builds its messages from them and solves a scenario through a pool. Run as a script, in a process
that never imports envscaler (it checks), so this is what a client in any other language can do.

    python reflection_client.py ADDRESS ENV_ID SCENARIO_ID CALLS.jsonl   ->  prints {"services": [...], "reward": R}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

POOL_SERVICE = "envscaler.v1.PoolService"
ENV_SERVICE = "envscaler.v1.EnvService"


class ReflectedService:
    """Unary methods of one service, with request and response classes made from reflected descriptors."""

    def __init__(self, channel: grpc.Channel, name: str) -> None:
        self.database = ProtoReflectionDescriptorDatabase(channel)
        self.pool = descriptor_pool.DescriptorPool(self.database)
        self.service = self.pool.FindServiceByName(name)
        self.channel = channel

    def call(self, method: str, request: dict[str, Any]) -> dict[str, Any]:
        descriptor = self.service.methods_by_name[method]
        request_class = message_factory.GetMessageClass(descriptor.input_type)
        response_class = message_factory.GetMessageClass(descriptor.output_type)
        stub = self.channel.unary_unary(f"/{self.service.full_name}/{method}",
                                        request_serializer=request_class.SerializeToString,
                                        response_deserializer=response_class.FromString)
        reply = stub(json_format.ParseDict(request, request_class()), timeout=60)
        return json_format.MessageToDict(reply, preserving_proto_field_name=True)


def main(address: str, env_id: str, scenario: str, calls_path: str) -> None:
    """Through a pool (PoolService: lease, wrapped requests) or one server (EnvService), whichever it serves."""
    with grpc.insecure_channel(address) as channel:
        services = sorted(ProtoReflectionDescriptorDatabase(channel).get_services())
        if POOL_SERVICE in services:
            service = ReflectedService(channel, POOL_SERVICE)
            lease = service.call("Acquire", {"env_id": env_id, "scenario_id": scenario})
            episode = lease["reset"]["episode_id"]

            def wrap(request: dict[str, Any]) -> dict[str, Any]:
                return {"lease_id": lease["lease_id"], "request": request}

            def end() -> None:
                service.call("Release", {"lease_id": lease["lease_id"]})
        else:
            service = ReflectedService(channel, ENV_SERVICE)
            episode = service.call("Reset", {"scenario_id": scenario})["episode_id"]

            def wrap(request: dict[str, Any]) -> dict[str, Any]:
                return request

            def end() -> None:
                service.call("EndEpisode", {})
        try:
            for line in Path(calls_path).read_text().splitlines():
                call = json.loads(line)
                reply = service.call("CallTool", wrap({"episode_id": episode, "name": call["name"],
                                                       "arguments_json": json.dumps(call["arguments"])}))
                if "error" in reply:
                    raise SystemExit(f"{call['name']}: {reply['error']}")
            evaluation = service.call("Evaluate", wrap({"episode_id": episode}))
        finally:
            end()
    assert not any(name.startswith("envscaler") for name in sys.modules), "the client imported envscaler"
    print(json.dumps({"services": services, "reward": evaluation.get("reward", 0.0)}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
