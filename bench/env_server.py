"""Benchmark one EnvService against its in-process baselines, in one run.

    .venv/bin/python -m bench.env_server [--env env_4] [--n 2000]

Measures, interleaved on the same environment and calls:
  - tool call: in-process method call (EnvScaler's way) vs CallTool over a Unix socket;
  - new episode: re-exec of the class code + instantiation (EnvScaler's way) vs our Reset (fresh forked worker).
Writes bench/results/env_server.json and .md with medians, p99 and the machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.machine import machine
from envscaler.client import EnvClient
from envscaler.runtime.server import serving
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="env_4")
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    corpus = load_corpus()
    spec = corpus.env(args.env)
    scenario_id, scenario = next(iter(corpus.scenarios_of(args.env).items()))
    name, arguments = "get_account", {"account_id": "AC-100"}
    samples: dict[str, list[float]] = {k: [] for k in ("inproc_call", "grpc_call", "inproc_new_episode", "reset")}
    with tempfile.TemporaryDirectory() as tmp, serving(spec, {scenario_id: scenario}, f"unix:{tmp}/env.sock") as srv, \
            EnvClient(srv.address) as client:
        client.reset(scenario_id)
        local = in_process_env(spec.env_class_code, spec.env_class_name, scenario.init_config)
        for _ in range(200):  # warm up both paths
            client.call(name, arguments)
            getattr(local, name)(**arguments)
        for i in range(args.n):
            t = time.perf_counter()
            str(getattr(local, name)(**arguments))
            samples["inproc_call"].append(time.perf_counter() - t)
            t = time.perf_counter()
            client.call(name, arguments)
            samples["grpc_call"].append(time.perf_counter() - t)
            if i % 4 == 0:
                t = time.perf_counter()
                in_process_env(spec.env_class_code, spec.env_class_name, scenario.init_config)
                samples["inproc_new_episode"].append(time.perf_counter() - t)
                t = time.perf_counter()
                client.reset(scenario_id)
                samples["reset"].append(time.perf_counter() - t)
    result = {"machine": machine(), "env": args.env, "tool": name, **{k: stats(v) for k, v in samples.items()}}
    result["ratios"] = {
        "grpc_call_over_inproc_p50": result["grpc_call"]["p50_us"] / result["inproc_call"]["p50_us"],
        "reset_over_inproc_new_episode_p50": result["reset"]["p50_us"] / result["inproc_new_episode"]["p50_us"],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "env_server.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        ("tool call, in-process (EnvScaler)", "inproc_call"), ("tool call, EnvService over UDS", "grpc_call"),
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
