"""Which pools are alive. Each running pool holds an flock on its own lock file; the
kernel drops it when the process dies, even by SIGKILL. A pool starting up reaps
the containers of every pool whose lock is free.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import docker.errors

from envscaler.containers.launch import OWNER_LABEL, remove_leftover

POOL_LABEL = "envscaler.pool"
LOCK_DIR = Path(os.environ.get("ENVSCALER_POOL_LOCKS", "/tmp/envscaler-pools"))


def hold(pool_id: str) -> int:
    """Take this pool's lock for its lifetime; returns the fd (closing it releases the lock)."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCK_DIR / f"{pool_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def is_alive(pool_id: str) -> bool:
    path = LOCK_DIR / f"{pool_id}.lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def reap_dead_pools(client: docker.DockerClient) -> int:
    """Remove the containers of pools that are gone (in parallel); returns how many."""
    containers = client.containers.list(all=True, filters={"label": POOL_LABEL})
    dead = {pool_id for pool_id in {c.labels.get(POOL_LABEL, "") for c in containers} if not is_alive(pool_id)}
    doomed = [c for c in containers if c.labels.get(POOL_LABEL, "") in dead]

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(remove_leftover, doomed))
    for pool_id in dead:
        with contextlib.suppress(OSError):
            (LOCK_DIR / f"{pool_id}.lock").unlink()
    return len(doomed)


def pool_labels(pool_id: str) -> dict[str, str]:
    return {POOL_LABEL: pool_id, OWNER_LABEL: f"pool-{pool_id}"}
