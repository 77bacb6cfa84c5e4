"""The one call every latency figure times: the bank environment's get_account, on one of its scenarios."""

from __future__ import annotations

ENV, SCENARIO, TOOL, ARGS = "env_4", "0502-142201", "get_account", {"account_id": "AC-300"}
