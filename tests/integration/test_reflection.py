"""A pool answers gRPC server reflection; a client that knows nothing of our protos (it builds its messages from the
descriptors reflection serves, as grpcurl does) solves a bundled scenario through it: the proof for any language."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from envscaler.pool.runner import LocalPool, PoolOptions
from tests.conftest import SOLUTIONS

pytestmark = pytest.mark.integration

CLIENT = Path(__file__).resolve().parent.parent / "reflection_client.py"


def test_a_protoless_client_solves_a_scenario_through_a_pool(example_images: dict[str, str]) -> None:
    with LocalPool(options=PoolOptions(size=1, only=["env_4"])) as local:
        with grpc.insecure_channel(local.address) as channel:
            assert sorted(ProtoReflectionDescriptorDatabase(channel).get_services()) == [
                "envscaler.v1.PoolService", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"]
        calls = sorted(SOLUTIONS.glob("env_4__*.jsonl"))[0]
        scenario = calls.stem.split("__")[1]
        done = subprocess.run([sys.executable, str(CLIENT), local.address, "env_4", scenario, str(calls)],
                              capture_output=True, text=True, timeout=180, check=False)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["reward"] == 1.0
        local.wait_ready(1, 30)  # released: the container comes back to the pool
