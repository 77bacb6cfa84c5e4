"""The cost of the isolation walls: the same environment image in two hardened
containers, one with the privilege split (environment code under its own uid; the
default) and one without (one uid; Landlock and non-dumpable processes still on),
measured interleaved in one run: Reset, CallTool and the end of a lease.

`.venv/bin/python -m bench.isolation` writes bench/results/isolation.{json,md}.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import grpc

from bench.machine import machine
from envscaler.client.env_client import EnvClient
from envscaler.containers import launch
from envscaler.containers.hardening import Hardening
from envscaler.images.build import build_envs, ensure_runtime
from envscaler.images.engine import connect
from envscaler.spec import load_corpus
from envscaler.v1 import env_pb2 as pb
from envscaler.v1 import env_pb2_grpc as pb_grpc

RESULTS = Path(__file__).resolve().parent / "results"
ENV_ID, SCENARIO, TOOL, ARGS = "env_1", "0115-091204", "search_books", {"query": "Pride"}
ROUNDS, BLOCK = 12, 25


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": statistics.median(ordered) * 1000, "p99_ms": ordered[int(0.99 * (len(ordered) - 1))] * 1000,
            "n": len(ordered)}


def main() -> None:
    engine = connect()
    runtime = ensure_runtime(engine, None, RESULTS / "isolation-images.log")
    (result,) = build_envs(engine, load_corpus(), runtime, [ENV_ID])
    variants = {"split (default)": Hardening(), "one uid (--no-privilege-split)": Hardening(privilege_split=False)}
    samples: dict[str, dict[str, list[float]]] = {v: {"reset": [], "call": [], "end_lease": []} for v in variants}
    with launch.running(engine, result.tag, "bench", variants["split (default)"]) as split, \
            launch.running(engine, result.tag, "bench", variants["one uid (--no-privilege-split)"]) as single:
        containers = {"split (default)": split, "one uid (--no-privilege-split)": single}
        clients = {v: EnvClient(c.address, session_socket=c.session_socket) for v, c in containers.items()}
        channels = {v: grpc.insecure_channel(c.address) for v, c in containers.items()}
        stubs = {v: pb_grpc.EnvServiceStub(ch) for v, ch in channels.items()}
        for _ in range(ROUNDS):
            for variant, client in clients.items():  # interleaved: both see the same machine at the same time
                for _ in range(BLOCK):
                    started = time.perf_counter()
                    client.reset(SCENARIO)
                    samples[variant]["reset"].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    client.call(TOOL, ARGS)
                    samples[variant]["call"].append(time.perf_counter() - started)
                started = time.perf_counter()
                stubs[variant].EndEpisode(pb.EndEpisodeRequest(), timeout=30)
                samples[variant]["end_lease"].append(time.perf_counter() - started)
        for client in clients.values():
            client.close()
        for channel in channels.values():
            channel.close()
    report = {v: {k: stats(s) for k, s in parts.items()} for v, parts in samples.items()}
    base = report["one uid (--no-privilege-split)"]
    lines = ["# The cost of the isolation walls", "", f"Machine: {machine()}. One run, interleaved.", "",
             "| path | split p50 | split p99 | one uid p50 | one uid p99 | split / one uid (p50) |",
             "|---|---:|---:|---:|---:|---:|"]
    for part, label in (("reset", "Reset"), ("call", "CallTool (session socket)"),
                        ("end_lease", "end of a lease (EndEpisode: sweep, fresh worker proven ready)")):
        mine, theirs = report["split (default)"][part], base[part]
        lines.append(f"| {label} | {mine['p50_ms']:.2f} ms | {mine['p99_ms']:.2f} ms | {theirs['p50_ms']:.2f} ms | "
                     f"{theirs['p99_ms']:.2f} ms | {mine['p50_ms'] / theirs['p50_ms']:.2f}x |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "isolation.json").write_text(json.dumps({"machine": machine(), **report}, indent=2))
    (RESULTS / "isolation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
