"""The whole benchmark report in one run: `.venv/bin/python -m bench`.

Runs bench.env_server, bench.build and bench.pool (each against floors measured
in the same run), then writes bench/results/REPORT.md: the tables and the
targets, met or missed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.machine import machine

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ["bench.env_server", "bench.build", "bench.pool"]


def targets() -> list[tuple[str, str, bool]]:
    env = json.loads((RESULTS / "env_server.json").read_text())
    build = json.loads((RESULTS / "build.json").read_text())
    pool = json.loads((RESULTS / "pool.json").read_text())
    floor = pool["grpc_echo_floor"]["p50_ms"]
    ratio_pool = pool["call_through_pool"]["p50_ms"] / floor
    ratio_direct = pool["call_direct_envservice"]["p50_ms"] / floor
    reset_ms = env["reset"]["p50_us"] / 1000
    cold_ratio = pool["docker_run_until_serving"]["p50_ms"] / pool["reset_through_pool"]["p50_ms"]
    acquire = pool["warm_acquire"]["p50_ms"]
    ready = pool["time_to_ready_s"].get("64", float("nan"))
    memory = pool["idle_memory_mib"]["median"]
    throughput = pool["throughput_calls_per_s"].get("64", 0.0) / pool["aio_echo_throughput_64"]
    direct_throughput = pool["throughput_direct_calls_per_s"].get("64", 0.0) / pool["aio_echo_throughput_64"]
    per_env = build["cold_per_env_s"]["p50"]
    openenv = pool.get("openenv_ws", {}).get("p50_ms")
    openenv_ratio = openenv / pool["call_direct_envservice"]["p50_ms"] if openenv else 0.0
    return [
        ("round trip through the pool <= 2.0x the gRPC floor p50", f"{ratio_pool:.2f}x", ratio_pool <= 2.0),
        ("round trip to an EnvService (a lease's direct route) <= 1.3x the gRPC floor p50", f"{ratio_direct:.2f}x",
         ratio_direct <= 1.3),
        ("Reset <= 5 ms p50", f"{reset_ms:.2f} ms", reset_ms <= 5.0),
        ("Reset >= 40x faster than a fresh container", f"{cold_ratio:.0f}x", cold_ratio >= 40),
        ("warm acquire <= 2 ms p50", f"{acquire:.2f} ms", acquire <= 2.0),
        ("64 containers ready <= 20 s", f"{ready:.1f} s", ready <= 20.0),
        ("idle memory <= 30 MiB per container", f"{memory:.1f} MiB", memory <= 30.0),
        ("throughput at 64 sessions >= 1.0x a grpc.aio echo server", f"{throughput:.2f}x", throughput >= 1.0),
        ("  the same, by direct routes", f"{direct_throughput:.2f}x", direct_throughput >= 1.0),
        ("<= 0.5 s per environment build", f"{per_env:.3f} s", per_env <= 0.5),
        ("faster than openenv-core on the same environment by >= 3x (direct route)",
         f"{openenv_ratio:.1f}x" if openenv else "not measured", openenv_ratio >= 3.0),
    ]


def main() -> None:
    for part in PARTS:
        print(f"==> {part}", flush=True)
        subprocess.run([sys.executable, "-m", part], check=True)
    lines = ["# Benchmark report", "", f"Machine: {machine()}. Every ratio below comes from this one run.", "",
             "## Targets", "", "| target | measured | met |", "|---|---:|:---:|"]
    lines += [f"| {name} | {value} | {'yes' if ok else 'no'} |" for name, value, ok in targets()]
    for part, title in (("env_server", "One EnvService"), ("pool", "The pool"), ("build", "Builds")):
        body = (RESULTS / f"{part}.md").read_text().split("\n", 2)[2]  # drop the repeated machine line
        lines += ["", f"## {title}", "", body.strip()]
    (RESULTS / "REPORT.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
