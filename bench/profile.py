"""Where a pool-route CallTool spends its time: per hop and per process.

    .venv/bin/python -m bench.profile [--n 3000]

Two views of the same call (env_4's get_account, as in bench.pool), from one run:

1. Per hop (latency, interleaved blocks): the raw Unix-socket echo into a sandbox container (the transport floor),
   the worker's own measure of its work per call (CallToolResponse.duration_us: parse, check, the tool, codec,
   answer), a lease's direct route (client -> worker, on its episode channel), the same route through the
   container's server (no episode channel: what the channel saves), and the pool route on another lease
   (client -> pool -> worker). Differences between them are the hops.
2. Per process (cost): CPU time (from /proc/<pid>/task/*/schedstat, nanoseconds) and context switches (each a
   wake-up or a preemption) per call, for the client, the pool process, the container's server, and its zygote and
   workers, counted over a run of calls by each route.

Writes bench/results/profile.json and profile.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.env_server import in_process_env
from bench.machine import machine
from bench.pool import ARGS, ENV, SCENARIO, TOOL, RunningPool
from bench.round_trip import interleaved, raw_echo, timed, uds_echo_container
from envscaler.client import EnvClient
from envscaler.client.pool_client import Pool
from envscaler.images.engine import connect
from envscaler.pool.runner import PoolOptions, build_images
from envscaler.spec import load_corpus

RESULTS = Path(__file__).resolve().parent / "results"
# A bare framed forwarder, as the pool's session socket forwards (read a frame, write it upstream, read the answer,
# write it back), without the pool's logic (no protobuf, no lease, no metrics): the cost of the hop itself, on
# asyncio's default loop (the pool's) and, where uvloop is installed, on uvloop.
FORWARDER = """
import asyncio, struct, sys
H = struct.Struct("!I")
async def main(path, upstream):
    async def serve(reader, writer):
        up_reader, up_writer = await asyncio.open_unix_connection(upstream)
        while True:
            try:
                head = await reader.readexactly(4)
            except asyncio.IncompleteReadError:
                return
            up_writer.write(head + await reader.readexactly(H.unpack(head)[0]))
            async with asyncio.timeout(30):
                head = await up_reader.readexactly(4)
                body = await up_reader.readexactly(H.unpack(head)[0])
            writer.write(head + body)
            await writer.drain()
    server = await asyncio.start_unix_server(serve, path)
    print("ready", flush=True)
    await server.serve_forever()
if sys.argv[3] == "uvloop":
    import uvloop
    uvloop.install()
asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@contextlib.contextmanager
def forwarder(upstream: str, loop: str) -> Iterator[str]:
    """A FORWARDER process in front of `upstream`; yields its socket's path."""
    path = f"{tempfile.mkdtemp(prefix='envscaler-fwd-')}/fwd.sock"
    process = subprocess.Popen([sys.executable, "-c", FORWARDER, path, upstream, loop], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == b"ready"
        yield path
    finally:
        process.kill()
        process.wait()


def tasks(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []


def counters(pids: list[int]) -> tuple[int, int, int]:
    """CPU nanoseconds, voluntary and involuntary context switches, summed over every thread of `pids`."""
    cpu = voluntary = involuntary = 0
    for pid in pids:
        for tid in tasks(pid):
            base = f"/proc/{pid}/task/{tid}"
            with contextlib.suppress(OSError, ValueError, IndexError):
                cpu += int(Path(f"{base}/schedstat").read_text().split()[0])
                for line in Path(f"{base}/status").read_text().splitlines():
                    if line.startswith("voluntary_ctxt_switches"):
                        voluntary += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        involuntary += int(line.split()[1])
    return cpu, voluntary, involuntary


def children(pid: int) -> list[int]:
    found = []
    for tid in tasks(pid):
        with contextlib.suppress(OSError):
            found += [int(p) for p in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], children(pid)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children(pid)
    return out


def container_processes(pool: RunningPool, engine: Any, socket_dir: str) -> tuple[int, list[int]]:
    """The container server's pid (host pid namespace) and its descendants (the zygote and its workers)."""
    for container in pool.containers(engine):
        mounts = container.attrs.get("Mounts") or []
        if any(m.get("Source") == socket_dir for m in mounts):
            init = int(container.attrs["State"]["Pid"])  # docker-init; the launcher exec'd the server as its child
            (server,) = children(init)
            return server, descendants(server)
    raise LookupError(f"no container mounts {socket_dir}")


def memory_of(pid: int) -> tuple[float, float, float]:
    """A process's proportional, private and anonymous memory in MiB (/proc/<pid>/smaps_rollup: Pss, Private_*,
    Anonymous: what a cgroup charges it, file pages being charged to whoever read them first)."""
    fields: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            name, value = line.split(":", 1)
            fields[name] = int(value.split()[0])
    private = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return fields.get("Pss", 0) / 1024, private / 1024, fields.get("Anonymous", 0) / 1024


def idle_memory(pool: RunningPool, engine: Any, leased_dir: str) -> dict[str, Any]:
    """Per role, over our pool's idle containers: median Pss, private and anonymous MiB; and the cgroup's figure."""
    from bench.pool import container_memory_mib

    roles: dict[str, list[tuple[float, float, float]]] = {"server": [], "zygote": [], "spare worker": []}
    cgroup = []
    for container in pool.containers(engine):
        if any(m.get("Source") == leased_dir for m in container.attrs.get("Mounts") or []):
            continue
        (server,) = children(int(container.attrs["State"]["Pid"]))
        roles["server"].append(memory_of(server))
        for zygote in children(server):
            roles["zygote"].append(memory_of(zygote))
            roles["spare worker"] += [memory_of(pid) for pid in children(zygote)]
        cgroup.append(container_memory_mib(container.id))
    return {"cgroup_mib": statistics.median(cgroup) if cgroup else float("nan"), "containers": len(cgroup),
            **{role: {"pss_mib": statistics.median(v[0] for v in values),
                      "private_mib": statistics.median(v[1] for v in values),
                      "anonymous_mib": statistics.median(v[2] for v in values)}
               for role, values in roles.items() if values}}


def per_call(roles: dict[str, list[int]], fn: Any, n: int) -> dict[str, dict[str, float]]:
    before = {role: counters(pids) for role, pids in roles.items()}
    for _ in range(n):
        fn()
    after = {role: counters(pids) for role, pids in roles.items()}
    return {role: {"cpu_us": (after[role][0] - before[role][0]) / n / 1e3,
                   "voluntary": (after[role][1] - before[role][1]) / n,
                   "involuntary": (after[role][2] - before[role][2]) / n} for role in roles}


def pstats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_us": statistics.median(ordered) * 1e6,
            "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6, "n": len(ordered)}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    engine = connect()
    corpus = load_corpus()
    images, _ = build_images(engine, corpus, PoolOptions(), Path("/tmp/bench-images.log"))
    spec, scenario = corpus.env(ENV), corpus.scenarios_of(ENV)[SCENARIO]
    local = in_process_env(spec.env_class_code, spec.env_class_name, scenario.init_config)
    result: dict[str, Any] = {"machine": machine(), "env": ENV, "tool": TOOL, "n": args.n}
    async with RunningPool(2 * len(corpus.envs)) as pool:  # two leases of one environment
        await pool.wait_ready(2 * len(corpus.envs))
        with contextlib.ExitStack() as stack:
            client = stack.enter_context(Pool(pool.listen))
            session = stack.enter_context(client.session(ENV, SCENARIO))
            # The direct route on a lease of its own: an episode has one channel, the pool's route takes this one's.
            leased = stack.enter_context(client.session(ENV, SCENARIO))
            socket_dir = str(Path(leased.direct_session_socket).parent)
            server, sandbox = container_processes(pool, engine, socket_dir)
            pool_server, pool_sandbox = container_processes(
                pool, engine, str(Path(session.direct_session_socket).parent))
            direct = stack.enter_context(EnvClient(f"unix:{socket_dir}/env.sock",
                                                   session_socket=leased.direct_session_socket))
            hop = stack.enter_context(EnvClient(f"unix:{socket_dir}/env.sock",
                                                session_socket=leased.direct_session_socket, episode_channel=False))
            direct.episode_id = hop.episode_id = ""  # the lease's episode
            echo_socket = stack.enter_context(uds_echo_container(engine, images[ENV]))
            raw_once, raw_close = raw_echo(echo_socket)
            stack.callback(raw_close)
            durations: list[float] = []

            def pool_call() -> None:
                durations.append(session.call(TOOL, ARGS).duration_us / 1e6)

            paths = {
                "inproc_call": timed(lambda: str(getattr(local, TOOL)(**ARGS))),
                "uds_echo_container": timed(raw_once),
                "direct_route": timed(lambda: direct.call(TOOL, ARGS)),
                "direct_route_server_hop": timed(lambda: hop.call(TOOL, ARGS)),
                "pool_route": timed(pool_call),
            }
            for loop in ("asyncio", "uvloop") if importlib.util.find_spec("uvloop") else ("asyncio",):
                path = stack.enter_context(forwarder(leased.direct_session_socket, loop))
                relayed = stack.enter_context(EnvClient(f"unix:{socket_dir}/env.sock", session_socket=path,
                                                        episode_channel=False))  # a relay of the server's path
                relayed.episode_id = ""
                paths[f"forwarded_{loop}"] = timed(lambda relayed=relayed: relayed.call(TOOL, ARGS))
            samples = interleaved(paths, rounds=max(1, args.n // 50), per_round=50)
            result["latency"] = {name: pstats(values) for name, values in samples.items()}
            result["latency"]["worker_answer"] = pstats(durations[100:])  # after the warm-up
            roles = {"client (this process)": [os.getpid()], "pool process": [pool.process.pid],
                     "container server": [server], "zygote + workers": sandbox}
            pool_roles = {**roles, "container server": [pool_server], "zygote + workers": pool_sandbox}
            result["pids"] = {role: pids for role, pids in roles.items()}
            result["per_call_pool_route"] = per_call(pool_roles, lambda: session.call(TOOL, ARGS), args.n)
            result["per_call_direct_route"] = per_call(roles, lambda: direct.call(TOOL, ARGS), args.n)
            result["per_call_direct_route_server_hop"] = per_call(roles, lambda: hop.call(TOOL, ARGS), args.n)
            result["idle_memory"] = idle_memory(pool, engine, socket_dir)
    return result


def report(result: dict[str, Any]) -> str:
    lat = result["latency"]
    p50 = {k: v["p50_us"] for k, v in lat.items()}
    hops = [
        ("the tool itself, in-process (EnvScaler's way)", p50["inproc_call"]),
        ("the worker's own work on its episode channel (duration_us: parse, check, tool, codec, answer)",
         p50["worker_answer"]),
        ("client <-> worker (direct route - duration_us): transport, framing, protobuf, two wake-ups",
         p50["direct_route"] - p50["worker_answer"]),
        ("  of which the bare transport (raw UDS echo into a sandbox container)", p50["uds_echo_container"]),
        ("what the episode channel saves (direct route through the server - direct route): the server's hop",
         p50["direct_route_server_hop"] - p50["direct_route"]),
        ("client <-> pool <-> worker (pool route - direct route): the pool's hop",
         p50["pool_route"] - p50["direct_route"]),
    ]
    # A bare forwarder relays the server's path (no channel): its cost is what it adds to that path.
    if "forwarded_asyncio" in p50:
        hops += [("  of which a bare asyncio frame forwarder would cost (its process and loop, two more wake-ups)",
                  p50["forwarded_asyncio"] - p50["direct_route_server_hop"]),
                 ("  and the pool's own logic (protobuf, lease lookup, deadlines, metrics)",
                  p50["pool_route"] - p50["direct_route"]
                  - (p50["forwarded_asyncio"] - p50["direct_route_server_hop"]))]
    if "forwarded_uvloop" in p50:
        hops.append(("  (the bare forwarder on uvloop instead)",
                     p50["forwarded_uvloop"] - p50["direct_route_server_hop"]))
    lines = ["# Profile of a pool-route CallTool", "",
             f"Machine: {result['machine']}. One run; latency blocks interleaved "
             f"(50 calls per path per round, {result['n']} calls per path); CPU and context switches counted over "
             f"{result['n']} calls per route. {ENV}.{TOOL}.", "",
             "## Latency per path", "", "| path | p50 | p99 |", "|---|---:|---:|"]
    labels = {"inproc_call": "in-process method", "uds_echo_container": "raw UDS echo into a sandbox container",
              "worker_answer": "the worker's own work per call (duration_us, pool-route calls on its channel)",
              "direct_route": "direct route (session socket, episode channel: the worker answers)",
              "direct_route_server_hop": "direct route through the container's server (no episode channel)",
              "forwarded_asyncio": "direct route through the server, relayed by a bare asyncio frame forwarder "
                                   "(no pool logic)",
              "forwarded_uvloop": "direct route through the same forwarder on uvloop",
              "pool_route": "pool route (session socket)"}
    for key, label in labels.items():
        if key not in lat:
            continue
        lines.append(f"| {label} | {lat[key]['p50_us']:.0f} µs | {lat[key]['p99_us']:.0f} µs |")
    lines += ["", "## Per hop (p50 differences)", "", "| hop | µs | share of the pool route |", "|---|---:|---:|"]
    total = p50["pool_route"]
    lines += [f"| {label} | {value:.0f} | {value / total:.0%} |" for label, value in hops]
    for route in ("pool_route", "direct_route", "direct_route_server_hop"):
        rows = result[f"per_call_{route}"]
        lines += ["", f"## Per process, {route.replace('_', ' ')} (per call)", "",
                  "| process | CPU µs | voluntary switches (wake-ups) | involuntary |", "|---|---:|---:|---:|"]
        lines += [f"| {role} | {r['cpu_us']:.0f} | {r['voluntary']:.2f} | {r['involuntary']:.2f} |"
                  for role, r in rows.items()]
        lines.append(f"| **all** | {sum(r['cpu_us'] for r in rows.values()):.0f} | "
                     f"{sum(r['voluntary'] for r in rows.values()):.2f} | "
                     f"{sum(r['involuntary'] for r in rows.values()):.2f} |")
    memory = result["idle_memory"]
    lines += ["", f"## Idle memory per container (median of {memory['containers']} idle containers)", "",
              f"cgroup (what the target counts: anonymous memory, page cache, kernel): {memory['cgroup_mib']:.1f} MiB.",
              "", "| process | Pss MiB | private MiB | anonymous MiB |", "|---|---:|---:|---:|"]
    lines += [f"| {role} | {memory[role]['pss_mib']:.1f} | {memory[role]['private_mib']:.1f} | "
              f"{memory[role].get('anonymous_mib', float('nan')):.1f} |"
              for role in ("server", "zygote", "spare worker") if role in memory]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "profile.json").write_text(json.dumps(result, indent=2) + "\n")
    text = report(result)
    (RESULTS / "profile.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
