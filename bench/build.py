"""Benchmark `envscaler-runtime build` over the example corpus against `docker build`
of the same thin layer on the same runtime image, in one run.

    .venv/bin/python -m bench.build

Writes bench/results/build.json and .md: per-environment build time cold and
cached, the environment layer's size, and the docker-build baseline.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.machine import machine
from envscaler.images.build import build_envs, ensure_runtime
from envscaler.images.engine import connect
from envscaler.images.env_image import env_files
from envscaler.spec import load_corpus

RESULTS = Path(__file__).resolve().parent / "results"
DOCKERFILE = """FROM {runtime}
COPY env.json /opt/envscaler/env/
COPY served /opt/envscaler/env/served
LABEL envscaler.env-id={env_id}
CMD ["serve", "--env", "{env_id}", "--envs", "/opt/envscaler/env/env.json", "--scenarios", \
"/opt/envscaler/env/scenarios.json", "--listen", "unix:/run/envscaler/env.sock"]
"""


def docker_build_seconds(client, runtime: str, corpus, env_id: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in env_files(corpus.env(env_id), corpus.scenarios_of(env_id)):
            (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / name).write_bytes(data)
        (Path(tmp) / "Dockerfile").write_text(DOCKERFILE.format(runtime=runtime, env_id=env_id))
        tag = f"envscaler-bench/{env_id}:docker-build"
        started = time.perf_counter()
        client.images.build(path=tmp, tag=tag, rm=True, pull=False, nocache=True)
        seconds = time.perf_counter() - started
        client.images.remove(tag, force=True)
        return seconds


def main() -> None:
    client = connect()
    corpus = load_corpus()
    runtime = ensure_runtime(client, None, Path(tempfile.gettempdir()) / "envscaler-bench-images.log")
    env_ids = list(corpus.envs)
    rounds = 5
    cold, cached, baseline = [], [], []
    sizes: dict[str, int] = {}
    for _ in range(rounds):
        for result in build_envs(client, corpus, runtime):
            client.images.remove(result.tag, force=True)
        started = time.perf_counter()
        results = build_envs(client, corpus, runtime)
        cold.append((time.perf_counter() - started) / len(env_ids))
        sizes = {r.env_id: r.layer_bytes for r in results}
        started = time.perf_counter()
        build_envs(client, corpus, runtime)
        cached.append((time.perf_counter() - started) / len(env_ids))
        baseline.append(docker_build_seconds(client, runtime, corpus, env_ids[len(baseline) % len(env_ids)]))
    result = {
        "machine": machine(), "environments": len(env_ids), "rounds": rounds,
        "cold_per_env_s": {"p50": statistics.median(cold), "max": max(cold)},
        "cached_per_env_s": {"p50": statistics.median(cached), "max": max(cached)},
        "docker_build_per_env_s": {"p50": statistics.median(baseline), "max": max(baseline)},
        "env_layer_bytes": sizes,
    }
    result["speedup_over_docker_build"] = result["docker_build_per_env_s"]["p50"] / result["cold_per_env_s"]["p50"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "build.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"Machine: {result['machine']}", "",
             f"{len(env_ids)} environments, {rounds} rounds; seconds per environment (median / worst round)", "",
             "| build | p50 | max |", "|---|---:|---:|"]
    for label, key in [("envscaler-runtime build, cold", "cold_per_env_s"),
                       ("envscaler-runtime build, cached", "cached_per_env_s"),
                       ("docker build of the same layer (baseline)", "docker_build_per_env_s")]:
        lines.append(f"| {label} | {result[key]['p50']:.3f} s | {result[key]['max']:.3f} s |")
    lines += ["", f"Speed-up over docker build: {result['speedup_over_docker_build']:.0f}x. Env layer: "
                  f"{min(sizes.values()) / 1024:.0f}-{max(sizes.values()) / 1024:.0f} KiB."]
    (RESULTS / "build.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
