"""Many episodes in parallel over a pool, written as JSONL as they finish.

Resumable: episodes already in the output file are skipped, and a half-written
last line (a run killed mid-write) is dropped before appending.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from openai import AsyncOpenAI

from envscaler.client.errors import EnvClientError
from envscaler.client.pool_client import AsyncPool
from envscaler.rollout.agent import AgentOptions, run_episode
from envscaler.rollout.trajectory import TaskInfo, TrajectoryRecord
from envscaler.spec.models import Scenario


@dataclass
class Summary:
    episodes: int = 0
    skipped: int = 0
    rewards: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    llm_seconds: float = 0.0
    env_seconds: float = 0.0

    def add(self, record: TrajectoryRecord) -> None:
        self.episodes += 1
        self.rewards.append(record.total_reward)
        if record.error_kind:
            self.errors[record.error_kind] += 1
        self.llm_seconds += record.timings.llm_seconds
        self.env_seconds += record.timings.env_seconds

    @property
    def mean_reward(self) -> float:
        return statistics.fmean(self.rewards) if self.rewards else 0.0

    @property
    def success_rate(self) -> float:
        return sum(r == 1.0 for r in self.rewards) / len(self.rewards) if self.rewards else 0.0


def finished_keys(out: Path) -> set[tuple[str, str]]:
    """Episodes already written; drops a torn last line so appending stays valid JSONL."""
    if not out.exists():
        return set()
    data = out.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        out.write_bytes(data)
    keys = set()
    for line in data.decode().splitlines():
        try:
            info = json.loads(line)["task_info"]
            keys.add((info["env_id"], info["task_id"]))
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    return keys


def failed_record(scenario: Scenario, options: AgentOptions, kind: str, message: str) -> TrajectoryRecord:
    return TrajectoryRecord(task_info=TaskInfo(env_id=scenario.env_id, task_id=scenario.task_id, task=scenario.task),
                            tools=[], messages=[], truncated=True, error_kind=kind, final_info={"error": message},
                            mode=options.mode, model=options.model)


async def run_rollouts(pool_address: str, scenarios: list[Scenario], options: AgentOptions, llm: AsyncOpenAI,
                       out: Path, concurrency: int, user_llm: AsyncOpenAI | None = None,
                       progress: Callable[[TrajectoryRecord], None] = lambda _: None,
                       acquire_wait: float = 600.0) -> Summary:
    summary = Summary()
    done = finished_keys(out)
    todo = [s for s in scenarios if (s.env_id, s.task_id) not in done]
    summary.skipped = len(scenarios) - len(todo)
    gate = asyncio.Semaphore(concurrency)
    write_lock = asyncio.Lock()

    async def one(pool: AsyncPool, scenario: Scenario) -> None:
        async with gate:
            try:
                async with pool.session(scenario.env_id, wait=acquire_wait) as session:
                    record = await run_episode(llm, session, scenario, options, user_llm)
            except EnvClientError as exc:
                record = failed_record(scenario, options, "env_error", str(exc))
            async with write_lock:
                with out.open("a", encoding="utf-8") as f:
                    f.write(record.model_dump_json() + "\n")
            summary.add(record)
            progress(record)

    out.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncPool(pool_address, timeout=max(60.0, options.episode_timeout)) as pool:
        await asyncio.gather(*(one(pool, scenario) for scenario in todo))
    return summary
