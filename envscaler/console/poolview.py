"""The pool page's data: the pool's Stats RPC and its Prometheus metrics, as one JSON-ready snapshot."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections import defaultdict
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from envscaler.client.errors import EnvClientError
from envscaler.client.pool_client import AsyncPool


def stats_of(response: Any) -> dict[str, Any]:
    envs = {e.env_id: {"idle": e.idle, "leased": e.leased, "starting": e.starting, "failed": e.failed,
                       "failing": e.failing} for e in response.envs}
    return {"size": response.size, "containers": response.containers, "acquired": response.acquired,
            "replaced": response.replaced, "expired": response.leases_expired, "envs": envs}


def _bucket_counts(cumulative: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """Per-bucket counts from Prometheus's cumulative `le` buckets (the +Inf one last)."""
    rows, previous = [], 0.0
    for le, count in sorted(cumulative):
        label = "+Inf" if le == float("inf") else f"≤{le:g}s"
        rows.append({"le": label, "count": int(count - previous)})
        previous = count
    return rows


def parse_metrics(text: str) -> dict[str, Any]:
    """Histograms (acquire wait, call latency by method) and counters (replacements by reason, errors by kind,
    start failures) from the pool's exposition text."""
    buckets: dict[str, list[tuple[float, float]]] = defaultdict(list)
    counts: dict[str, float] = defaultdict(float)
    replacements: dict[str, float] = {}
    errors: dict[str, float] = {}
    start_failures: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name == "envscaler_pool_acquire_wait_seconds_bucket":
                buckets["acquire"].append((float(labels["le"]), value))
            elif name == "envscaler_pool_call_seconds_bucket":
                buckets["calls"].append((float(labels["le"]), value))  # every method together
            elif name == "envscaler_pool_call_seconds_count":
                counts[labels.get("method", "")] += value
            elif name == "envscaler_pool_replacements_total":
                replacements[labels.get("reason", "")] = value
            elif name == "envscaler_pool_errors_total":
                errors[labels.get("kind", "")] = value
            elif name == "envscaler_pool_start_failures_total":
                key = f"{labels.get('env', '')}: {labels.get('reason', '')}"
                start_failures[key] = value
    merged: dict[float, float] = defaultdict(float)
    for le, value in buckets["calls"]:
        merged[le] += value
    return {"acquire_wait": _bucket_counts(buckets["acquire"]), "call_latency": _bucket_counts(list(merged.items())),
            "calls_by_method": {k: int(v) for k, v in sorted(counts.items())},
            "replacements": {k: int(v) for k, v in sorted(replacements.items())},
            "errors": {k: int(v) for k, v in sorted(errors.items())},
            "start_failures": {k: int(v) for k, v in sorted(start_failures.items())}}


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # a URL the operator gave
        return response.read().decode("utf-8", "replace")


async def snapshot(pool: AsyncPool, metrics_url: str | None) -> dict[str, Any]:
    """Stats and metrics now; each part carries its own error instead of failing the page."""
    out: dict[str, Any] = {"stats": None, "stats_error": "", "metrics": None, "metrics_error": ""}
    try:
        out["stats"] = stats_of(await pool.stats())
    except EnvClientError as exc:
        out["stats_error"] = f"the pool does not answer Stats: {exc}"
    if not metrics_url:
        out["metrics_error"] = "no metrics endpoint: start the console with --metrics HOST:PORT (the pool's " \
                               "--metrics-listen)"
        return out
    try:
        out["metrics"] = parse_metrics(await asyncio.to_thread(_fetch, metrics_url))
    except (OSError, urllib.error.URLError, ValueError) as exc:
        out["metrics_error"] = f"cannot read {metrics_url}: {exc}"
    return out
