"""Which pools are alive: each running pool is an owner (envscaler/containers/owners.py) with its own lock; a pool
starting up reaps the containers of every owner whose lock is free."""

from __future__ import annotations

from envscaler.containers.launch import OWNER_LABEL
from envscaler.containers.owners import LOCK_DIR, POOL_LABEL, hold, is_alive, reap_dead

__all__ = ["LOCK_DIR", "POOL_LABEL", "hold", "is_alive", "pool_labels", "reap_dead_pools"]

reap_dead_pools = reap_dead


def pool_labels(pool_id: str) -> dict[str, str]:
    return {POOL_LABEL: pool_id, OWNER_LABEL: f"pool-{pool_id}"}
