"""Benchmark a new episode against the in-process baseline, in one run.

    .venv/bin/python -m bench.env_server [--env env_4] [--n 500]

Measures, interleaved on the same environment and scenario: re-exec of the class
code + instantiation (EnvScaler's way) vs our Reset (a fresh forked worker) on an
EnvService in its own process, each followed by an episode of one tool call
(untimed), as in training. Tool-call round trips are in bench.pool.
Writes bench/results/env_server.json and .md with medians, p99 and the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.machine import machine
from bench.workload import ARGS, ENV, TOOL
from envscaler.client import EnvClient
from envscaler.protocol.health import check
from envscaler.spec import load_corpus

RESULTS = Path(__file__).resolve().parent / "results"


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"p50_us": statistics.median(ordered) * 1e6, "p99_us": p99 * 1e6, "n": len(ordered)}


def in_process_env(code: str, class_name: str, init_config: dict[str, Any]) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(code, "<env>", "exec"), namespace)  # the reference's way: trusted process, no isolation
    try:
        instance = namespace[class_name](copy.deepcopy(init_config))
    except TypeError:
        instance = namespace[class_name]()
    for key, value in copy.deepcopy(init_config).items():
        setattr(instance, key, value)
    return instance


@contextlib.contextmanager
def server_process(env_id: str, address: str) -> Iterator[None]:
    """`envscaler-runtime serve` in its own process, as in a container (a server in this process would share
    its GIL with the client)."""
    process = subprocess.Popen([sys.executable, "-m", "envscaler.cli", "serve", "--env", env_id, "--listen", address],
                               stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not check(address, timeout=1.0):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the EnvService for {env_id} did not start")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="env_4")
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    corpus = load_corpus()
    spec = corpus.env(args.env)
    scenario_id, scenario = next(iter(corpus.scenarios_of(args.env).items()))
    samples: dict[str, list[float]] = {k: [] for k in ("inproc_new_episode", "reset")}
    with tempfile.TemporaryDirectory() as tmp, server_process(args.env, f"unix:{tmp}/env.sock"), \
            EnvClient(f"unix:{tmp}/env.sock") as client:
        for _ in range(50):  # warm up both paths
            client.reset(scenario_id)
            in_process_env(spec.env_class_code, spec.env_class_name, scenario.init_config)
        # Between two new episodes, an episode: one tool call (untimed), on either path, as in training.
        calls = [(TOOL, ARGS)] if args.env == ENV else []
        for _ in range(args.n):
            t = time.perf_counter()
            local = in_process_env(spec.env_class_code, spec.env_class_name, scenario.init_config)
            samples["inproc_new_episode"].append(time.perf_counter() - t)
            for name, arguments in calls:
                str(getattr(local, name)(**arguments))
            t = time.perf_counter()
            client.reset(scenario_id)
            samples["reset"].append(time.perf_counter() - t)
            for name, arguments in calls:
                client.call(name, arguments)
    result = {"machine": machine(), "env": args.env, **{k: stats(v) for k, v in samples.items()}}
    result["ratios"] = {
        "reset_over_inproc_new_episode_p50": result["reset"]["p50_us"] / result["inproc_new_episode"]["p50_us"],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "env_server.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        ("new episode, re-exec in-process (EnvScaler)", "inproc_new_episode"),
        ("new episode, Reset (fresh forked worker)", "reset"),
    ]
    table = [f"Machine: {result['machine']}", "", "| path | p50 | p99 | n |", "|---|---:|---:|---:|"]
    table += [f"| {label} | {result[key]['p50_us']:.0f} µs | {result[key]['p99_us']:.0f} µs | {result[key]['n']} |"
              for label, key in rows]
    (RESULTS / "env_server.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
