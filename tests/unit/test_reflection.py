"""`serve` answers gRPC server reflection, and a client that knows nothing of our protos solves a scenario with
what it serves (the pool's twin is tests/integration/test_reflection.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from tests.conftest import SOLUTIONS

CLIENT = Path(__file__).resolve().parent.parent / "reflection_client.py"


def test_serve_lists_its_services_and_a_protoless_client_solves_a_scenario(sock_dir: Path) -> None:
    sock = sock_dir / "env.sock"
    process = subprocess.Popen([sys.executable, "-m", "envscaler.cli", "serve", "--env", "env_2", "--listen",
                                f"unix:{sock}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None and "not a container" in process.stdout.readline()
        assert "serving env_2" in process.stdout.readline()
        with grpc.insecure_channel(f"unix:{sock}") as channel:
            assert sorted(ProtoReflectionDescriptorDatabase(channel).get_services()) == [
                "envscaler.v1.EnvService", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"]
        done = subprocess.run([sys.executable, str(CLIENT), f"unix:{sock}", "env_2", "0310-081522",
                               str(SOLUTIONS / "env_2__0310-081522.jsonl")],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["reward"] == 1.0
    finally:
        process.kill()
        process.wait()

