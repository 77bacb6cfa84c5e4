"""Bad input on every PoolService RPC: a clear status and message, no crash, no traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import docker
import grpc
import pytest

from envscaler.client import EnvClientError
from envscaler.pool.runner import LocalPool, PoolOptions
from envscaler.v1 import env_pb2 as pb
from envscaler.v1 import pool_pb2 as ppb
from envscaler.v1 import pool_pb2_grpc as ppb_grpc

pytestmark = pytest.mark.integration

METHODS = ["Acquire", "Release", "Renew", "Describe", "Reset", "CallTool", "GetState", "Evaluate", "ListEnvs", "Stats"]
LEASED = {
    "Release": ppb.ReleaseRequest, "Renew": ppb.RenewRequest, "Describe": ppb.LeaseDescribeRequest,
    "Reset": ppb.LeaseResetRequest, "CallTool": ppb.LeaseCallToolRequest, "GetState": ppb.LeaseGetStateRequest,
    "Evaluate": ppb.LeaseEvaluateRequest,
}


@pytest.fixture(scope="module")
def small_pool(engine: docker.DockerClient, example_images: dict[str, str]) -> Iterator[LocalPool]:
    with LocalPool(options=PoolOptions(size=2, only=["env_5", "env_6"], acquire_wait=30)) as local:
        yield local


@pytest.mark.parametrize("method", METHODS)
def test_garbage_bytes(small_pool: LocalPool, method: str) -> None:
    with grpc.insecure_channel(small_pool.address) as channel:
        with pytest.raises(grpc.RpcError) as err:
            channel.unary_unary(f"/envscaler.v1.PoolService/{method}")(b"\xff\xff\xff\xff", timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith("malformed envscaler.v1.") and "Traceback" not in err.value.details()


@pytest.mark.parametrize("method", sorted(LEASED))
def test_unknown_leases(small_pool: LocalPool, method: str) -> None:
    stub = ppb_grpc.PoolServiceStub(small_pool.pool.channel)
    with pytest.raises(grpc.RpcError) as err:
        getattr(stub, method)(LEASED[method](lease_id="no-such-lease"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "unknown lease 'no-such-lease'" in err.value.details()


@pytest.mark.parametrize("env_id", ["", "env_404", "../../etc", "x" * 10_000])
def test_unknown_environments(small_pool: LocalPool, env_id: str) -> None:
    with pytest.raises(EnvClientError) as err:
        small_pool.pool.acquire(env_id, wait=1)
    assert err.value.code == "NOT_FOUND" and "unknown env_id" in err.value.details


def test_bad_scenario_on_acquire_releases_the_container(small_pool: LocalPool) -> None:
    with pytest.raises(EnvClientError, match="NOT_FOUND: unknown scenario 'nope'"):
        small_pool.pool.acquire("env_5", "nope", wait=30)
    assert not small_pool.manager.leases


def test_oversized_and_malformed_calls_through_the_pool(small_pool: LocalPool) -> None:
    with small_pool.pool.session("env_6", "0718-092010", wait=30) as session:
        assert session.call("list_tickets", "{nope").error_kind == "INVALID_ARGUMENTS"
        assert session.call("list_tickets", "42").error_kind == "INVALID_ARGUMENTS"
        wrong_type = session.call("list_tickets", {"project": ["not", "a", "str"]})
        assert wrong_type.error_kind == "TOOL_EXCEPTION" and "TypeError" in wrong_type.error_message
        assert session.call("list_tickets", json.dumps({"project": "x" * (2 << 20)})).error_kind == \
            "ARGUMENTS_TOO_LARGE"
        with pytest.raises(EnvClientError) as err:
            session.call("list_tickets", json.dumps({"project": "x" * (70 << 20)}))
        assert err.value.code == "RESOURCE_EXHAUSTED"
        with pytest.raises(EnvClientError, match="INVALID_ARGUMENT"):
            session._invoke("Reset", pb.ResetRequest(init_config_json="[not an object]"))
        assert session.call("get_ticket", {"ticket_id": "MOB-1"}).ok
    stats = small_pool.pool.stats()
    assert stats.containers == 2


def test_a_session_stream_answers_bad_messages_in_band(small_pool: LocalPool) -> None:
    """Garbage, an unknown lease, an empty request and end_episode each get their own error; the stream carries on."""
    with small_pool.pool.session("env_5") as session, grpc.insecure_channel(small_pool.address) as channel:
        def leased(lease_id: str, **request: object) -> bytes:
            return ppb.LeaseSessionRequest(lease_id=lease_id, request=pb.SessionRequest(**request)).SerializeToString()

        messages = [b"\xff\xff\xff\xff", leased("no-such-lease", describe=pb.DescribeRequest()),
                    leased(session.lease_id), leased(session.lease_id, end_episode=pb.EndEpisodeRequest()),
                    leased(session.lease_id, describe=pb.DescribeRequest())]
        stream = channel.stream_stream("/envscaler.v1.PoolService/Session")
        replies = [pb.SessionResponse.FromString(r) for r in stream(iter(messages), timeout=30)]
    assert [r.WhichOneof("response") for r in replies] == ["error"] * 4 + ["describe"]
    assert replies[0].error.message.startswith("malformed envscaler.v1.LeaseSessionRequest")
    assert replies[1].error.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "unknown lease 'no-such-lease'" in replies[1].error.message
    assert replies[2].error.message.startswith("empty envscaler.v1.SessionRequest")
    assert replies[3].error.message == "a lease's episode ends with Release"
    assert replies[4].describe.env_id == "env_5"


def test_client_checks_are_off_by_default_on_a_pool(small_pool: LocalPool) -> None:
    """A client's own check code is refused unless the pool was started with --allow-client-checks, by every
    route: the pool's session and a lease's direct route alike."""
    check = ("mine", "def check_func(final_state):\n    return True\n")
    for direct in (False, True):
        with small_pool.pool.session("env_5", "0601-100212", wait=30, direct=direct) as session:
            assert session.describe().isolation["client_checks"] is False
            with pytest.raises(EnvClientError) as err:
                session.evaluate(checks=[check])
            assert err.value.code == "PERMISSION_DENIED" and "--allow-client-checks" in str(err.value)
            assert session.evaluate().total > 0  # the scenario's own checks still run
