"""Prometheus metrics of one pool (its own registry, so several pools can share a process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class PoolMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.containers = Gauge("envscaler_pool_containers", "Containers by environment and state",
                                ["env", "state"], registry=r)
        self.acquire_wait = Histogram("envscaler_pool_acquire_wait_seconds", "Time an Acquire waited for a "
                                      "container", buckets=LATENCY_BUCKETS, registry=r)
        self.latency = Histogram("envscaler_pool_call_seconds", "Latency of calls routed to containers",
                                 ["method"], buckets=LATENCY_BUCKETS, registry=r)
        self.errors = Counter("envscaler_pool_errors_total", "Errors by kind", ["kind"], registry=r)
        self.replacements = Counter("envscaler_pool_replacements_total", "Containers destroyed and replaced",
                                    ["reason"], registry=r)
        self.start_failures = Counter("envscaler_pool_start_failures_total", "Containers that failed to start, "
                                      "by environment and reason (oom, exited, not_ready, engine)",
                                      ["env", "reason"], registry=r)
        self.expired = Counter("envscaler_pool_leases_expired_total", "Leases reclaimed after their TTL",
                               registry=r)
        self.starts = Histogram("envscaler_pool_container_start_seconds", "From create to SERVING",
                                buckets=(0.25, 0.5, 1, 2, 4, 8, 16, 32, 64), registry=r)
