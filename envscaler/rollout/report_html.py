"""The rollout report as one self-contained HTML page: summary, per-environment and per-scenario tables, plots (inline
SVG with axis titles) and the trajectories themselves (messages, calls, observations, check results).

No script, no stylesheet or font from elsewhere: the page opens from a mail attachment or an artifact store as it is.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from envscaler.rollout.report import Report
from envscaler.rollout.scored import scored_cells
from envscaler.rollout.trajectory import INFRASTRUCTURE

MAX_TRAJECTORIES = 1000  # beyond this the page grows past what a browser shows comfortably; the JSONL has them all
MAX_TEXT = 4000  # characters of one message or observation shown; the rest is counted

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{margin-bottom:4px}h2{margin-top:32px;border-bottom:2px solid #4a7ab5;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}
th{background:#f0f4fa}td.l,th.l{text-align:left}tr.total td{font-weight:bold;border-top:2px solid #888}
.cards{display:flex;gap:16px;flex-wrap:wrap}.card{background:#f0f4fa;border-radius:6px;padding:8px 16px}
.card b{display:block;font-size:22px}.plots{display:flex;gap:24px;flex-wrap:wrap}
details{border:1px solid #ddd;border-radius:4px;margin:4px 0;padding:4px 8px}summary{cursor:pointer}
pre{white-space:pre-wrap;word-break:break-word;background:#f7f7f7;padding:6px;margin:2px 0;font-size:12px}
.pass{color:#17692b}.fail{color:#a31515}.muted{color:#777}.role{font-weight:bold;width:90px;vertical-align:top}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _clip(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return f"{text[:MAX_TEXT]}\n… ({len(text) - MAX_TEXT:,} more characters in the JSONL)"


def _errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in errors.items()) or "none"


def _table(head: list[str], rows: list[list[object]], left: set[int], total: bool = False) -> str:
    def cls(i: int) -> str:
        return ' class="l"' if i in left else ""

    body = "".join(
        f'<tr{" class=total" if total and n == len(rows) - 1 else ""}>'
        + "".join(f"<td{cls(i)}>{_e(v)}</td>" for i, v in enumerate(row)) + "</tr>" for n, row in enumerate(rows))
    return f"<table><tr>{''.join(f'<th{cls(i)}>{_e(h)}</th>' for i, h in enumerate(head))}</tr>{body}</table>"


def bar_chart(title: str, counts: dict[str, float], x_title: str, y_title: str, fmt: str = "{:g}") -> str:
    """A vertical bar chart as inline SVG with both axes titled, a scale on the y axis and the value on each bar."""
    n, top = max(1, len(counts)), max(counts.values(), default=0) or 1
    bar, plot_h, left, top_pad = max(28, min(56, 640 // n)), 220, 64, 36
    longest = max((len(k) for k in counts), default=1)
    slanted = longest * 7 > bar  # labels wider than their bar are drawn at an angle
    label_h = min(110, longest * 6 + 10) if slanted else 24
    plot_w = max(n * bar, 260)  # a chart of one or two bars still reads as a chart
    width, height = left + plot_w + 20, top_pad + plot_h + label_h + 40
    base = top_pad + plot_h
    parts = [f'<svg width="{width}" height="{height}" role="img" '
             f'aria-label="{_e(title)}" font-family="system-ui,sans-serif">',
             f'<text x="{left}" y="20" font-size="15" font-weight="bold">{_e(title)}</text>',
             f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{base}" stroke="#444"/>',
             f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#444"/>']
    for frac in (0.0, 0.5, 1.0):
        y = base - frac * plot_h
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 8}" y="{y + 4:.1f}" font-size="12" text-anchor="end">'
                     f'{_e(fmt.format(top * frac))}</text>')
    for i, (label, value) in enumerate(counts.items()):
        h, x = value / top * plot_h, left + i * bar
        cx = x + bar / 2
        parts.append(f'<rect x="{x + 3}" y="{base - h:.1f}" width="{bar - 6}" height="{h:.1f}" fill="#4a7ab5">'
                     f'<title>{_e(label)}: {_e(fmt.format(value))}</title></rect>')
        if value:
            parts.append(f'<text x="{cx:.1f}" y="{base - h - 4:.1f}" font-size="12" text-anchor="middle">'
                         f'{_e(fmt.format(value))}</text>')
        if slanted:
            parts.append(f'<text x="{cx:.1f}" y="{base + 14}" font-size="12" text-anchor="end" '
                         f'transform="rotate(-40 {cx:.1f} {base + 14})">{_e(label)}</text>')
        else:
            parts.append(f'<text x="{cx:.1f}" y="{base + 16}" font-size="12" text-anchor="middle">{_e(label)}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" font-size="13" text-anchor="middle">'
                 f'{_e(x_title)}</text>')
    parts.append(f'<text x="16" y="{base - plot_h / 2:.1f}" font-size="13" text-anchor="middle" '
                 f'transform="rotate(-90 16 {base - plot_h / 2:.1f})">{_e(y_title)}</text>')
    return "".join(parts) + "</svg>"


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # OpenAI content parts
        content = "\n".join(str(p.get("text", p)) if isinstance(p, dict) else str(p) for p in content)
    text = "" if content is None else str(content)
    for call in message.get("tool_calls") or []:
        fn = call.get("function", {}) if isinstance(call, dict) else {}
        text += f"\n→ {fn.get('name', '?')}({fn.get('arguments', '')})"
    return text.strip()


def _trajectory(record: dict[str, Any]) -> str:
    info = record.get("task_info") or {}
    reward = float(record.get("total_reward", 0.0))
    error = str(record.get("error_kind") or "")
    infra = error in INFRASTRUCTURE
    verdict = "infrastructure failure" if infra else f"reward {reward:.2f}"
    mark = "fail" if infra or reward < 1.0 else "pass"
    summary = (f'<summary><span class="{mark}">{_e(verdict)}</span> · {_e(info.get("env_id", "?"))} / '
               f'{_e(info.get("task_id", "?"))} · sample {_e(record.get("sample_index", 0))} · '
               f'{_e(record.get("steps", 0))} steps{_e(" · " + error) if error else ""}</summary>')
    parts = [summary, f"<p><b>task</b></p><pre>{_e(_clip(str(info.get('task', ''))))}</pre>"]
    messages = record.get("messages") or []
    if messages:
        rows = "".join(f'<tr><td class="l role">{_e(m.get("role", "?"))}</td>'
                       f'<td class="l"><pre>{_e(_clip(_content(m)))}</pre></td></tr>'
                       for m in messages if isinstance(m, dict))
        parts.append(f"<p><b>messages</b> ({len(messages)})</p><table>{rows}</table>")
    steps = [s for s in record.get("trajectory") or [] if isinstance(s, dict)]
    if steps:
        rows = "".join(
            f'<tr><td>{_e(s.get("step", ""))}</td><td class="l">{_e((s.get("action") or {}).get("name", ""))}</td>'
            f'<td class="l"><pre>{_e(_clip(json.dumps((s.get("action") or {}).get("arguments"), ensure_ascii=False)))}'
            f'</pre></td><td class="l"><pre>{_e(_clip(str((s.get("observation") or {}).get("content", ""))))}</pre>'
            f'</td><td class="l">{_e(s.get("error_kind") or "")}</td></tr>' for s in steps)
        parts.append("<p><b>tool calls</b></p><table><tr><th>#</th><th class=l>tool</th><th class=l>arguments</th>"
                     f"<th class=l>observation</th><th class=l>error</th></tr>{rows}</table>")
    final = record.get("final_info") or {}
    evaluation = final.get("evaluation") or {}
    checks = evaluation.get("checks") or []
    if checks:
        rows = "".join(
            f'<tr><td>{_e(c.get("index", ""))}</td><td class="l">{_e(c.get("check_item", ""))}</td>'
            f'<td class="l {"pass" if c.get("outcome") == "PASS" else "fail"}">{_e(c.get("outcome", ""))}</td>'
            f'<td class="l">{_e(_clip(str(c.get("message", ""))))}</td></tr>' for c in checks if isinstance(c, dict))
        parts.append(f"<p><b>checks</b>: {_e(evaluation.get('passed', 0))} of {_e(evaluation.get('total', 0))} "
                     "passed</p><table><tr><th>#</th><th class=l>check</th><th class=l>outcome</th>"
                     f"<th class=l>message</th></tr>{rows}</table>")
    for key in ("error", "evaluation_error"):
        if final.get(key):
            parts.append(f'<p class="fail"><b>{_e(key.replace("_", " "))}</b>: {_e(final[key])}</p>')
    return "<details>" + "".join(parts) + "</details>"


def render(report: Report) -> str:
    t = report.total
    mean, success = scored_cells(t.episodes, t.mean_reward, t.success_rate)
    cards = [("scored episodes", t.episodes), ("mean reward", mean), ("success rate", success),
             ("errors", sum(t.errors.values()))]
    if report.groups:
        g = report.groups
        cards += [("samples per scenario", int(g["k"])), ("pass@1", f"{g['pass@1']:.3f}"),
                  ("pass@k", f"{g['pass@k']:.3f}"), ("variance", f"{g['variance']:.3f}")]
    envs = [[r.env_id, r.episodes, *scored_cells(r.episodes, r.mean_reward, r.success_rate), f"{r.mean_steps:.1f}",
             _errors(r.errors), f"{r.llm_seconds:.1f}", f"{r.env_seconds:.1f}"] for r in [*report.rows, t]]
    scenarios = [[s.env_id, s.task_id, s.samples, *scored_cells(s.samples, s.mean_reward, s.pass_at_1),
                  "yes" if s.pass_at_k else "no", f"{s.variance:.3f}", f"{s.mean_steps:.1f}", _errors(s.errors)]
                 for s in report.scenarios]
    per_env = {r.env_id: r.mean_reward for r in report.rows if r.episodes}
    plots = [bar_chart("reward distribution", dict(report.reward_histogram), "reward", "episodes"),
             bar_chart("steps per episode", dict(report.steps_histogram), "steps (actions taken)", "episodes")]
    if len(per_env) > 1:
        plots.append(bar_chart("mean reward by environment", per_env, "environment", "mean reward", "{:.2f}"))
    shown = report.records[:MAX_TRAJECTORIES]
    more = len(report.records) - len(shown)
    return "".join([
        "<!doctype html><html lang=en><meta charset='utf-8'><title>rollout report</title>",
        f"<style>{STYLE}</style><h1>rollout report</h1>",
        f"<p class=muted>{_e(', '.join(report.files))}</p>",
        "<div class=cards>" + "".join(f"<div class=card>{_e(k)}<b>{_e(v)}</b></div>" for k, v in cards) + "</div>",
        "<h2>by environment</h2>",
        _table(["env", "episodes", "mean reward", "success rate", "mean steps", "errors by kind", "LLM s", "env s"],
               envs, left={0, 5}, total=True),
        "<h2>by scenario</h2>",
        _table(["env", "scenario", "samples", "mean reward", "pass@1", "pass@k", "variance", "mean steps",
                "errors by kind"], scenarios, left={0, 1, 8}),
        "<h2>distributions</h2><div class=plots>" + "".join(plots) + "</div>",
        f"<h2>trajectories ({len(report.records)})</h2>",
        "".join(_trajectory(r) for r in shown),
        f"<p class=muted>{more:,} more trajectories are in the JSONL files.</p>" if more else "",
        "</html>"])


def write_html(report: Report, path: Path) -> None:
    path.write_text(render(report), encoding="utf-8")
