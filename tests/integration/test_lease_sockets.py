"""Every socket a lessee can reach is per lease (issue 26, item 4), through a real pool that reuses its one container
(fresh_per_lease=False), so lease B runs where lease A ran. Lease A's holder is a host process of another uid than
the pool's (the pool's own user and root are trusted: SECURITY.md): after A's release it cannot list the socket
directory to find B's route, its old route is gone, and the container's stable sockets refuse it; the route it is
given for its own lease works (so what refuses it is the kernel's file modes, not an unreachable directory)."""

from __future__ import annotations

import errno
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from envscaler.pool.runner import LocalPool, PoolOptions
from envscaler.protocol import framing
from envscaler.v1 import env_pb2 as pb

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="a lessee of another uid is started by root")]
LESSEE_UID = 65534  # nobody: neither the pool's uid nor the sandbox's


@pytest.fixture(scope="module")
def one_container(engine: docker.DockerClient, example_images: dict[str, str]) -> Iterator[LocalPool]:
    with LocalPool(options=PoolOptions(size=1, only=["env_3"], fresh_per_lease=False, acquire_wait=60)) as local:
        yield local


def as_lessee(probe: str, paths: dict[str, str]) -> dict[str, str]:
    """Run one probe in a forked child that became LESSEE_UID; returns what each attempt got (an errno name or
    what the server answered)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            os.setgroups([])
            os.setresgid(LESSEE_UID, LESSEE_UID, LESSEE_UID)
            os.setresuid(LESSEE_UID, LESSEE_UID, LESSEE_UID)
            os.write(write, json.dumps({name: PROBES[probe](path) for name, path in paths.items()}).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        out = pipe.read()
    os.waitpid(pid, 0)
    return dict(json.loads(out))


def _list(path: str) -> str:
    try:
        return f"listed {sorted(os.listdir(path))}"
    except OSError as exc:
        return errno.errorcode[exc.errno or 0]


def _state(path: str) -> str:
    """Connect, and ask for the episode's state as a session socket message (what reaching an episode means)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(path)
            framing.send(sock, framing.frame(pb.SessionRequest(get_state=pb.GetStateRequest())))
            reply = pb.SessionResponse.FromString(bytes(framing.FrameReader(sock).read()))
    except OSError as exc:
        return errno.errorcode[exc.errno or 0]
    return reply.WhichOneof("response") or "nothing"


PROBES = {"list": _list, "state": _state}


def test_a_previous_lessee_reaches_nothing_of_the_next_lease(one_container: LocalPool) -> None:
    pool = one_container.pool
    first = pool.acquire("env_3", "0402-163011", direct=True)
    old_route = first.direct_session_socket
    directory = Path(old_route).parent
    assert as_lessee("state", {"own route": old_route}) == {"own route": "get_state"}
    first.release()
    with pool.session("env_3", "0402-163011", direct=True) as second:
        assert Path(second.direct_session_socket).parent == directory  # the same container, a new route
        assert second.direct_session_socket != old_route and not Path(old_route).exists()
        assert as_lessee("list", {"socket directory": str(directory), "its parent": str(directory.parent)}) == {
            "socket directory": "EACCES", "its parent": "EACCES"}
        assert as_lessee("state", {"old route": old_route, "env.sock": str(directory / "env.sock"),
                                   "env.session.sock": str(directory / "env.session.sock")}) == {
            "old route": "ENOENT", "env.sock": "EACCES", "env.session.sock": "EACCES"}
        # The current lessee, of the same uid, reaches its own route: the refusals above are the sockets' own.
        assert as_lessee("state", {"own route": second.direct_session_socket}) == {"own route": "get_state"}
        assert second.call("get_order", {"order_id": "O1002"}).result["data"]["total"] == 73.9
