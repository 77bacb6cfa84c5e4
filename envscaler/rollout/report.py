"""What a rollout produced, read back from its JSONL files: per-environment and per-scenario rows, distributions
(the HTML page is envscaler/rollout/report_html.py).

Infrastructure failures (from `<out>.errors.jsonl`, or files older versions wrote) count under errors but
never as rewards: they are not results of the agent.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from envscaler.rollout.runner import read_records
from envscaler.rollout.trajectory import INFRASTRUCTURE, error_counts

REWARD_BINS = [f"[{i / 10:.1f}, {(i + 1) / 10:.1f})" for i in range(10)] + ["1.0"]


@dataclass
class EnvRow:
    env_id: str
    episodes: int = 0  # scored episodes (infrastructure failures excluded)
    mean_reward: float = 0.0
    success_rate: float = 0.0
    mean_steps: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    llm_seconds: float = 0.0
    env_seconds: float = 0.0


@dataclass
class ScenarioRow:
    """One scenario's samples (a GRPO-style group when --samples > 1)."""
    env_id: str
    task_id: str
    samples: int  # scored samples
    mean_reward: float
    pass_at_1: float  # the fraction of samples that succeeded
    pass_at_k: bool  # any sample succeeded
    variance: float  # of the samples' rewards (population)
    mean_steps: float
    errors: dict[str, int] = field(default_factory=dict)


@dataclass
class Report:
    files: list[str]
    rows: list[EnvRow]
    total: EnvRow
    reward_histogram: dict[str, int]
    steps_histogram: dict[str, int]
    groups: dict[str, float]
    scenarios: list[ScenarioRow] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)  # the trajectories, for the HTML page

    def as_json(self) -> dict[str, Any]:
        shown = asdict(self)
        del shown["records"]
        return shown


def reward_bin(reward: float) -> str:
    return "1.0" if reward >= 1.0 else REWARD_BINS[min(9, max(0, int(reward * 10)))]


def steps_bins(steps: list[int]) -> dict[str, int]:
    """Ten equal bins from 0 to the largest step count (one bin per count when there are few)."""
    if not steps:
        return {}
    top = max(steps)
    width = max(1, -(-(top + 1) // 10))
    counts = Counter(s // width for s in steps)
    return {(str(b * width) if width == 1 else f"{b * width}-{b * width + width - 1}"): counts.get(b, 0)
            for b in range(top // width + 1)}


def _errors(record: dict) -> Counter[str]:
    steps = record.get("trajectory") or []
    return error_counts(str(record.get("error_kind") or ""),
                        (str(s.get("error_kind") or "") for s in steps if isinstance(s, dict)))


def _row(env_id: str, rows: list[dict]) -> EnvRow:
    scored = [r for r in rows if r.get("error_kind") not in INFRASTRUCTURE]
    rewards = [float(r.get("total_reward", 0.0)) for r in scored]
    timings = [r.get("timings") or {} for r in rows]
    return EnvRow(env_id=env_id, episodes=len(scored),
                  mean_reward=statistics.fmean(rewards) if rewards else 0.0,
                  success_rate=sum(x == 1.0 for x in rewards) / len(rewards) if rewards else 0.0,
                  mean_steps=statistics.fmean(int(r.get("steps", 0)) for r in scored) if scored else 0.0,
                  errors=dict(sorted(sum((_errors(r) for r in rows), Counter[str]()).items())),
                  llm_seconds=sum(float(t.get("llm_seconds", 0.0)) for t in timings),
                  env_seconds=sum(float(t.get("env_seconds", 0.0)) for t in timings))


def _scenario_row(env_id: str, task_id: str, rows: list[dict]) -> ScenarioRow:
    scored = [r for r in rows if r.get("error_kind") not in INFRASTRUCTURE]
    rewards = [float(r.get("total_reward", 0.0)) for r in scored]
    return ScenarioRow(env_id=env_id, task_id=task_id, samples=len(scored),
                       mean_reward=statistics.fmean(rewards) if rewards else 0.0,
                       pass_at_1=sum(x == 1.0 for x in rewards) / len(rewards) if rewards else 0.0,
                       pass_at_k=any(x == 1.0 for x in rewards),
                       variance=statistics.pvariance(rewards) if rewards else 0.0,
                       mean_steps=statistics.fmean(int(r.get("steps", 0)) for r in scored) if scored else 0.0,
                       errors=dict(sorted(sum((_errors(r) for r in rows), Counter[str]()).items())))


def build_report(paths: list[Path]) -> Report:
    records = [r for path in paths for r in read_records(path)]
    by_env: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_env[r["task_info"]["env_id"]].append(r)
    scored = [r for r in records if r.get("error_kind") not in INFRASTRUCTURE]
    rewards = Counter(reward_bin(float(r.get("total_reward", 0.0))) for r in scored)
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in scored:
        groups[(r["task_info"]["env_id"], r["task_info"]["task_id"])].append(float(r.get("total_reward", 0.0)))
    group_stats: dict[str, float] = {}
    if groups and max(map(len, groups.values())) > 1:
        values = list(groups.values())
        group_stats = {"scenarios": len(values), "k": max(map(len, values)),
                       "variance": statistics.fmean(statistics.pvariance(g) for g in values),
                       "pass@1": statistics.fmean(sum(x == 1.0 for x in g) / len(g) for g in values),
                       "pass@k": statistics.fmean(any(x == 1.0 for x in g) for g in values)}
    by_scenario: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in records:
        by_scenario[(r["task_info"]["env_id"], r["task_info"]["task_id"])].append(r)
    return Report(files=[str(p) for p in paths], rows=[_row(e, rs) for e, rs in sorted(by_env.items())],
                  total=_row("all", records), reward_histogram={b: rewards.get(b, 0) for b in REWARD_BINS},
                  steps_histogram=steps_bins([int(r.get("steps", 0)) for r in scored]), groups=group_stats,
                  scenarios=[_scenario_row(e, t, rs) for (e, t), rs in sorted(by_scenario.items())],
                  records=records)


def text_histogram(counts: dict[str, int], width: int = 40) -> list[str]:
    top = max(counts.values(), default=0) or 1
    label = max((len(k) for k in counts), default=0)
    return [f"{k:>{label}} | {'█' * round(v / top * width):<{width}} {v}" for k, v in counts.items()]
