"""The pool talks only to the server it started: a listener of another uid in the server's place is refused."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from envscaler.containers.launch import EnvContainer, peer_uid, verify_server
from envscaler.images.engine import EngineError
from envscaler.protocol.identities import SANDBOX_UID, SERVER_UID


def listening_as(uid: int, directory: Path) -> int:
    """A forked process that becomes `uid`, then listens where the server's sockets would be."""
    paths = [str(directory / "env.sock"), str(directory / "env.session.sock")]
    pid = os.fork()
    if pid == 0:
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            held = []
            for path in paths:
                listener = socket.socket(socket.AF_UNIX)
                listener.bind(path)
                listener.listen()
                held.append(listener)
            time.sleep(60)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 10
    while not all(Path(p).exists() for p in paths):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return pid


@pytest.mark.skipif(os.geteuid() != 0, reason="starting listeners under other uids needs root")
@pytest.mark.parametrize("uid", [SERVER_UID, SANDBOX_UID])
def test_only_the_servers_uid_is_trusted(uid: int) -> None:
    tmp_path = Path(tempfile.mkdtemp(prefix="envscaler-peer-"))  # pytest's own is 0700: other uids cannot bind there
    tmp_path.chmod(0o777)
    pid = listening_as(uid, tmp_path)
    try:
        assert peer_uid(tmp_path / "env.sock") == uid
        env = EnvContainer(container=SimpleNamespace(name="probe"), socket_dir=tmp_path)  # type: ignore[arg-type]
        if uid == SERVER_UID:
            verify_server(env)
        else:
            with pytest.raises(EngineError, match="served by uid 10002, not the server's uid 10001"):
                verify_server(env)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        shutil.rmtree(tmp_path, ignore_errors=True)
