"""The Ray actor that owns one node's pool: it starts `node_pool` as a child process on its node and reports where
that pool listens. Clients never call through the actor for tool calls; they ask it once for the address."""

from __future__ import annotations

import json
import os
import queue
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

TOKEN_ENV = "ENVSCALER_NODE_POOL_TOKEN"  # the node pool's token (envscaler/ray/node_pool.py reads it)
NAMESPACE = "envscaler"
NAME_PREFIX = "envscaler-pool-"
START_ATTEMPTS = 3


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
    # Its pool listens on the node's IP: clients send this token and trust exactly this certificate (PEM).
    token: str = ""
    certificate: str = ""


def _lines(stream: IO[str], lines: queue.Queue[str]) -> None:
    """Hands on the first line and drains the rest (a full pipe would block the pool)."""
    for line in stream:
        lines.put(line)
    lines.put("")


class NodePoolActor:
    """One per node (placed with hard node affinity). Its process dying (or its child pool dying) makes Ray restart
    it, up to the actor's max_restarts."""

    def __init__(self, config: dict[str, Any], ready_timeout: float) -> None:
        import ray

        self.node_id = ray.get_runtime_context().get_node_id()
        self.ip = ray.util.get_node_ip_address()
        self.pool_id = pool_id_for(self.node_id)
        self.token = secrets.token_urlsafe(32)  # this incarnation's; handed to clients by info(), over Ray
        self.stopping = False
        self.log = Path(tempfile.gettempdir()) / f"envscaler-{self.pool_id}.log"
        spec = {**config, "pool_id": self.pool_id, "listen": f"tcp:{self.ip}:0"}
        for attempt in range(1, START_ATTEMPTS + 1):  # a pool that fails to start is tried again (a shared engine
            line = self._spawn(spec, ready_timeout)   # can refuse for a moment), then the actor fails with its cause
            if line:
                break
            error = self.log.read_text(errors="replace").strip().splitlines() if self.log.exists() else []
            if attempt == START_ATTEMPTS:
                raise RuntimeError(f"the pool on node {self.node_id} exited with status {self.child.returncode}: "
                                   f"{error[-1] if error else '(no output)'}")
        started = json.loads(line)
        self.info_ = NodeInfo(self.node_id, self.ip, started["address"], self.pool_id, tuple(started["envs"]),
                              started["failed"], self.token, started["certificate"])
        threading.Thread(target=self._watch_child, daemon=True, name="pool-watch").start()

    def _spawn(self, spec: dict[str, Any], ready_timeout: float) -> str:
        """Start the pool; its first line once it serves, or '' when it exited first."""
        with self.log.open("w") as log:  # the pool's own messages, kept on its node (the cause when it fails)
            self.child = subprocess.Popen([sys.executable, "-m", "envscaler.ray.node_pool", json.dumps(spec)],
                                          env=os.environ | {TOKEN_ENV: self.token},
                                          stdout=subprocess.PIPE, stderr=log, text=True,
                                          start_new_session=True)  # a Ctrl-C to the driver is not the pool's
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_lines, args=(self.child.stdout, lines), daemon=True).start()
        try:
            line = lines.get(timeout=ready_timeout)
        except queue.Empty:
            self.child.kill()
            raise RuntimeError(f"the pool on node {self.node_id} did not start within {ready_timeout:g} s") from None
        if not line:
            self.child.wait()
        return line

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
            status = self.child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.child.kill()
            status = self.child.wait()
        self.log.unlink(missing_ok=True)
        return status

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
