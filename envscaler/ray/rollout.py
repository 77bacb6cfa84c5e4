"""`envscaler-runtime rollout --ray ADDRESS`: the RayPool a rollout runs through — the pools already running in
that cluster, or else pools started for this run (and stopped after it)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import ray

from envscaler.ray.pool import RayPool


@contextlib.contextmanager
def rollout_pool(address: str, envs: Path | None, scenarios: Path | None, only: list[str], size_per_node: int,
                 tool_schemas: str, timeout: float) -> Iterator[RayPool]:
    """`address` is what ray.init takes: "auto" (the cluster this machine belongs to), "local" (a new one-node
    cluster in this process), or a cluster's address. Inside a Ray worker the existing connection is used."""
    connected_here = not ray.is_initialized()
    if connected_here:
        ray.init(address=address, namespace="envscaler", log_to_driver=False)
    pool: RayPool | None = None
    try:
        try:
            pool = RayPool.connect(timeout=timeout, acquire_wait=600.0)
        except RuntimeError:  # none runs in this cluster: start them for this run
            pool = RayPool.start(size_per_node=size_per_node, envs=envs, scenarios=scenarios, only=only,
                                 acquire_wait=600.0, timeout=timeout, tool_schemas=tool_schemas)
        yield pool
    finally:
        if pool is not None:
            pool.shutdown() if pool.owned else pool.close()
        if connected_here:
            ray.shutdown()
