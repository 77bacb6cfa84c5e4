"""Start an environment container, wait until its server is SERVING, remove it.

Every container carries the label `envscaler.owner`, so whoever started it (a
pool, a replay, a test session) can reap its leftovers even after a crash.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import socket
import struct
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import grpc
from docker.models.containers import Container
from grpc_health.v1 import health_pb2, health_pb2_grpc

from envscaler.containers import owners
from envscaler.containers.failures import StartFailure, classify, refusal
from envscaler.containers.hardening import Hardening, run_kwargs
from envscaler.images.engine import EngineError
from envscaler.protocol.addresses import SOCKET_DIR, session_socket_path
from envscaler.protocol.identities import SERVER_UID

OWNER_LABEL = "envscaler.owner"


class StartError(EngineError):
    """A container that did not come to serve, with what it left behind (why it died, its last log lines)."""

    def __init__(self, message: str, failure: StartFailure) -> None:
        super().__init__(message)
        self.failure = failure


@dataclass
class EnvContainer:
    container: Container
    socket_dir: Path
    privilege_split: bool = True

    @property
    def name(self) -> str:
        return str(self.container.name)

    @property
    def address(self) -> str:
        return f"unix:{self.socket_dir}/env.sock"

    @property
    def session_socket(self) -> str:
        return session_socket_path(self.address)


# The socket directory is the one host path a sandbox can write to. As root it is a tmpfs of its own this
# small, so a hostile environment cannot fill the host's disk through it (sockets take no space).
# Owned by the server's uid. Everyone else may only traverse it, never list it (0711): a lessee of another uid
# reaches its lease's route by the random name it was given, and no other name. The server's stable sockets are
# 0660 and, through the setgid bit, of group root: the pool (root) and the image's HEALTHCHECK (the container's root,
# which has no CAP_DAC_OVERRIDE) connect to them; environment code (uid and gid 10002) and host users cannot.
SOCKET_DIR_MODE = 0o2711
SOCKET_DIR_TMPFS = f"size=256k,nr_inodes=64,mode={SOCKET_DIR_MODE:o},uid={SERVER_UID},gid=0"
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MNT_DETACH = 2, 4, 8, 2


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def socket_directory() -> Path:
    """A parent others may traverse but not list (0711) with a leaf the server's uid owns; only the leaf is
    mounted. Not root: a private parent (0700) and a leaf open to the server's uid through its mode."""
    parent = Path(tempfile.mkdtemp(prefix="envscaler-"))
    leaf = parent / "sock"
    leaf.mkdir()
    if os.geteuid() == 0:
        parent.chmod(0o711)
        if _libc().mount(b"tmpfs", str(leaf).encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC,
                         SOCKET_DIR_TMPFS.encode()) == 0:
            return leaf
    try:
        os.chown(leaf, SERVER_UID, 0)
        leaf.chmod(SOCKET_DIR_MODE)
    except PermissionError:  # not root: let the sandbox user in through the mode instead
        parent.chmod(0o700)
        leaf.chmod(0o777)
    return leaf


def remove_socket_directory(leaf: Path) -> None:
    if os.path.ismount(leaf):
        _libc().umount2(str(leaf).encode(), _MNT_DETACH)
    shutil.rmtree(leaf.parent, ignore_errors=True)


def start(client: docker.DockerClient, image: str, owner: str, hardening: Hardening | None = None,
          labels: dict[str, str] | None = None) -> EnvContainer:
    # Every container has a living owner lock (a pool's, or else this process's): if its starter dies without
    # cleaning up, whoever starts containers next removes it (envscaler/containers/owners.py).
    labels = {OWNER_LABEL: owner, **(labels or {})}
    labels.setdefault(owners.POOL_LABEL, owners.process_owner(client))
    socket_dir = socket_directory()
    try:
        container = client.containers.run(
            image, detach=True, name=f"envscaler-{uuid.uuid4().hex[:12]}",
            labels=labels, **run_kwargs(hardening or Hardening(), socket_dir))
    except docker.errors.APIError as exc:
        remove_socket_directory(socket_dir)
        raise EngineError(f"cannot start {image}: {exc.explanation or exc}") from None
    return EnvContainer(container, socket_dir, (hardening or Hardening()).privilege_split)


def peer_uid(path: Path) -> int:
    """The uid of the process listening on a Unix socket (SO_PEERCRED), as the kernel reports it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        sock.connect(str(path))
        _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return uid


def verify_server(env: EnvContainer) -> None:
    """Both sockets are the trusted server's own (its uid), not a listener that sandbox code put in their place."""
    for path in (env.socket_dir / "env.sock", Path(env.session_socket)):
        verify_socket(env, path)


def verify_socket(env: EnvContainer, path: Path) -> None:
    """A socket in the container's directory (a stable one, or a lease's route) is the server's (SO_PEERCRED)."""
    try:
        uid = peer_uid(path)
    except OSError as exc:
        raise EngineError(f"container {env.container.name}: {path.name} does not answer: {exc}") from None
    if uid != SERVER_UID:
        raise EngineError(f"container {env.container.name}: {path.name} is served by uid {uid}, not the server's "
                          f"uid {SERVER_UID}; the container is not trusted")


