"""The pool at scale: N containers from nothing to ready, then N concurrent sessions for a while.

    .venv/bin/python -m bench.scale [--containers 256] [--seconds 60]

One `envscaler-runtime pool --size N` process (bench.pool's RunningPool); then N sessions at once, one lease per
container, each running its scenario's solution over and over (Reset, the solution's tool calls, Evaluate) through
the pool's session socket. Reported: seconds to all ready; episodes, calls and errors (any exception, any failed
tool call, any reward other than 1); the memory of the pool's containers (sum of their cgroups) and of the pool
process, sampled every few seconds during the run, so "flat" is read off the samples; and the idle memory per
container before the run and after it (leases released). Writes bench/results/scale.json and scale.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

from bench.machine import machine
from bench.pool import SOLUTIONS, RunningPool, container_memory_mib
from envscaler.client.pool_client import AsyncPool
from envscaler.images.engine import connect
from envscaler.pool.runner import PoolOptions, build_images
from envscaler.spec import load_corpus

RESULTS = Path(__file__).resolve().parent / "results"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def plans(corpus: Any) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """Per environment: a scenario whose solution solves it, and that solution's calls."""
    out = []
    for env_id, scenarios in sorted(corpus.scenarios.items()):
        for task_id in scenarios:
            path = SOLUTIONS / f"{env_id}__{task_id}.jsonl"
            if path.exists():
                out.append((env_id, task_id, [json.loads(line) for line in path.read_text().splitlines()]))
                break
    return out


def settled(sums: list[float]) -> tuple[float, float]:
    """The containers' memory at half-time and at the end: each lease's first episode (and the interpreter its
    container starts for the next lease) takes the first seconds; "flat" is what comes after."""
    return (sums[len(sums) // 2], sums[-1]) if sums else (float("nan"), float("nan"))


def memory(pool: RunningPool, engine: Any) -> dict[str, float]:
    per_container = [container_memory_mib(c.id) for c in pool.containers(engine)]
    return {"containers": len(per_container), "sum_mib": sum(per_container),
            "median_mib": statistics.median(per_container) if per_container else float("nan"),
            "pool_process_mib": rss_mib(pool.process.pid)}


async def load(pool: RunningPool, engine: Any, corpus: Any, sessions: int, seconds: float,
               sample_every: float) -> dict[str, Any]:
    work = plans(corpus)
    counts = {"episodes": 0, "calls": 0, "errors": 0}
    errors: list[str] = []
    samples: list[dict[str, float]] = []

    def failed(what: str) -> None:
        counts["errors"] += 1
        if len(errors) < 10:
            errors.append(what[:300])

    async with AsyncPool(pool.listen, timeout=120) as client:
        leases = await asyncio.gather(*(client.acquire(work[i % len(work)][0], wait=300) for i in range(sessions)))
        until = time.perf_counter() + seconds

        async def run(i: int) -> None:
            env_id, task_id, calls = work[i % len(work)]
            session = leases[i]
            while time.perf_counter() < until:
                try:
                    await session.reset(task_id)
                    for call in calls:
                        result = await session.call(call["name"], call["arguments"])
                        counts["calls"] += 1
                        if not result.ok:
                            failed(f"{env_id}.{call['name']}: {result.error_kind} {result.error_message}")
                    evaluation = await session.evaluate()
                    if evaluation.reward != 1.0:
                        why = "; ".join(f"{c.outcome} {c.message[:120]}" for c in evaluation.checks
                                        if c.outcome != "PASS")
                        failed(f"{env_id}/{task_id}: reward {evaluation.reward} ({why})")
                    counts["episodes"] += 1
                except Exception as exc:  # counted and shown, the run goes on
                    failed(f"{env_id}: {type(exc).__name__}: {exc}")

        async def sample() -> None:
            while time.perf_counter() < until:
                samples.append({"t": seconds - (until - time.perf_counter()),
                                 **await asyncio.to_thread(memory, pool, engine)})
                await asyncio.sleep(sample_every)

        started = time.perf_counter()
        await asyncio.gather(sample(), *(run(i) for i in range(sessions)))
        elapsed = time.perf_counter() - started
        await asyncio.gather(*(lease.release() for lease in leases))
    return {**counts, "seconds": elapsed, "calls_per_s": counts["calls"] / elapsed, "error_samples": errors,
            "memory_samples": samples}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    engine = connect()
    corpus = load_corpus()
    build_images(engine, corpus, PoolOptions(), Path("/tmp/bench-images.log"))
    result: dict[str, Any] = {"machine": machine(), "containers": args.containers, "sessions": args.containers}
    async with RunningPool(args.containers) as pool:
        result["time_to_ready_s"] = await pool.wait_ready(args.containers)
        await asyncio.sleep(3)
        result["idle_before"] = await asyncio.to_thread(memory, pool, engine)
        result["load"] = await load(pool, engine, corpus, args.containers, args.seconds, args.sample_every)
        await asyncio.sleep(3)
        result["idle_after"] = await asyncio.to_thread(memory, pool, engine)
    return result


def report(result: dict[str, Any]) -> str:
    run, before, after = result["load"], result["idle_before"], result["idle_after"]
    sums = [s["sum_mib"] for s in run["memory_samples"]]
    lines = [f"Machine: {result['machine']}", "",
             f"### {result['containers']} containers, then {result['sessions']} concurrent sessions for "
             f"{run['seconds']:.0f} s", "",
             "| figure | value |", "|---|---:|",
             f"| from nothing to {result['containers']} ready | {result['time_to_ready_s']:.1f} s |",
             f"| episodes (Reset, the solution's calls, Evaluate) | {run['episodes']} |",
             f"| tool calls | {run['calls']} ({run['calls_per_s']:.0f}/s) |",
             f"| errors (exceptions, failed calls, rewards below 1) | {run['errors']} |",
             f"| idle memory per container before the run (cgroup median) | {before['median_mib']:.1f} MiB |",
             f"| idle memory per container after the run, leases released | {after['median_mib']:.1f} MiB |",
             f"| pool process RSS before / after | {before['pool_process_mib']:.0f} / "
             f"{after['pool_process_mib']:.0f} MiB |"]
    if sums:
        half, last = settled(sums)
        lines.append(f"| all containers' memory during the run: first sample / at half-time / last (max) | "
                     f"{sums[0]:.0f} / {half:.0f} / {last:.0f} MiB ({max(sums):.0f}), {len(sums)} samples |")
    if run["error_samples"]:
        lines += ["", "First errors:", ""] + [f"- `{e}`" for e in run["error_samples"]]
    lines += ["", "| t (s) | containers | sum MiB | median MiB | pool process MiB |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {s['t']:.0f} | {s['containers']:.0f} | {s['sum_mib']:.0f} | {s['median_mib']:.1f} | "
              f"{s['pool_process_mib']:.0f} |" for s in run["memory_samples"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=256, help="containers and concurrent sessions")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between memory samples")
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(result, indent=2) + "\n")
    text = report(result)
    (RESULTS / "scale.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
