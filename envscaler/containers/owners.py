"""Who owns a container, and whether that owner still lives. Every container this package starts carries
`envscaler.pool=<lock id>`; the owner (a pool, or any process that starts containers) holds an flock on that lock
file for its lifetime, and the kernel drops it when the process dies, even by SIGKILL. Whoever starts containers
next removes those of owners that are gone: no leftover depends on its starter having cleaned up.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import docker.errors

POOL_LABEL = "envscaler.pool"  # the owner's lock id (named for pools, the first owners)
LOCK_DIR = Path(os.environ.get("ENVSCALER_POOL_LOCKS", "/tmp/envscaler-pools"))
_lock = threading.Lock()
log = logging.getLogger("envscaler.containers")
_process_owner: tuple[str, int] | None = None


def hold(lock_id: str) -> int:
    """Take this owner's lock for its lifetime; returns the fd (closing it releases the lock)."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCK_DIR / f"{lock_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def is_alive(lock_id: str) -> bool:
    path = LOCK_DIR / f"{lock_id}.lock"
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


def reap_dead(client: docker.DockerClient) -> int:
    """Remove the containers of owners that are gone (in parallel); returns how many."""
    from envscaler.containers.launch import remove_leftover  # launch labels its containers with these owners

    containers = listed(client, {"label": POOL_LABEL})
    dead = {lock_id for lock_id in {c.labels.get(POOL_LABEL, "") for c in containers} if not is_alive(lock_id)}
    doomed = [c for c in containers if c.labels.get(POOL_LABEL, "") in dead]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(remove_leftover, doomed))
    if doomed:  # said, not silent: an owner was killed (SIGKILL, OOM) before it could remove them
        owners = Counter(c.labels.get(POOL_LABEL, "") for c in doomed)
        log.warning("removed %d container(s) left by %d owner(s) that died without removing them (%s)",
                    len(doomed), len(owners), ", ".join(f"{owner}: {n}" for owner, n in sorted(owners.items())))
    for lock_id in dead:
        with contextlib.suppress(OSError):
            (LOCK_DIR / f"{lock_id}.lock").unlink()
    return len(doomed)


def listed(client: docker.DockerClient, filters: dict[str, str], attempts: int = 5) -> list[Any]:
    """The containers that match, listed again when one vanishes between the listing and its inspection (another
    owner on this engine removed it meanwhile, e.g. pools starting side by side that each reap the dead)."""
    for _ in range(attempts - 1):
        try:
            return client.containers.list(all=True, filters=filters, ignore_removed=True)
        except docker.errors.NotFound:
            continue
    return client.containers.list(all=True, filters=filters, ignore_removed=True)


def process_owner(client: docker.DockerClient | None = None) -> str:
    """This process's lock id, held until it exits. The first call also reaps what dead owners left (with
    `client`), so a process that starts containers cleans up after those that crashed before it."""
    global _process_owner
    with _lock:
        if _process_owner is None:
            lock_id = f"process-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            _process_owner = (lock_id, hold(lock_id))
            atexit.register(_release_at_exit, lock_id)
            if client is not None:
                with contextlib.suppress(Exception):  # best effort: the engine may refuse; the next owner retries
                    reap_dead(client)
        return _process_owner[0]


def _release_at_exit(lock_id: str) -> None:
    """At a normal exit, remove what this process still owns (a crash leaves it to the next owner)."""
    from envscaler.containers.launch import remove_leftover
    from envscaler.images.engine import connect

    with contextlib.suppress(Exception):
        client = connect(timeout=10)
        for container in client.containers.list(all=True, filters={"label": f"{POOL_LABEL}={lock_id}"},
                                                ignore_removed=True):
            remove_leftover(container)
    with contextlib.suppress(OSError):
        (LOCK_DIR / f"{lock_id}.lock").unlink()
