"""RayPool on a real two-node Ray cluster on this host (ray.cluster_utils.Cluster: two raylets, one Docker engine):
one pool per node, each serving its own containers; scenarios solved from tasks on both nodes; a restarted pool
actor reaps its predecessor's containers; losing a node fails only its leases; nothing is left after shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # noqa: E402

from envscaler.client import EnvClientError  # noqa: E402
from envscaler.containers.owners import POOL_LABEL  # noqa: E402
from envscaler.ray import RayPool, RaySession  # noqa: E402
from envscaler.ray.actor import NAMESPACE, actor_name  # noqa: E402
from envscaler.spec import load_corpus  # noqa: E402
from tests.conftest import SOLUTIONS  # noqa: E402
from tests.llm_server import ScriptedLLM  # noqa: E402

pytestmark = pytest.mark.integration

ENVS = sorted({p.stem.split("__")[0] for p in SOLUTIONS.glob("*.jsonl")})  # the bundled environments
SIZE = len(ENVS)  # one warm container per environment on each node
NODE_ARGS = {"num_cpus": 1, "object_store_memory": 80 << 20}  # Ray's own memory, kept within CI's budget


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    cluster = Cluster(initialize_head=True, head_node_args=NODE_ARGS)
    cluster.add_node(**NODE_ARGS)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture(scope="module")
def pool(cluster: Cluster, example_images: dict[str, str]) -> Iterator[RayPool]:
    pool = RayPool.start(size_per_node=SIZE, only=ENVS, lease_ttl=120, acquire_wait=60)
    try:
        pool.wait_ready(timeout=180)
        yield pool
    finally:
        pool.shutdown()  # idempotent: the last test shuts it down and checks


def ray_containers(engine: docker.DockerClient, node_id: str) -> list[Any]:
    return [c for c in engine.containers.list(ignore_removed=True, all=True, filters={"label": POOL_LABEL})
            if c.labels[POOL_LABEL].startswith(f"ray-{node_id[:16]}-")]


def worker_node(cluster: Cluster) -> Any:
    return next(iter(cluster.worker_nodes))


def solve(session: Any, path: Path) -> float:
    for line in path.read_text().splitlines():
        call = json.loads(line)
        assert session.call(call["name"], call["arguments"]).ok
    return session.evaluate().reward


@ray.remote(num_cpus=0)
def solve_here(pool: RayPool, names: list[str]) -> list[tuple[str, str, float]]:
    """Runs on one node (pinned by the caller): solves the named scenarios through the pool it was handed."""
    solved = []
    for name in names:
        env_id, task_id = name.split("__")
        with pool.session(env_id, scenario=task_id, wait=60) as session:
            solved.append((name, session.node_id, solve(session, SOLUTIONS / f"{name}.jsonl")))
    return solved


def test_one_pool_per_node_serving_its_own_containers(cluster: Cluster, pool: RayPool,
                                                      engine: docker.DockerClient) -> None:
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert set(pool.nodes) == alive and len(alive) == 2
    for node_id in alive:  # a named actor per node, found from any driver, placed on that node
        actor = ray.get_actor(actor_name(node_id), namespace=NAMESPACE)
        assert ray.get(actor.info.remote()).node_id == node_id
    stats = pool.stats()
    pool_ids = {s["pool_id"] for s in stats["nodes"].values()}
    assert len(pool_ids) == 2
    for node_id, node in stats["nodes"].items():
        assert node["reachable"] and node["size"] == SIZE
        assert set(node["envs"]) == set(ENVS)
        mine = ray_containers(engine, node_id)  # labelled with this node's pool, and only with it
        assert {c.labels[POOL_LABEL] for c in mine} == {node["pool_id"]}
        assert {c.labels["envscaler.env-id"] for c in mine} == set(ENVS)
        assert len(mine) == node["containers"]
    assert stats["envs"]["env_1"]["ready"] == 2

    # A lease taken on one node is counted by that node's pool alone.
    local = pool.caller_node
    with pool.session("env_1") as session:
        assert session.node_id == local  # the caller's own node first
        counts = pool.stats()["nodes"]
        assert counts[local]["envs"]["env_1"]["leased"] == 1
        assert all(n["envs"]["env_1"]["leased"] == 0 for node_id, n in counts.items() if node_id != local)
        # its own node has no idle env_1 left: the next session goes to the node with the most idle ones
        with pool.session("env_1") as elsewhere:
            assert elsewhere.node_id != local


def test_scenarios_solved_from_tasks_on_both_nodes(pool: RayPool) -> None:
    names = sorted(p.stem for p in SOLUTIONS.glob("*.jsonl") if p.stem.split("__")[0] in ENVS)
    runs = {node_id: solve_here.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False))
            .remote(pool, names) for node_id in pool.nodes}
    for node_id, ref in runs.items():
        solved = ray.get(ref, timeout=300)
        assert [(name, reward) for name, _, reward in solved] == [(name, 1.0) for name in names]
        assert any(where == node_id for _, where, _ in solved)  # leased on the task's own node


def test_async_sessions(pool: RayPool) -> None:
    async def both() -> list[float]:
        async def one(name: str) -> float:
            env_id, task_id = name.split("__")
            async with pool.session(env_id, scenario=task_id) as session:
                for line in (SOLUTIONS / f"{name}.jsonl").read_text().splitlines():
                    call = json.loads(line)
                    assert (await session.call(call["name"], call["arguments"])).ok
                return (await session.evaluate()).reward

        rewards = await asyncio.gather(one("env_2__0310-081522"), one("env_3__0402-151230"))
        await pool.aio.close()
        return rewards

    assert asyncio.run(both()) == [1.0, 1.0]


def test_rollout_through_the_cluster_from_another_driver(pool: RayPool, cluster: Cluster, tmp_path: Path) -> None:
    """`envscaler-runtime rollout --ray ADDRESS` in its own process finds the running pools and solves every
    scenario through them; run again, it resumes (nothing left to do)."""
    corpus = load_corpus()
    scenarios = [s for env_id in ENVS for s in corpus.scenarios_of(env_id).values()]
    scripts = {s.task[:60]: [{"tool_calls": [[c["name"], json.dumps(c["arguments"])] for c in map(
        json.loads, (SOLUTIONS / f"{s.env_id}__{s.task_id}.jsonl").read_text().splitlines())]},
        {"content": "All done. Task Completed"}] for s in scenarios}
    out = tmp_path / "traj.jsonl"
    command = [sys.executable, "-m", "envscaler.cli", "rollout", "--ray", cluster.address, "--model", "scripted",
               "--base-url", "", "--out", str(out), "--concurrency", "8", "--only", *ENVS]
    with ScriptedLLM(scripts) as llm:
        command[command.index("--base-url") + 1] = llm.base_url
        first = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert first.returncode == 0, first.stderr[-3000:]
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert sorted((r["task_info"]["env_id"], r["task_info"]["task_id"]) for r in rows) == \
            sorted((s.env_id, s.task_id) for s in scenarios)
        assert all(r["total_reward"] == 1.0 for r in rows)
        again = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert again.returncode == 0, again.stderr[-3000:]
        assert len(out.read_text().splitlines()) == len(scenarios)
    assert set(pool.nodes) == {n["NodeID"] for n in ray.nodes() if n["Alive"]}  # its pools still run
    assert all(node["reachable"] for node in pool.stats()["nodes"].values())


def test_restarted_actor_reaps_its_predecessors_containers(pool: RayPool, cluster: Cluster,
                                                           engine: docker.DockerClient) -> None:
    node_id = worker_node(cluster).node_id
    before = pool.nodes[node_id].info
    old = {c.name for c in ray_containers(engine, node_id)}
    assert old
    os.kill(ray.get(pool.nodes[node_id].actor.pool_pid.remote()), signal.SIGKILL)  # the pool crashes hard
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pool.refresh(info_timeout=60)
        if pool.nodes[node_id].info.pool_id != before.pool_id:
            break
        time.sleep(0.5)
    after = pool.nodes[node_id].info
    assert after.pool_id != before.pool_id and after.pool_id.startswith(f"ray-{node_id[:16]}-")
    left = {c.name for c in engine.containers.list(ignore_removed=True,
            all=True, filters={"label": f"{POOL_LABEL}={before.pool_id}"})}
    assert left == set()  # reaped by the new pool as it started
    pool.wait_ready(timeout=120)
    assert {c.labels[POOL_LABEL] for c in ray_containers(engine, node_id)} == {after.pool_id}


def test_losing_a_node_fails_only_its_leases(pool: RayPool, cluster: Cluster) -> None:
    lost = worker_node(cluster)
    survivor = pool.caller_node
    assert lost.node_id != survivor
    pool.wait_ready(timeout=120)

    def lease_on(node_id: str, scenario: str) -> RaySession:  # placed, not routed: routing is tested above
        node = pool.nodes[node_id]
        return RaySession(pool, node, node.pool.acquire("env_1", scenario, wait=60))

    here = lease_on(survivor, "0115-091204")
    there = lease_on(lost.node_id, "0115-102733")
    assert there.call("search_books", {"query": "Dune"}).ok

    cluster.remove_node(lost)

    with pytest.raises(EnvClientError) as failed:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the node's pool stops as soon as its actor is gone
            there.call("search_books", {"query": "Dune"})
            time.sleep(0.2)
    assert failed.value.code == "UNAVAILABLE"
    assert lost.node_id in str(failed.value) and there.lease_id in str(failed.value)
    assert here.node_id == survivor and solve(here, SOLUTIONS / "env_1__0115-091204.jsonl") == 1.0
    here.release()
    with pool.session("env_2", scenario="0310-081522") as fresh:  # new sessions go to the survivor
        assert fresh.node_id == survivor
        assert solve(fresh, SOLUTIONS / "env_2__0310-081522.jsonl") == 1.0
    assert not pool.stats()["nodes"][lost.node_id]["reachable"]


def pool_processes(node_ids: list[str]) -> list[str]:
    """Command lines of node pools of these nodes still running on this host."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "envscaler.ray.node_pool" in cmdline and any(f"ray-{n[:16]}-" in cmdline for n in node_ids):
            found.append(cmdline[:200])
    return found


def test_nothing_left_after_shutdown(pool: RayPool, cluster: Cluster, engine: docker.DockerClient) -> None:
    node_ids = [n["NodeID"] for n in ray.nodes()]  # the lost node's too
    assert pool_processes(node_ids)  # the survivor's pool runs until shut down
    pool.shutdown()
    for node_id in node_ids:
        assert ray_containers(engine, node_id) == []
    assert pool_processes(node_ids) == []
    names = {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)}
    assert not any(actor_name(n) in names for n in node_ids)