def seal(socket_dir: Path) -> bool:
    """Without a privilege split (one uid for the server and environment code): once the server listens, take the
    directory from that uid, so nothing in the sandbox can replace the server's sockets or write to the host. With
    the split the directory is the server's alone (0700) from the start, and stays so. Only as root."""
    try:
        os.chown(socket_dir, 0, 0)
        socket_dir.chmod(0o711)  # traversable (a lessee's route), never listable
    except PermissionError:
        return False
    return True


def wait_ready(env: EnvContainer, timeout: float = 30.0) -> None:
    """Until the server answers SERVING over its socket (then the directory is sealed); a container that exits
    first is an error."""
    deadline = time.monotonic() + timeout
    grpc_socket = env.socket_dir / "env.sock"
    while time.monotonic() < deadline:
        status = health_of(env.address) if grpc_socket.exists() else None
        if status == health_pb2.HealthCheckResponse.SERVING and Path(env.session_socket).exists():
            if env.privilege_split:
                verify_server(env)
            else:
                seal(env.socket_dir)
            return
        if status == health_pb2.HealthCheckResponse.NOT_SERVING:  # final: it answers only once it has loaded
            raise refused(env, deadline)
        env.container.reload()
        if env.container.status in ("exited", "dead"):
            raise died_before_serving(env)
        time.sleep(0.02)
    failure = classify(env.container.attrs.get("State") or {}, _logs(env), _memory(env),
                       detail=f"not serving after {timeout:g} s")
    raise StartError(f"container {env.container.name} was not serving after {timeout:g} s", failure)


def health_of(address: str, timeout: float = 1.0) -> int | None:
    """The server's health status (grpc.health.v1), or None while it does not answer."""
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
    except grpc.RpcError:
        return None
    return int(reply.status)


def refused(env: EnvContainer, deadline: float) -> StartError:
    """A server that answers NOT_SERVING: its environment was refused at load. Why, in one line, from what it
    printed (it prints just after it answers: looked for a moment)."""
    give_up = min(deadline, time.monotonic() + 5.0)
    reason = refusal(_logs(env, 50))
    while not reason and time.monotonic() < give_up:
        time.sleep(0.1)
        reason = refusal(_logs(env, 50))
    reason = reason or "its server reports NOT_SERVING and said no more"
    return StartError(f"container {env.container.name} refuses to serve its environment: {reason}",
                      StartFailure("refused", logs=_logs(env), memory_bytes=_memory(env), detail=reason))


def _logs(env: EnvContainer, lines: int = 10) -> str:
    try:
        return env.container.logs(tail=lines).decode(errors="replace").strip()
    except Exception:  # gone already, or the engine is away: the cause is still known from its state
        return ""


def _memory(env: EnvContainer) -> int:
    return int((env.container.attrs.get("HostConfig") or {}).get("Memory") or 0)


def died_before_serving(env: EnvContainer) -> StartError:
    """Why a container exited before it served: killed for memory (OOM, exit 137), or its status and output."""
    state = env.container.attrs.get("State") or {}
    logs = _logs(env)
    failure = classify(state, logs, _memory(env))
    name = env.container.name
    if failure.reason == "oom":
        limit = f"{failure.memory_bytes >> 20} MiB" if failure.memory_bytes else "its limit"
        output = f"; last output: {logs.splitlines()[-1][:200]}" if logs else ""
        return StartError(f"container {name} was killed for memory before serving (limit {limit}, exit "
                          f"{failure.exit_code}): raise --memory-mb{output}", failure)
    return StartError(f"container {name} exited with status {failure.exit_code} before serving: "
                      f"{logs or '(no output)'}", failure)


def remove(env: EnvContainer) -> bool:
    """Remove the container; False when the engine could not be reached (the caller retries)."""
    try:
        env.container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except Exception:  # the engine is unreachable or refused: nothing is removed yet
        return False
    remove_socket_directory(env.socket_dir)
    return True


def remove_leftover(container: Container) -> None:
    """Remove a container found by its labels (its starter is gone), and the socket directory we made for it."""
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError:  # e.g. 409: another reaper's removal is in progress; return once it is gone
        with contextlib.suppress(Exception):
            container.wait(condition="removed", timeout=60)
    for mount in container.attrs.get("Mounts") or []:
        source = Path(mount.get("Source") or "")
        if mount.get("Destination") == SOCKET_DIR and source.name == "sock" and \
                source.parent.name.startswith("envscaler-") and source.parent.parent == Path(tempfile.gettempdir()):
            remove_socket_directory(source)


def reap(client: docker.DockerClient, owner: str) -> int:
    """Remove every container of `owner`; returns how many."""
    leftovers = client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={owner}"}, ignore_removed=True)
    for container in leftovers:
        remove_leftover(container)
    return len(leftovers)


@contextlib.contextmanager
def running(client: docker.DockerClient, image: str, owner: str, hardening: Hardening | None = None,
            timeout: float = 30.0) -> Iterator[EnvContainer]:
    env = start(client, image, owner, hardening)
    try:
        wait_ready(env, timeout)
        yield env
    finally:
        remove(env)
