"""What a rollout produced, read back from its JSONL files: per-environment rows, distributions, an HTML page.

Infrastructure failures (from `<out>.errors.jsonl`, or files older versions wrote) count under errors but
never as rewards: they are not results of the agent.
"""

from __future__ import annotations

import html
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from envscaler.rollout.runner import read_records
from envscaler.rollout.scored import scored_cells
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
class Report:
    files: list[str]
    rows: list[EnvRow]
    total: EnvRow
    reward_histogram: dict[str, int]
    steps_histogram: dict[str, int]
    groups: dict[str, float]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


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
    return Report(files=[str(p) for p in paths], rows=[_row(e, rs) for e, rs in sorted(by_env.items())],
                  total=_row("all", records), reward_histogram={b: rewards.get(b, 0) for b in REWARD_BINS},
                  steps_histogram=steps_bins([int(r.get("steps", 0)) for r in scored]), groups=group_stats)


def text_histogram(counts: dict[str, int], width: int = 40) -> list[str]:
    top = max(counts.values(), default=0) or 1
    label = max((len(k) for k in counts), default=0)
    return [f"{k:>{label}} | {'█' * round(v / top * width):<{width}} {v}" for k, v in counts.items()]


def _svg_bars(title: str, counts: dict[str, int]) -> str:
    """A bar chart as inline SVG: no plotting dependency, opens in any browser."""
    n, top = max(1, len(counts)), max(counts.values(), default=0) or 1
    bar, height = 48, 200
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{n * bar + 40}" height="{height + 70}">',
             f'<text x="10" y="16" font-weight="bold">{html.escape(title)}</text>']
    for i, (label, value) in enumerate(counts.items()):
        h = value / top * height
        x = 20 + i * bar
        parts.append(f'<rect x="{x}" y="{30 + height - h:.1f}" width="{bar - 6}" height="{h:.1f}" fill="#4a7ab5">'
                     f'<title>{html.escape(label)}: {value}</title></rect>')
        parts.append(f'<text x="{x}" y="{26 + height - h:.1f}" font-size="11">{value}</text>')
        parts.append(f'<text x="{x}" y="{height + 46}" font-size="9">{html.escape(label)}</text>')
    return "".join(parts) + "</svg>"


def write_html(report: Report, path: Path) -> None:
    head = ("env", "episodes", "mean reward", "success rate", "mean steps", "errors by kind", "LLM s", "env s")
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            r.env_id, r.episodes, *scored_cells(r.episodes, r.mean_reward, r.success_rate), f"{r.mean_steps:.1f}",
            ", ".join(f"{k}: {v}" for k, v in r.errors.items()) or "none", f"{r.llm_seconds:.1f}",
            f"{r.env_seconds:.1f}")) + "</tr>" for r in [*report.rows, report.total])
    page = (f"<!doctype html><meta charset='utf-8'><title>rollout report</title>"
            f"<style>body{{font-family:sans-serif}}td,th{{padding:2px 8px;border-bottom:1px solid #ddd}}</style>"
            f"<h1>rollout report</h1><p>{html.escape(', '.join(report.files))}</p>"
            f"<table><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{cells}</table>"
            f"{_svg_bars('reward distribution', report.reward_histogram)}"
            f"{_svg_bars('steps per episode', report.steps_histogram)}")
    path.write_text(page, encoding="utf-8")
