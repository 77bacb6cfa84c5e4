"""A soak at overload: more sessions than the machine serves at full speed, for a long time, with containers killed
mid-call. Not in CI (it takes the machine for its whole run).

    .venv/bin/python -m bench.soak [--containers 64] [--sessions 256] [--minutes 30] [--kills 200]

One `envscaler-runtime pool --size N` process (bench.pool's RunningPool), then `--sessions` clients, each in a loop:
Acquire (waiting as long as it takes: there are more sessions than containers), a few episodes in that lease (Reset,
the scenario's solution, Evaluate), Release. Every `--minutes * 60 / --kills` seconds the benchmark kills the
container of a lease that is in use (`docker kill`, found from the lease's route socket). Reported, per window of
`--sample-every` seconds: episodes, errors by kind, call and episode latency p50/p99, and the memory of the
containers, the pool process and this process. An episode whose container was killed must fail (its own error);
anything else that fails is an infrastructure error, and the goal is 0. Writes bench/results/soak.json and soak.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.machine import machine
from bench.pool import RunningPool, container_memory_mib
from bench.scale import plans, rss_mib
from envscaler.client.pool_client import AsyncPool
from envscaler.images.engine import connect
from envscaler.pool.runner import PoolOptions, build_images
from envscaler.spec import load_corpus

RESULTS = Path(__file__).resolve().parent / "results"
EPISODES_PER_LEASE = 4  # as a trainer holds a lease for a few episodes of one environment


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Window:
    """What happened in one sampling window."""

    def __init__(self) -> None:
        self.episodes = 0
        self.killed = 0
        self.errors: Counter[str] = Counter()
        self.calls_ms: list[float] = []
        self.episodes_ms: list[float] = []

    def row(self, t: float, memory: dict[str, float]) -> dict[str, Any]:
        return {"t": t, "episodes": self.episodes, "killed": self.killed, "errors": dict(self.errors),
                "call_p50_ms": pct(self.calls_ms, 0.5), "call_p99_ms": pct(self.calls_ms, 0.99),
                "episode_p50_ms": pct(self.episodes_ms, 0.5), "episode_p99_ms": pct(self.episodes_ms, 0.99),
                **memory}


async def soak(pool: RunningPool, engine: Any, corpus: Any, args: argparse.Namespace) -> dict[str, Any]:
    work = plans(corpus)
    seconds = args.minutes * 60
    until = time.perf_counter() + seconds
    window = Window()
    rows: list[dict[str, Any]] = []
    in_use: dict[str, str] = {}  # lease id -> its route's socket directory (which names its container)
    killed_leases: set[str] = set()
    first_errors: list[str] = []
    totals: Counter[str] = Counter()

    def error(kind: str, what: str) -> None:
        window.errors[kind] += 1
        totals[kind] += 1
        if len(first_errors) < 20:
            first_errors.append(f"{kind}: {what[:300]}")

    async with AsyncPool(pool.listen, timeout=600) as client:
        async def session(i: int) -> None:
            env_id, task_id, calls = work[i % len(work)]
            while time.perf_counter() < until:
                try:
                    lease = await client.acquire(env_id, wait=600)
                except Exception as exc:  # an Acquire may wait, never fail
                    error("acquire", f"{type(exc).__name__}: {exc}")
                    continue
                in_use[lease.lease_id] = str(Path(lease.direct_session_socket).parent)
                try:
                    for _ in range(EPISODES_PER_LEASE):
                        if time.perf_counter() >= until:
                            break
                        started = time.perf_counter()
                        await lease.reset(task_id)
                        for call in calls:
                            t = time.perf_counter()
                            result = await lease.call(call["name"], call["arguments"])
                            window.calls_ms.append((time.perf_counter() - t) * 1000)
                            if not result.ok and lease.lease_id not in killed_leases:
                                error("tool call", f"{env_id}.{call['name']}: {result.error_kind} "
                                                   f"{result.error_message}")
                        evaluation = await lease.evaluate()
                        if evaluation.reward != 1.0 and lease.lease_id not in killed_leases:
                            error("wrong reward", f"{env_id}/{task_id}: {evaluation.reward} {evaluation.message}")
                        window.episodes += 1
                        window.episodes_ms.append((time.perf_counter() - started) * 1000)
                except Exception as exc:
                    if lease.lease_id in killed_leases:
                        window.killed += 1  # the episode the kill cut short: its own error, as it must be
                    else:
                        error("episode", f"{env_id}: {type(exc).__name__}: {exc}")
                finally:
                    in_use.pop(lease.lease_id, None)
                    try:
                        await lease.release()
                    except Exception as exc:
                        if lease.lease_id not in killed_leases:
                            error("release", f"{type(exc).__name__}: {exc}")

        async def kill() -> None:
            every = seconds / max(args.kills, 1)
            done = 0
            while done < args.kills and time.perf_counter() < until - every / 2:
                await asyncio.sleep(every)
                choices = list(in_use.items())
                if not choices:
                    continue
                lease_id, socket_dir = random.choice(choices)
                containers = await asyncio.to_thread(pool.containers, engine)
                target = next((c for c in containers if any(m.get("Source") == socket_dir
                                                            for m in c.attrs.get("Mounts") or [])), None)
                if target is None:
                    continue
                killed_leases.add(lease_id)
                await asyncio.to_thread(target.kill)
                done += 1
            totals["kills"] = done

        async def sample() -> None:
            nonlocal window
            started = time.perf_counter()
            while time.perf_counter() < until:
                await asyncio.sleep(args.sample_every)
                memory = await asyncio.to_thread(measure_memory, pool, engine)
                current, window = window, Window()
                rows.append(current.row(time.perf_counter() - started, memory))
                row = rows[-1]
                print(f"{row['t']:6.0f} s  {row['episodes']:5d} episodes  {row['killed']:3d} killed  "
                      f"errors {sum(row['errors'].values())}  call p50 {row['call_p50_ms']:.1f} ms  "
                      f"containers {row['containers_mib']:.0f} MiB  pool {row['pool_mib']:.0f} MiB", flush=True)

        await asyncio.gather(sample(), kill(), *(session(i) for i in range(args.sessions)))
    return {"windows": rows, "totals": dict(totals), "first_errors": first_errors}


def measure_memory(pool: RunningPool, engine: Any) -> dict[str, float]:
    # a container being started or removed has no cgroup to read: it counts as none
    per = [m for m in (container_memory_mib(c.id) for c in pool.containers(engine)) if m == m]
    return {"containers": len(per), "containers_mib": sum(per), "pool_mib": rss_mib(pool.process.pid),
            "bench_mib": rss_mib(os.getpid())}


def report(result: dict[str, Any], args: argparse.Namespace) -> str:
    rows, totals = result["windows"], result["totals"]
    episodes = sum(r["episodes"] for r in rows)
    killed = sum(r["killed"] for r in rows)
    infra = sum(v for k, v in totals.items() if k != "kills")
    lines = [f"Machine: {result['machine']}", "",
             f"`python -m bench.soak --containers {args.containers} --sessions {args.sessions} --minutes "
             f"{args.minutes:g} --kills {args.kills}`: {args.sessions} sessions over {args.containers} containers, "
             f"{EPISODES_PER_LEASE} episodes per lease, containers of leases in use killed mid-run.", "",
             "| figure | value |", "|---|---:|",
             f"| episodes completed | {episodes} |",
             f"| containers killed mid-lease | {totals.get('kills', 0)} |",
             f"| episodes the kills cut short (their own error) | {killed} |",
             f"| infrastructure errors or wrong rewards (goal 0) | {infra} |"]
    for kind, count in sorted(totals.items()):
        if kind != "kills":
            lines.append(f"| of which {kind} | {count} |")
    if rows:
        lines.append(f"| memory first / last window: containers, pool process, this process | "
                     f"{rows[0]['containers_mib']:.0f} / {rows[-1]['containers_mib']:.0f} MiB, "
                     f"{rows[0]['pool_mib']:.0f} / {rows[-1]['pool_mib']:.0f} MiB, "
                     f"{rows[0]['bench_mib']:.0f} / {rows[-1]['bench_mib']:.0f} MiB |")
    if result["first_errors"]:
        lines += ["", "First errors:", ""] + [f"- `{e}`" for e in result["first_errors"]]
    lines += ["", "| t (s) | episodes | killed | errors | call p50 / p99 ms | episode p50 / p99 ms | containers | "
              "containers MiB | pool MiB | bench MiB |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['t']:.0f} | {r['episodes']} | {r['killed']} | {sum(r['errors'].values())} | "
              f"{r['call_p50_ms']:.1f} / {r['call_p99_ms']:.1f} | {r['episode_p50_ms']:.0f} / "
              f"{r['episode_p99_ms']:.0f} | {r['containers']} | {r['containers_mib']:.0f} | {r['pool_mib']:.0f} | "
              f"{r['bench_mib']:.0f} |" for r in rows]
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    engine = connect()
    corpus = load_corpus()
    build_images(engine, corpus, PoolOptions(), Path("/tmp/bench-images.log"))
    async with RunningPool(args.containers) as pool:
        print(f"pool of {args.containers}: ready in {await pool.wait_ready(args.containers):.0f} s; soaking "
              f"{args.minutes:g} min with {args.sessions} sessions (Ctrl-C stops)", flush=True)
        result = await soak(pool, engine, corpus, args)
    return {"machine": machine(), "args": vars(args), **result}


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=64)
    parser.add_argument("--sessions", type=int, default=256, help="well above what the machine serves at full speed")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--kills", type=int, default=200, help="containers killed mid-lease, spread over the run")
    parser.add_argument("--sample-every", type=float, default=30.0, help="seconds per reported window")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    text = report(result, args)
    (RESULTS / "soak.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
