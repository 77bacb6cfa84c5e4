"""The Ray actor that owns one node's pool: it starts `node_pool` as a child process on its node and reports where
that pool listens. Clients never call through the actor for tool calls; they ask it once for the address."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import IO, Any

NAMESPACE = "envscaler"
NAME_PREFIX = "envscaler-pool-"


def actor_name(node_id: str) -> str:
    return f"{NAME_PREFIX}{node_id}"


def pool_id_for(node_id: str) -> str:
    """Its containers' owner label: the node, then this incarnation (a restarted actor is a new owner, so the pool
    it starts reaps what its dead predecessor left on the engine)."""
    return f"ray-{node_id[:16]}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    ip: str
    address: str  # the pool's gRPC address, tcp:IP:PORT
    pool_id: str
    envs: tuple[str, ...]
    failed: dict[str, str]  # environments whose image could not be built here, with why


def _first_line(stream: IO[str], lines: queue.Queue[str]) -> None:
    lines.put(stream.readline())


class NodePoolActor:
    """One per node (placed with hard node affinity). Its process dying (or its child pool dying) makes Ray restart
    it, up to the actor's max_restarts."""

    def __init__(self, config: dict[str, Any], ready_timeout: float) -> None:
        import ray

        self.node_id = ray.get_runtime_context().get_node_id()
        self.ip = ray.util.get_node_ip_address()
        self.pool_id = pool_id_for(self.node_id)
        self.stopping = False
        spec = {**config, "pool_id": self.pool_id, "listen": f"tcp:{self.ip}:0"}
        self.child = subprocess.Popen([sys.executable, "-m", "envscaler.ray.node_pool", json.dumps(spec)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      start_new_session=True)  # a Ctrl-C to the driver is not the pool's to take
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_first_line, args=(self.child.stdout, lines), daemon=True).start()
        try:
            line = lines.get(timeout=ready_timeout)
        except queue.Empty:
            self.child.kill()
            raise RuntimeError(f"the pool on node {self.node_id} did not start within {ready_timeout:g} s") from None
        if not line:
            self.child.wait()
            error = (self.child.stderr.read() if self.child.stderr else "").strip().splitlines()
            raise RuntimeError(f"the pool on node {self.node_id} exited with status {self.child.returncode}: "
                               f"{error[-1] if error else '(no output)'}")
        started = json.loads(line)
        self.info_ = NodeInfo(self.node_id, self.ip, started["address"], self.pool_id, tuple(started["envs"]),
                              started["failed"])
        threading.Thread(target=self._watch_child, daemon=True, name="pool-watch").start()

    def _watch_child(self) -> None:
        """A pool that dies under a live actor takes the actor down, so Ray restarts both (never a stale address)."""
        self.child.wait()
        if not self.stopping:
            os._exit(1)

    def info(self) -> NodeInfo:
        return self.info_

    def shutdown(self, timeout: float = 90.0) -> int:
        """Drain the pool (it removes its containers); returns its exit status."""
        self.stopping = True
        self.child.terminate()
        try:
            return self.child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.child.kill()
            return self.child.wait()

    def reap_dead(self) -> int:
        """Remove the containers of owners that are gone on this node's engine (e.g. a lost node's pool that shared
        this host's engine); returns how many."""
        from envscaler.containers.owners import reap_dead
        from envscaler.images.engine import connect

        return reap_dead(connect())

    def pool_pid(self) -> int:
        return self.child.pid

    def ping(self) -> float:
        return time.time()
