"""TCP pools are authenticated (issue 26, item 6): a bearer token checked on every RPC, TLS with a CA made for the
test, both required where other machines can reach the pool. The real `serve_pool` (its gRPC server, interceptor
and TLS port) on a real socket, with the real Python clients; the sandboxes are the in-memory backend's
(tests/unit/fake_backend.py), since what is under test is who may talk to the pool."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from envscaler.client.auth import open_channel, security_of
from envscaler.client.errors import EnvClientError
from envscaler.client.pool_client import AsyncPool, Pool
from envscaler.images.engine import EngineError
from envscaler.pool.runner import PoolOptions, serve_pool
from envscaler.protocol.auth import CA_FILE_ENV, TOKEN_ENV
from envscaler.spec.loader import load_corpus
from tests.certs import Pki, make_pki, outside_ip
from tests.unit.fake_backend import FakeBackend

TOKEN = "s3cret-token-of-this-test-0123456789"


@pytest.fixture(scope="module")
def ip() -> str:
    return outside_ip()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory, ip: str) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), ["127.0.0.1", ip])


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("token") / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


@contextlib.contextmanager
def pool_serving(options: PoolOptions, root: Path) -> Iterator[str]:
    """serve_pool in a thread of its own (its own loop), on the fake backend; yields the address it serves on."""
    root.mkdir(parents=True, exist_ok=True)
    backend = FakeBackend(root)
    ready = threading.Event()
    state: dict[str, object] = {}

    def run() -> None:
        async def main() -> None:
            stop = asyncio.Event()
            state["stop"], state["loop"] = stop, asyncio.get_running_loop()

            def started(_manager: object, address: str) -> None:
                state["address"] = address
                ready.set()

            await serve_pool(None, load_corpus(None, None), {"env_1": "image-env_1"}, options, stop, started,
                             backend=backend)

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced to the test
            state["error"] = exc
        ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    if "error" in state:
        raise state["error"]  # type: ignore[misc]
    try:
        yield str(state["address"])
    finally:
        loop, stop = state["loop"], state["stop"]
        loop.call_soon_threadsafe(stop.set)  # type: ignore[attr-defined]
        thread.join(30)


def secure_options(ip: str, pki: Pki, token_file: Path) -> PoolOptions:
    return PoolOptions(size=1, listen=f"tcp:{ip}:0", token_file=str(token_file), tls_cert=str(pki.cert),
                       tls_key=str(pki.key), fresh_per_lease=False)


@pytest.mark.parametrize("given", [{}, {"token": True}, {"tls": True}], ids=["neither", "token only", "TLS only"])
def test_a_pool_other_machines_can_reach_refuses_to_start_without_token_and_tls(
        given: dict[str, bool], ip: str, pki: Pki, token_file: Path, tmp_path: Path) -> None:
    options = PoolOptions(size=1, listen=f"tcp:{ip}:0", token_file=str(token_file) if given.get("token") else "",
                          tls_cert=str(pki.cert) if given.get("tls") else "",
                          tls_key=str(pki.key) if given.get("tls") else "")
    with pytest.raises(EngineError) as refused, pool_serving(options, tmp_path):
        pass
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{ip}:0 is reachable from other machines: add ")
    assert ("--token-file PATH" in message) != bool(given.get("token"))
    assert ("--tls-cert/--tls-key" in message) != bool(given.get("tls"))
    assert not list(tmp_path.iterdir())  # refused before any sandbox started


@pytest.mark.parametrize("listen", ["tcp:0.0.0.0:0", "tcp:[::]:0"])
def test_wildcard_addresses_count_as_reachable(listen: str, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="is reachable from other machines"), \
            pool_serving(PoolOptions(size=1, listen=listen), tmp_path):
        pass


def test_a_token_file_that_is_not_a_token_is_refused_in_one_line(ip: str, pki: Pki, tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("abc\n")
    for path, why in ((short, "at least 16 printable characters"), (tmp_path / "missing", "No such file")):
        options = PoolOptions(size=1, listen=f"tcp:{ip}:0", token_file=str(path), tls_cert=str(pki.cert),
                              tls_key=str(pki.key))
        with pytest.raises(EngineError, match=why) as refused, pool_serving(options, tmp_path / "sandboxes"):
            pass
        assert "\n" not in str(refused.value) and str(refused.value).startswith(f"--token-file {path}: ")


def test_the_token_and_tls_let_a_client_lease_and_call(ip: str, pki: Pki, token_file: Path, tmp_path: Path) -> None:
    with pool_serving(secure_options(ip, pki, token_file), tmp_path) as address:
        assert address.startswith(f"{ip}:")
        with Pool(address, token=TOKEN, ca_file=str(pki.ca)) as pool:
            assert [e.env_id for e in pool.list_envs().envs] == ["env_1"]
            with pool.session("env_1", wait=10) as env:  # unary Acquire/Release and a Session stream
                assert env.call("anything").observation == "ok"


def test_missing_and_wrong_tokens_get_unauthenticated_on_every_rpc(ip: str, pki: Pki, token_file: Path,
                                                                   tmp_path: Path) -> None:
    with pool_serving(secure_options(ip, pki, token_file), tmp_path) as address:
        for token, why in (("", "this server requires a bearer token: pass token= (or set ENVSCALER_TOKEN)"),
                           ("not-the-token-0123456789", "the bearer token is not this server's")):
            with Pool(address, token=token, ca_file=str(pki.ca)) as pool:
                for attempt in (pool.list_envs, pool.stats, lambda: pool.acquire("env_1", wait=5)):
                    with pytest.raises(EnvClientError) as refused:
                        attempt()
                    assert refused.value.code == "UNAUTHENTICATED" and refused.value.details == why
            # gRPC health and reflection are RPCs too: the interceptor runs before any handler
            channel = open_channel(address, security_of(address, token, str(pki.ca)), [])
            with pytest.raises(grpc.RpcError) as health:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert health.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
            channel.close()


def test_the_async_client_and_the_environment_variables(ip: str, pki: Pki, token_file: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv(CA_FILE_ENV, str(pki.ca))

    async def lease(address: str, **kwargs: str) -> str:
        async with AsyncPool(address, **kwargs) as pool, pool.session("env_1", wait=10) as env:
            return (await env.call("anything")).observation

    with pool_serving(secure_options(ip, pki, token_file), tmp_path) as address:
        assert asyncio.run(lease(address)) == "ok"  # both from the environment
        with pytest.raises(EnvClientError) as refused:
            asyncio.run(lease(address, token="not-the-token-0123456789"))
        assert refused.value.code == "UNAUTHENTICATED"


def test_a_client_trusting_another_ca_does_not_talk_to_the_pool(ip: str, pki: Pki, token_file: Path,
                                                                 tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other", ["127.0.0.1", ip], ca_name="someone else's CA")
    with pool_serving(secure_options(ip, pki, token_file), tmp_path / "sandboxes") as address:
        with Pool(address, token=TOKEN, ca_file=str(other.ca), timeout=5) as pool, \
                pytest.raises(EnvClientError) as refused:
            pool.list_envs()
        assert refused.value.code == "UNAVAILABLE" and "CERTIFICATE_VERIFY_FAILED" in refused.value.details
        with Pool(address, token="", ca_file="", timeout=5) as pool, pytest.raises(EnvClientError) as plaintext:
            pool.list_envs()  # plaintext to a TLS port
        assert plaintext.value.code == "UNAVAILABLE"


def test_a_client_never_sends_a_token_in_the_clear_to_another_machine(ip: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"a token goes to tcp:{ip}:1 only over TLS: pass ca_file=")):
        Pool(f"tcp:{ip}:1", token=TOKEN, ca_file="")
    with pytest.raises(ValueError, match=r"ca_file /nonexistent\.pem: No such file"):
        Pool(f"tcp:{ip}:1", token=TOKEN, ca_file="/nonexistent.pem")


def test_loopback_may_go_without_and_takes_a_token_when_given(token_file: Path, tmp_path: Path) -> None:
    with pool_serving(PoolOptions(size=1, listen="tcp:127.0.0.1:0"), tmp_path / "open") as address, \
            Pool(address, token="", ca_file="") as pool:
        assert [e.env_id for e in pool.list_envs().envs] == ["env_1"]
    options = PoolOptions(size=1, listen="tcp:127.0.0.1:0", token_file=str(token_file))
    with pool_serving(options, tmp_path / "token") as address:
        with Pool(address, token=TOKEN, ca_file="") as pool:
            assert [e.env_id for e in pool.list_envs().envs] == ["env_1"]
        with Pool(address, token="", ca_file="") as pool, pytest.raises(EnvClientError, match="UNAUTHENTICATED"):
            pool.list_envs()


def test_the_pool_command_refuses_an_exposed_address_before_building_anything() -> None:
    from tests.unit.test_cli import run_cli

    done = run_cli("pool", "--listen", "tcp:0.0.0.0:50999", "--size", "1", "--only", "env_1")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "envscaler-runtime pool: 0.0.0.0:50999 is reachable from other machines: add --token-file PATH and "
        "--tls-cert/--tls-key (or listen on 127.0.0.1 or a unix: socket)"]


def test_a_ray_node_pool_listens_with_its_own_token_and_certificate(ip: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """What envscaler.ray.node_pool does before it serves on the node's IP; clients trust only that certificate."""
    from envscaler.ray.actor import TOKEN_ENV as NODE_TOKEN_ENV
    from envscaler.ray.node_pool import secure

    options = PoolOptions(size=1, listen=f"tcp:{ip}:0", fresh_per_lease=False)
    monkeypatch.delenv(NODE_TOKEN_ENV, raising=False)
    with pytest.raises(ValueError, match="is not set: a node pool listens on the node's IP only with a token"):
        secure(options, tmp_path)
    monkeypatch.setenv(NODE_TOKEN_ENV, TOKEN)
    certificate = secure(options, tmp_path)
    assert (tmp_path / "key.pem").stat().st_mode & 0o077 == 0 and (tmp_path / "token").stat().st_mode & 0o077 == 0
    with pool_serving(options, tmp_path / "sandboxes") as address:
        with Pool(address, token=TOKEN, root_certificates=certificate.encode(), ca_file="") as pool:
            assert [e.env_id for e in pool.list_envs().envs] == ["env_1"]
        with Pool(address, token="not-the-token-0123456789", root_certificates=certificate.encode()) as pool, \
                pytest.raises(EnvClientError, match="UNAUTHENTICATED"):
            pool.list_envs()
