"""The cost of the isolation walls: the same environment image in two hardened
containers, one with the privilege split (environment code under its own uid; the
default) and one without (one uid; Landlock and non-dumpable processes still on),
measured interleaved in one run: Reset, CallTool and the end of a lease.

`.venv/bin/python -m bench.isolation [--baseline-image TAG]` writes bench/results/isolation.{json,md};
with a baseline (env_1's image built from an earlier checkout's runtime), that image
joins the same interleaved run, started as it was then (one uid, no capabilities).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
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
SPLIT, ONE_UID, BASELINE = "split (default)", "one uid", "before (1f3169b)"
ENV_ID, SCENARIO, TOOL, ARGS = "env_1", "0115-091204", "search_books", {"query": "Pride"}
ROUNDS, BLOCK = 12, 25


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": statistics.median(ordered) * 1000, "p99_ms": ordered[int(0.99 * (len(ordered) - 1))] * 1000,
            "n": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.isolation", description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-image", help="env_1's image on an earlier runtime, to compare against")
    parser.add_argument("--baseline-label", default=BASELINE, help="its column's name (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="leases per variant (default: %(default)s)")
    parser.add_argument("--baseline-split", action="store_true",
                        help="start the baseline split, as the default is (not one uid, as before the split)")
    args = parser.parse_args()
    engine = connect()
    runtime = ensure_runtime(engine, None, Path(tempfile.gettempdir()) / "envscaler-bench-images.log")
    (result,) = build_envs(engine, load_corpus(), runtime, [ENV_ID])
    variants = {SPLIT: (result.tag, Hardening()), ONE_UID: (result.tag, Hardening(privilege_split=False))}
    if args.baseline_image:
        variants[args.baseline_label] = (args.baseline_image, Hardening(privilege_split=args.baseline_split))
    samples: dict[str, dict[str, list[float]]] = {v: {"reset": [], "call": [], "end_lease": []} for v in variants}
    with contextlib.ExitStack() as stack:
        containers = {v: stack.enter_context(launch.running(engine, image, "bench", hardening))
                      for v, (image, hardening) in variants.items()}
        clients = {v: EnvClient(c.address, session_socket=c.session_socket) for v, c in containers.items()}
        channels = {v: grpc.insecure_channel(c.address) for v, c in containers.items()}
        stubs = {v: pb_grpc.EnvServiceStub(ch) for v, ch in channels.items()}
        for _ in range(args.rounds):
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
    base = args.baseline_label if args.baseline_label in report else ONE_UID
    lines = ["# The cost of the isolation walls", "", f"Machine: {machine()}. One run, interleaved.", "",
             "| path | " + " | ".join(f"{v} p50 | {v} p99" for v in report) + f" | split / {base} (p50) |",
             "|---|" + "---:|---:|" * len(report) + "---:|"]
    for part, label in (("reset", "Reset"), ("call", "CallTool (session socket)"),
                        ("end_lease", "end of a lease (EndEpisode)")):
        cells = " | ".join(f"{report[v][part]['p50_ms']:.2f} ms | {report[v][part]['p99_ms']:.2f} ms" for v in report)
        lines.append(f"| {label} | {cells} | {report[SPLIT][part]['p50_ms'] / report[base][part]['p50_ms']:.2f}x |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "isolation.json").write_text(json.dumps({"machine": machine(), **report}, indent=2))
    (RESULTS / "isolation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
