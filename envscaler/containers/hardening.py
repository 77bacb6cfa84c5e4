"""How a sandbox container runs. Every default is the strict one; each can be relaxed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envscaler.protocol.addresses import SOCKET_DIR
from envscaler.protocol.identities import SERVER_UID
from envscaler.protocol.options import CLIENT_CHECKS_ENV, WORKER_MEMORY_ENV

# The container's user: the server's; environment code runs as identities.SANDBOX_UID (runtime/trusted/launcher.py).
CONTAINER_USER = f"{SERVER_UID}:{SERVER_UID}"
CPU_PERIOD_US = 10_000
# What the entry point needs, as root, to split privileges: the spawner keeps SETUID/SETGID to start each zygote as
# the sandbox uid (and SETPCAP to empty its bounding set); the server keeps KILL to end the sandbox's processes.
# Nothing else is granted, and environment code ends up with no capability at all, bounding set included.
SPLIT_CAPABILITIES = ["SETUID", "SETGID", "SETPCAP", "KILL"]


@dataclass(frozen=True)
class Hardening:
    network: str = "none"  # gRPC goes over a Unix socket in a bind-mounted directory
    read_only: bool = True
    tmpfs_bytes: int = 64 << 20  # the only writable place besides the socket directory
    cap_drop_all: bool = True
    no_new_privileges: bool = True
    user: str = CONTAINER_USER  # the container's user when privilege_split is off
    # Start the entry point as root with only SPLIT_CAPABILITIES, so that the trusted server and environment code run
    # under different uids; off: everything runs as `user`, fenced only by Landlock and non-dumpable processes.
    privilege_split: bool = True
    # Accept checks sent by clients (EvaluateRequest.checks): synthesis needs them; a pool turns them off by default.
    client_checks: bool = True
    pids_limit: int = 256
    memory_bytes: int = 512 << 20
    cpus: float = 1.0
    runtime: str | None = None  # e.g. "runsc" for gVisor hosts
    init: bool = True  # tini as PID 1 reaps orphans of killed workers
    # The image's HEALTHCHECK starts a Python process per interval; a pool checks health itself over gRPC.
    docker_healthcheck: bool = False


def run_kwargs(hardening: Hardening, socket_dir: Path) -> dict[str, Any]:
    """Keyword arguments for the Docker SDK's containers.create/run."""
    kwargs: dict[str, Any] = {
        "network_mode": hardening.network,
        "read_only": hardening.read_only,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,noexec,size={hardening.tmpfs_bytes}"},
        "user": "0:0" if hardening.privilege_split else hardening.user,
        "pids_limit": hardening.pids_limit,
        "mem_limit": hardening.memory_bytes,
        "memswap_limit": hardening.memory_bytes,
        # --cpus as a quota per 10 ms rather than Docker's 100 ms: a sandbox that bursts past its share (a Reset
        # runs the server, the zygote's next fork and the new worker at once) waits at most ~10 ms, not ~100.
        "cpu_period": CPU_PERIOD_US,
        "cpu_quota": int(hardening.cpus * CPU_PERIOD_US),
        "init": hardening.init,
        "volumes": {str(socket_dir): {"bind": SOCKET_DIR, "mode": "rw"}},
        # A worker that allocates without bound gets MemoryError before the cgroup's OOM killer picks a victim.
        "environment": {WORKER_MEMORY_ENV: str(hardening.memory_bytes * 3 // 4),
                        CLIENT_CHECKS_ENV: "1" if hardening.client_checks else "0"},
    }
    if hardening.cap_drop_all:
        kwargs["cap_drop"] = ["ALL"]
    if hardening.privilege_split:
        kwargs["cap_add"] = SPLIT_CAPABILITIES
    if hardening.no_new_privileges:
        kwargs["security_opt"] = ["no-new-privileges"]
    if not hardening.docker_healthcheck:
        kwargs["healthcheck"] = {"test": ["NONE"]}
    if hardening.runtime:
        kwargs["runtime"] = hardening.runtime
    return kwargs
