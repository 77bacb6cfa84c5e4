"""`serve` is safe by default (issue 26, item 6): its first line says a process sandbox is not a container; it never
runs environment code as root (as the kernel reports the processes' uids); client checks are off unless asked; an
address other machines can reach is refused without a token and TLS, and served with them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from envscaler.client.env_client import EnvClient
from envscaler.client.errors import EnvClientError
from tests.certs import make_pki, outside_ip

CLI = [sys.executable, "-m", "envscaler.cli"]
TOKEN = "serve-token-of-this-test-0123456789"
NOTICE = "envscaler-runtime serve: a process sandbox on this host, not a container: environment code runs as uid "


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """`serve` with `args`; yields the process, its first line and its serving line."""
    process = subprocess.Popen([*CLI, "serve", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        first, second = process.stdout.readline(), process.stdout.readline()
        assert second.startswith("serving "), (first, second, process.stderr.read() if process.poll() else "")
        yield process, first.strip(), second.strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


def uids(pid: int) -> set[int]:
    return {int(u) for u in Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].splitlines()[0].split()}


def descendants(pid: int) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(c) for child in children for c in (child, *map(str, descendants(int(child))))]


@pytest.mark.skipif(os.geteuid() != 0, reason="what a root `serve` does")
def test_a_root_serve_runs_environment_code_as_an_unprivileged_uid_with_client_checks_off(tmp_path: Path) -> None:
    sock = tmp_path / "env.sock"
    with serving("--env", "env_3", "--listen", f"unix:{sock}") as (process, first, _):
        assert first.startswith(NOTICE) and "client checks off" in first and "\n" not in first
        with EnvClient(f"unix:{sock}") as client:
            client.reset("0402-163011")
            assert client.call("get_order", {"order_id": "O1002"}).result["data"]["total"] == 73.9
            with pytest.raises(EnvClientError) as refused:
                client.evaluate(checks=[("x", "def check_func(final_state):\n    return True\n")])
            assert refused.value.code == "PERMISSION_DENIED" and "--allow-client-checks" in refused.value.details
            workers = descendants(process.pid)
            assert workers, "the zygote and the episode's worker run under the server"
            # The kernel's word: every process that runs environment code has an unprivileged uid (all four ids).
            code_uids = {u for pid in workers for u in uids(pid)} - {0}
            assert code_uids and all(u >= 1000 for u in code_uids)
            assert {u for pid in workers for u in uids(pid)} == code_uids  # none of them root in any id


def test_client_checks_when_asked(tmp_path: Path) -> None:
    sock = tmp_path / "env.sock"
    with serving("--env", "env_3", "--listen", f"unix:{sock}", "--allow-client-checks") as (_, first, _), \
            EnvClient(f"unix:{sock}") as client:
        assert "client checks on" in first
        client.reset("0402-163011")
        result = client.evaluate(checks=[("x", "def check_func(final_state):\n    return True\n")])
        assert result.reward == 1.0


@pytest.mark.parametrize("listen", ["tcp:0.0.0.0:0", f"tcp:{outside_ip()}:0"])
def test_serve_refuses_an_address_other_machines_can_reach_without_a_token_and_tls(listen: str) -> None:
    done = subprocess.run([*CLI, "serve", "--env", "env_3", "--listen", listen], capture_output=True, text=True,
                          timeout=120, check=False)
    address = listen.removeprefix("tcp:")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (f"envscaler-runtime serve: {address} is reachable from other machines: add "
                                   "--token-file PATH and --tls-cert/--tls-key (or listen on 127.0.0.1 or a unix: "
                                   "socket)")


def test_serve_with_a_token_and_tls_on_an_address_other_machines_can_reach(tmp_path: Path) -> None:
    ip = outside_ip()
    pki = make_pki(tmp_path / "pki", [ip])
    token = tmp_path / "token"
    token.write_text(TOKEN)
    with serving("--env", "env_3", "--listen", f"tcp:{ip}:0", "--token-file", str(token), "--tls-cert",
                 str(pki.cert), "--tls-key", str(pki.key)) as (_, _, line):
        address = line.rsplit(" on ", 1)[1]
        assert address.startswith(f"{ip}:")
        with EnvClient(address, token=TOKEN, ca_file=str(pki.ca)) as client:
            client.reset("0402-163011")
            assert client.call("get_order", {"order_id": "O1002"}).result["data"]["total"] == 73.9
        for wrong, why in (("", "this server requires a bearer token"), ("x" * 20, "is not this server's")):
            with EnvClient(address, token=wrong, ca_file=str(pki.ca)) as client, \
                    pytest.raises(EnvClientError) as refused:
                client.reset("0402-163011")
            assert refused.value.code == "UNAUTHENTICATED" and why in refused.value.details
