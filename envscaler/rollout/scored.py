"""How a count of scored episodes is shown (the rollout summary, the report's table and its HTML page)."""

from __future__ import annotations


def scored_cells(episodes: int, mean_reward: float, success_rate: float) -> tuple[str, str]:
    """Mean reward and success rate, or "no episodes": a mean of nothing is not a reward of 0."""
    if not episodes:
        return "no episodes", "-"
    return f"{mean_reward:.3f}", f"{success_rate:.1%}"
