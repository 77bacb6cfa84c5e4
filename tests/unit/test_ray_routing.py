"""The routing choice of envscaler.ray alone: which node a new session goes to."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from envscaler.ray.pool import eligible_nodes
from envscaler.ray.routing import choose_node, serving_nodes, wait_node


def test_the_callers_own_node_first_when_it_has_an_idle_container() -> None:
    idle = {"a": {"env_1": 1}, "b": {"env_1": 5}}
    assert choose_node("env_1", "a", idle) == "a"


def test_else_the_node_with_the_most_idle_containers_of_that_environment() -> None:
    idle = {"a": {"env_1": 0, "env_2": 9}, "b": {"env_1": 2}, "c": {"env_1": 3, "env_2": 0}}
    assert choose_node("env_1", "a", idle) == "c"
    assert choose_node("env_2", "c", idle) == "a"


def test_ties_go_to_the_smallest_node_id_so_the_choice_is_reproducible() -> None:
    idle = {"z": {"env_1": 2}, "m": {"env_1": 2}, "q": {"env_1": 1}}
    assert choose_node("env_1", "elsewhere", idle) == "m"


def test_none_means_wait_when_no_node_has_one_idle() -> None:
    assert choose_node("env_1", "a", {"a": {"env_1": 0}, "b": {"env_2": 4}}) is None
    assert choose_node("env_1", "a", {}) is None


def test_a_caller_on_a_node_without_a_pool_is_routed_elsewhere() -> None:
    assert choose_node("env_1", "driver-node", {"a": {"env_1": 1}}) == "a"


def test_serving_nodes_lists_the_nodes_that_serve_an_environment_at_all() -> None:
    assert serving_nodes("env_1", {"b": {"env_1"}, "a": {"env_1", "env_2"}, "c": {"env_2"}}) == ["a", "b"]
    assert serving_nodes("env_9", {"a": {"env_1"}}) == []


def test_eligible_nodes_are_alive_and_offer_every_requested_resource() -> None:
    nodes = [{"NodeID": "b", "Alive": True, "Resources": {"CPU": 8, "sandbox": 1}},
             {"NodeID": "a", "Alive": True, "Resources": {"CPU": 2}},
             {"NodeID": "c", "Alive": False, "Resources": {"CPU": 8, "sandbox": 1}}]
    assert [n["NodeID"] for n in eligible_nodes(nodes, None)] == ["a", "b"]
    assert [n["NodeID"] for n in eligible_nodes(nodes, {"sandbox": 1})] == ["b"]
    assert eligible_nodes(nodes, {"CPU": 16}) == []


def test_with_none_idle_the_wait_goes_where_one_comes_first() -> None:
    counts = {"a": {"env_1": {"starting": 0, "leased": 3}},
              "b": {"env_1": {"starting": 1, "leased": 1}},
              "c": {"env_1": {"starting": 1, "leased": 2}},
              "d": {"env_2": {"starting": 5, "leased": 0}}}
    assert wait_node("env_1", "a", counts) == "c"  # most starting, then most leased
    without_starts = {"a": {"env_1": {"leased": 1}}, "b": {"env_1": {"leased": 2}}, "c": {"env_1": {"leased": 2}}}
    assert wait_node("env_1", "a", without_starts) == "b"
    assert wait_node("env_1", "c", without_starts) == "c"  # a tie goes to the caller's own node
    assert wait_node("env_1", "x", {"p": {"env_1": {}}, "o": {"env_1": {}}}) == "o"
    assert wait_node("env_9", "a", counts) is None
