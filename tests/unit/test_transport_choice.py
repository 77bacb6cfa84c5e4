"""A session's transport is chosen from the pool's address and the caller's wish, never by probing files."""

from __future__ import annotations

import pytest

from envscaler.client.transport import choose, on_this_host


@pytest.mark.parametrize(("address", "local"), [
    ("unix:/run/pool.sock", True), ("tcp:127.0.0.1:50051", True), ("127.0.0.1:50051", True),
    ("localhost:50051", True), ("[::1]:50051", True), ("tcp:10.0.0.7:50051", False), ("pool.example:443", False),
])
def test_this_host_is_read_from_the_address(address: str, local: bool) -> None:
    assert on_this_host(address) is local


def test_auto_takes_the_socket_only_for_a_local_pool_that_offers_one() -> None:
    assert choose("auto", "unix:/p.sock", "/p.session.sock") == "socket"
    assert choose("auto", "tcp:10.0.0.7:1", "/p.session.sock") == "stream"
    assert choose("auto", "unix:/p.sock", "") == "stream"
    assert choose("stream", "unix:/p.sock", "/p.session.sock") == "stream"
    assert choose("socket", "tcp:10.0.0.7:1", "/p.session.sock") == "socket"
    with pytest.raises(ValueError, match="no session socket"):
        choose("socket", "tcp:127.0.0.1:1", "")
