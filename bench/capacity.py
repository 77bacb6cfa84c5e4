"""Memory per container against the number of scenarios and the size of their state.

    .venv/bin/python -m bench.capacity            # the whole table
    .venv/bin/python -m bench.capacity --quick    # without the 1,000 x 3 MB and 50 x 30 MB cells

For each cell: one environment (bench/bigcorpus.py's shop database) with N
scenarios of S bytes of state each is built into an image (streamed, never held
in memory), one container is started with the default hardening (512 MiB), and
its cgroup is read: idle after start, then the peak over one Reset, a few tool
calls, GetState and Evaluate. Writes bench/results/capacity.json and .md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

from bench.bigcorpus import env_record, scenarios, solution
from bench.machine import machine
from envscaler.client import EnvClient, EnvClientError
from envscaler.containers import launch
from envscaler.images.build import ensure_runtime
from envscaler.images.engine import connect
from envscaler.images.env_image import plan_image, write_archive
from envscaler.spec.models import EnvSpec, Scenario

RESULTS = Path(__file__).resolve().parent / "results"
COUNTS = (1, 50, 1000)
SIZES = {"1 KB": 1 << 10, "3 MB": 3 << 20, "30 MB": 30 << 20}
HEAVY = {(1000, "3 MB"), (1000, "30 MB"), (50, "30 MB")}  # gigabytes of layer; 1,000 x 30 MB is never run
SKIPPED = {(1000, "30 MB")}
OWNER = "bench-capacity"


def cgroup(container_id: str) -> Path | None:
    for root in (Path(f"/sys/fs/cgroup/memory/docker/{container_id}"),
                 Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope"),
                 Path(f"/sys/fs/cgroup/docker/{container_id}")):
        if root.is_dir():
            return root
    return None


def memory(root: Path) -> dict[str, int]:
    """Current use, anonymous memory (what the processes hold, page cache excluded) and the peak."""
    stat = dict(line.split() for line in (root / "memory.stat").read_text().splitlines())
    if (root / "memory.usage_in_bytes").exists():  # cgroup v1
        return {"current": int((root / "memory.usage_in_bytes").read_text()), "anon": int(stat["rss"]),
                "peak": int((root / "memory.max_usage_in_bytes").read_text())}
    peak = root / "memory.peak"
    return {"current": int((root / "memory.current").read_text()), "anon": int(stat["anon"]),
            "peak": int(peak.read_text()) if peak.exists() else 0}


def reset_peak(root: Path) -> bool:
    for name in ("memory.max_usage_in_bytes", "memory.peak"):
        try:
            (root / name).write_text("0")
            return True
        except OSError:
            continue
    return False


def build(client: docker.DockerClient, runtime: dict[str, Any], count: int, size: int) -> tuple[str, float, int]:
    spec = EnvSpec.model_validate(env_record())
    scenario_map = {s["task_id"]: Scenario.model_validate(s) for s in scenarios(count, size)}  # one shared db
    started = time.perf_counter()
    image = plan_image(spec, scenario_map, runtime["Id"])
    try:
        with tempfile.TemporaryFile() as archive:
            write_archive(runtime, [image], archive)
            archive.seek(0)
            client.images.load(archive)
        return image.tag, time.perf_counter() - started, image.layer_bytes
    finally:
        image.discard()


def measure(client: docker.DockerClient, tag: str, count: int, size: int) -> dict[str, Any]:
    env = launch.start(client, tag, OWNER)
    try:
        started = time.perf_counter()
        launch.wait_ready(env, 120)
        ready = time.perf_counter() - started
        root = cgroup(env.container.id)
        if root is None:
            raise SystemExit("cannot find the container's memory cgroup under /sys/fs/cgroup")
        time.sleep(2.0)
        idle = memory(root)
        peak_reset = reset_peak(root)
        scenario = next(scenarios(1, size))
        scenario["task_id"] = f"shop-{count - 1:04d}"  # the last one: an index lookup, not the first file
        outcome: dict[str, Any] = {}
        with EnvClient(env.address, timeout=120) as client_:
            try:
                started = time.perf_counter()
                reset = client_.reset(scenario["task_id"])
                outcome["reset_s"] = round(time.perf_counter() - started, 3)
                task_scenario = {**scenario, "task": reset.task}
                for name, arguments in solution(task_scenario):
                    client_.call(name, arguments)
                client_.state()
                evaluation = client_.evaluate()
                outcome["reward"] = evaluation.reward
                outcome["checks"] = [f"{c.outcome}{': ' + c.message[:120] if c.message else ''}"
                                     for c in evaluation.checks]
            except EnvClientError as exc:
                outcome["error"] = f"{exc.code}: {exc.details[:200]}"
        after = memory(root)
        env.container.reload()
        return {"ready_s": round(ready, 2), "idle_mib": round(idle["current"] / 2**20, 1),
                "idle_anon_mib": round(idle["anon"] / 2**20, 1),
                "startup_peak_mib": round(idle["peak"] / 2**20, 1),
                "episode_peak_mib": round(after["peak"] / 2**20, 1) if peak_reset else None,
                "after_anon_mib": round(after["anon"] / 2**20, 1),
                "alive": env.container.status == "running", **outcome}
    finally:
        launch.remove(env)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.capacity", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the cells of gigabytes")
    parser.add_argument("--cell", action="append", default=[], metavar="COUNTxSTATE",
                        help="run only this cell, e.g. 1x30MB (repeatable); printed, results files untouched")
    args = parser.parse_args()
    cells = {tuple(c.replace(" ", "").upper().split("X", 1)) for c in args.cell}
    client = connect()
    launch.reap(client, OWNER)
    runtime = client.images.get(ensure_runtime(client, None, Path(tempfile.gettempdir()) / "bench-capacity.log")).attrs
    rows = []
    for label, size in SIZES.items():
        for count in COUNTS:
            if (count, label) in SKIPPED or (args.quick and (count, label) in HEAVY):
                continue
            if cells and (str(count), label.replace(" ", "").upper()) not in cells:
                continue
            tag, build_s, layer = build(client, runtime, count, size)
            try:
                row = {"scenarios": count, "state": label, "layer_mib": round(layer / 2**20, 1),
                       "build_s": round(build_s, 1), **measure(client, tag, count, size)}
            finally:
                client.images.remove(tag, force=True)
            print(json.dumps(row), flush=True)
            rows.append(row)
    if cells:
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "capacity.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    lines = ["# Memory per container vs scenarios and state size", "", f"Machine: {machine()}. One container, "
             "default hardening (512 MiB); `idle` is the cgroup's use 2 s after SERVING (anon: without page "
             "cache); `episode peak` is the cgroup's peak over Reset (of the last scenario), the solving calls, "
             "GetState and Evaluate.", "",
             "| scenarios | state | layer MiB | idle MiB | idle anon MiB | start-up peak MiB | episode peak MiB "
             "| Reset s | reward |", "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        reward = r.get("reward", r.get("error", ""))
        lines.append(f"| {r['scenarios']} | {r['state']} | {r['layer_mib']} | {r['idle_mib']} | "
                     f"{r['idle_anon_mib']} | {r['startup_peak_mib']} | {r['episode_peak_mib']} | "
                     f"{r.get('reset_s', '')} | {reward} |")
    (RESULTS / "capacity.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
