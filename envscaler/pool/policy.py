"""Where warm containers go. Pure: the manager asks, then acts.

The policy, in order:
1. Never more than `size` containers (starting, idle and leased all count).
2. Waiters first: an environment with callers waiting gets a container for each
   waiter it has no idle or starting container for.
3. Then every environment is topped up to `min_idle` idle (or starting) containers.
4. Then the remaining capacity is spread evenly, one at a time to the environment
   with the fewest containers, so a full pool is warm everywhere.
5. When the pool is full and waiters still lack a container, idle containers are
   evicted from the environment with the most idle ones (most surplus first).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EnvCounts:
    idle: int = 0
    leased: int = 0
    starting: int = 0
    removing: int = 0

    @property
    def total(self) -> int:
        return self.idle + self.leased + self.starting + self.removing

    @property
    def available(self) -> int:
        return self.idle + self.starting


@dataclass
class Plan:
    start: list[str] = field(default_factory=list)
    evict: list[str] = field(default_factory=list)


def plan(size: int, env_ids: list[str], counts: dict[str, EnvCounts], waiting: dict[str, int],
         min_idle: int) -> Plan:
    current = {e: counts.get(e, EnvCounts()) for e in env_ids}
    started: Counter[str] = Counter()
    evicted: Counter[str] = Counter()
    free = size - sum(c.total for c in current.values())

    def available(env: str) -> int:
        return current[env].available + started[env]

    def total(env: str) -> int:
        return current[env].total + started[env] - evicted[env]

    # 2. waiters
    for env in sorted(env_ids, key=lambda e: -waiting.get(e, 0)):
        while waiting.get(env, 0) > available(env):
            if free > 0:
                started[env] += 1
                free -= 1
                continue
            donor = _donor(env_ids, current, evicted, exclude=env, min_idle=0)
            if donor is None:
                break
            evicted[donor] += 1
            started[env] += 1
    # 3. minimum idle
    for env in env_ids:
        while free > 0 and available(env) < min_idle:
            started[env] += 1
            free -= 1
    # 4. spread what is left
    while free > 0 and env_ids:
        env = min(env_ids, key=lambda e: (total(e), env_ids.index(e)))
        started[env] += 1
        free -= 1
    return Plan(start=list(started.elements()), evict=list(evicted.elements()))


def _donor(env_ids: list[str], current: dict[str, EnvCounts], evicted: Counter[str], exclude: str,
           min_idle: int) -> str | None:
    candidates = [e for e in env_ids if e != exclude and current[e].idle - evicted[e] > min_idle]
    if not candidates:
        return None
    return max(candidates, key=lambda e: current[e].idle - evicted[e])
