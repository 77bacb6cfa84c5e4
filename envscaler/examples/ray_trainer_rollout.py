"""A Ray-based trainer's rollout workers using envscaler.ray (run: python -m envscaler.examples.ray_trainer_rollout).

The trainer (this driver) starts one pool per node, hands the RayPool to its rollout workers (Ray actors, as in
verl / SkyRL / OpenRLHF), and each worker runs its share of episodes: leases come from its own node's pool first and
tool calls go straight to that pool over gRPC. The policy here replays the bundled reference solutions, so the
script runs without a model; with an OpenAI-compatible endpoint, `--base-url URL --model NAME` runs the project's
agent through envscaler.rollout instead (same records as `envscaler-runtime rollout --ray`).

    python -m envscaler.examples.ray_trainer_rollout                     # a local one-node Ray cluster, scripted policy
    python -m envscaler.examples.ray_trainer_rollout --ray auto          # the cluster this machine belongs to
    python -m envscaler.examples.ray_trainer_rollout --base-url http://127.0.0.1:8000/v1 --model my-policy
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import ray

from envscaler.ray import RayPool
from envscaler.spec import load_corpus

SOLUTIONS = Path(__file__).resolve().parent / "solutions"


@ray.remote(num_cpus=0)
class RolloutWorker:
    def __init__(self, pool: RayPool, base_url: str = "", model: str = "") -> None:
        self.pool, self.base_url, self.model = pool, base_url, model

    def scripted(self, batch: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """One episode per (env_id, task_id): the reference solution's calls, then the reward."""
        results = []
        for env_id, task_id in batch:
            with self.pool.session(env_id, scenario=task_id, wait=120) as env:
                lines = (SOLUTIONS / f"{env_id}__{task_id}.jsonl").read_text().splitlines()
                for call in map(json.loads, lines):
                    env.call(call["name"], call["arguments"])
                results.append({"env_id": env_id, "task_id": task_id, "reward": env.evaluate().reward,
                                "node": env.node_id[:12]})
        return results

    def agent(self, batch: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """The same episodes through envscaler.rollout's agent and an OpenAI-compatible policy server."""
        from openai import AsyncOpenAI

        from envscaler.rollout.agent import AgentOptions
        from envscaler.rollout.runner import run_rollouts

        corpus = load_corpus()
        scenarios = [corpus.scenarios_of(env_id)[task_id] for env_id, task_id in batch]
        out = Path(tempfile.mkdtemp()) / "trajectories.jsonl"
        llm = AsyncOpenAI(base_url=self.base_url, api_key="EMPTY")
        asyncio.run(run_rollouts(self.pool.aio, scenarios, AgentOptions(model=self.model), llm, out, concurrency=8))
        return [json.loads(line) for line in out.read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ray", default="local", help="ray.init address: local (default), auto, or ADDRESS")
    parser.add_argument("--workers", type=int, default=2, help="rollout workers (2)")
    parser.add_argument("--size-per-node", type=int, default=8, help="warm containers per node (8)")
    parser.add_argument("--base-url", default="", help="an OpenAI-compatible policy endpoint (default: scripted)")
    parser.add_argument("--model", default="", help="the policy's model name, with --base-url")
    args = parser.parse_args()

    ray.init(address=args.ray, object_store_memory=100 << 20 if args.ray == "local" else None)
    pool = RayPool.start(size_per_node=args.size_per_node)
    try:
        batch = sorted(tuple(p.stem.split("__")) for p in SOLUTIONS.glob("*.jsonl"))  # a "training batch"
        workers = [RolloutWorker.remote(pool, args.base_url, args.model) for _ in range(args.workers)]
        shares = [batch[i::args.workers] for i in range(args.workers)]
        method = "agent" if args.base_url else "scripted"
        results = [r for rs in ray.get([getattr(w, method).remote(s) for w, s in zip(workers, shares, strict=True)])
                   for r in rs]
        rewards = [r.get("reward", r.get("total_reward", 0.0)) for r in results]
        print(f"{len(results)} episodes, mean reward {sum(rewards) / max(len(rewards), 1):.3f}")
        for node_id, node in pool.stats()["nodes"].items():
            print(f"node {node_id[:12]}: {node['containers']} containers, pool {node['pool_id']}")
    finally:
        pool.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()
