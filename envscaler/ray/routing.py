"""Which node a new session goes to: a pure choice over the pools' idle counts, so it can be tested alone."""

from __future__ import annotations

from collections.abc import Mapping


def choose_node(env_id: str, caller_node: str, idle: Mapping[str, Mapping[str, int]]) -> str | None:
    """The node to lease `env_id` on, or None to wait (no node has an idle container of it now).

    `idle` maps each reachable node to its idle containers per environment. The caller's own node wins when it has
    one idle (its sessions stay on the host: no network hop, and a direct Unix-socket route applies); otherwise the
    node with the most idle containers of that environment, ties broken by node id so the choice is reproducible.
    """
    if idle.get(caller_node, {}).get(env_id, 0) > 0:
        return caller_node
    candidates = [(count, node) for node, envs in idle.items() if (count := envs.get(env_id, 0)) > 0]
    if not candidates:
        return None
    best = max(count for count, _ in candidates)
    return min(node for count, node in candidates if count == best)


def serving_nodes(env_id: str, served: Mapping[str, set[str]]) -> list[str]:
    """The nodes whose pool serves `env_id` at all (idle or not), sorted."""
    return sorted(node for node, envs in served.items() if env_id in envs)


def wait_node(env_id: str, caller_node: str, counts: Mapping[str, Mapping[str, Mapping[str, int]]]) -> str | None:
    """Where to wait when no node has an idle container of `env_id`: where one is most likely to come first. A pool
    only rebalances its containers towards an environment someone waits for, so the wait must be placed at one.
    The node with the most containers of it starting, then the most leased (a release comes soonest there), then
    the caller's own node, then the smallest node id. None when no node serves it.

    `counts` maps each reachable node to its per-environment counts ("starting", "leased", ...)."""
    serving = {node: envs[env_id] for node, envs in counts.items() if env_id in envs}
    if not serving:
        return None
    return min(serving, key=lambda node: (-serving[node].get("starting", 0), -serving[node].get("leased", 0),
                                          node != caller_node, node))
