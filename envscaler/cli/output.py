"""Human-readable tables for the CLI (rich)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from envscaler.rollout.scored import scored_cells
from envscaler.rollout.trajectory import INFRASTRUCTURE

if TYPE_CHECKING:  # printing a result needs only the result: no command pays for another's dependencies
    from envscaler.client.replay import ReplayReport
    from envscaler.images.build import BuildResult
    from envscaler.rollout.report import Report
    from envscaler.rollout.runner import Summary
    from envscaler.rollout.trajectory import TrajectoryRecord
    from envscaler.spec.validate import ValidationReport
    from envscaler.synth.check import ScenarioCheck
    from envscaler.synth.llm import Usage

STATUS_STYLE = {"built": "green", "cached": "cyan", "failed": "bold red", "ok": "green",
                "warning": "yellow", "error": "bold red", "PASS": "green", "FAIL": "red",
                "ERROR": "bold red"}


def _console() -> Console:
    # Piped output is read by tools and logs: do not fold it to 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=200)


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def print_validation(report: ValidationReport, show_all: bool = False) -> None:
    """One line per problem, as a compiler prints them: severity, file and record, the record's id, the field,
    what is wrong. Errors first, so that the cause is read before what it leads to."""
    console = _console()
    lines = []
    for record in report.records:
        where = f"{record.location} ({record.record_id})" if record.record_id not in record.location else \
            record.location  # a record that did not load has no id: its location says where
        for problem in record.problems:
            field = f"{problem.field}{f' (line {problem.line})' if problem.line else ''}: " if problem.field else ""
            lines.append((problem.severity != "error", f"[{STATUS_STYLE[problem.severity]}]{problem.severity}[/]: "
                                                       f"{escape(where)}: {escape(field + problem.message)}"))
        if show_all and not record.problems:
            lines.append((True, f"[green]ok[/]: {escape(where)}"))
    for _, line in sorted(lines, key=lambda item: item[0]):
        console.print(line, highlight=False, soft_wrap=True)
    envs = sum(r.kind == "env" for r in report.records)
    scenarios = sum(r.kind == "scenario" for r in report.records)
    console.print(f"{envs} environments, {scenarios} scenarios: [green]{report.count('ok')} ok[/], "
                  f"[yellow]{report.count('warning')} with warnings[/], "
                  f"[bold red]{report.count('error')} with errors[/]", highlight=False)


def print_replay(report: ReplayReport, sandbox: str) -> None:
    console = _console()
    console.print(f"{report.env_id} / {report.scenario_id} in a {sandbox}; initial state "
                  f"sha256 {report.initial_sha256[:16]}…", highlight=False)
    table = Table(title="calls")
    for column in ("#", "tool", "status", "observation", "ms"):
        table.add_column(column, overflow="fold")
    for i, step in enumerate(report.steps, start=1):
        status = "[green]ok" if step.ok else f"[bold red]{step.error_kind}"
        table.add_row(str(i), step.name, status, _clip(step.observation), f"{step.duration_us / 1000:.2f}")
    console.print(table)
    if report.evaluation is None:
        console.print("[bold red]the episode broke; nothing to evaluate[/]")
        return
    console.print(f"final state sha256 {report.final_sha256}", highlight=False)
    checks = Table(title=f"evaluation: reward {report.evaluation.reward:g} "
                         f"({report.evaluation.passed}/{report.evaluation.total})")
    for column in ("#", "check", "outcome", "message"):
        checks.add_column(column, overflow="fold")
    for check in report.evaluation.checks:
        checks.add_row(str(check.index), _clip(check.check_item, 100),
                       f"[{STATUS_STYLE[check.outcome]}]{check.outcome}", check.message)
    console.print(checks)
    if report.evaluation.message:
        console.print(report.evaluation.message)


@contextmanager
def status(message: str) -> Iterator[None]:
    console = Console(stderr=True)
    with console.status(message):
        yield


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[int], None]]:
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


@contextmanager
def rollout_progress(total: int) -> Iterator[Callable[[TrajectoryRecord], None]]:
    """Episodes done, with the running mean reward of those recorded (infrastructure failures are not rewards)."""
    rewards: list[float] = []
    if not sys.stderr.isatty():  # logs get the summary, not a bar's leftovers
        yield lambda _: None
        return
    columns = (TextColumn("episodes · mean reward {task.fields[mean]}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("episodes", total=total, mean="-")

        def advance(record: TrajectoryRecord) -> None:
            if record.error_kind not in INFRASTRUCTURE:
                rewards.append(record.total_reward)
            progress.update(task, advance=1, mean=f"{sum(rewards) / len(rewards):.3f}" if rewards else "-")

        yield advance


def print_build(results: list[BuildResult], seconds: float) -> None:
    console = _console()
    table = Table(title="environment images")
    for column in ("env", "tag", "status", "env layer", "seconds", "message"):
        table.add_column(column, overflow="fold")
    for r in results:
        size = f"{r.layer_bytes / 1024:.1f} KiB" if r.layer_bytes else ""
        table.add_row(r.env_id, r.tag, f"[{STATUS_STYLE[r.status]}]{r.status}", size, f"{r.seconds:.3f}",
                      _clip(r.message, 300))
    console.print(table)
    counts = {s: sum(r.status == s for r in results) for s in ("built", "cached", "failed")}
    console.print(f"{counts['built']} built, {counts['cached']} cached, {counts['failed']} failed "
                  f"in {seconds:.2f} s", highlight=False)


def print_rollout_summary(summary: Summary, out: Path) -> None:
    console = _console()
    table = Table(title=f"rollout -> {out}")
    for column in ("episodes", "skipped (already done)", "mean reward", "success rate", "errors by kind",
                   "LLM time", "env time"):
        table.add_column(column, justify="right")
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(summary.errors.items())) or "none"
    table.add_row(str(summary.episodes), str(summary.skipped),
                  *scored_cells(summary.episodes, summary.mean_reward, summary.success_rate), errors,
                  f"{summary.llm_seconds:.1f} s", f"{summary.env_seconds:.1f} s")
    console.print(table)
    if not summary.episodes:
        why = [f"{summary.skipped} already done" if summary.skipped else "",
               f"{summary.infrastructure_failures} failed for infrastructure reasons"
               if summary.infrastructure_failures else ""]
        console.print(f"no episodes written to {out} by this run"
                      + (f" ({'; '.join(w for w in why if w)})" if any(why) else ""), highlight=False)
    groups = summary.group_stats()
    if groups and groups["k"] > 1:
        console.print(f"{groups['scenarios']} scenarios x {groups['k']} samples: per-scenario mean "
                      f"{groups['mean']:.3f}, variance {groups['variance']:.3f}, pass@1 {groups['pass@1']:.3f}, "
                      f"pass@{groups['k']} {groups['pass@k']:.3f}", highlight=False)


def print_synth_report(kind: str, rows: dict[str, dict[str, Any]], usage: Usage, output: Path) -> None:
    console = _console()
    table = Table(title=f"synthesis: {kind} -> {output}")
    columns = sorted({k for row in rows.values() for k in row}) if rows else []
    table.add_column("name")
    for column in columns:
        table.add_column(column, overflow="fold")
    for name, row in rows.items():
        table.add_row(name, *(_clip(str(row.get(c, "")), 120) for c in columns))
    console.print(table)
    console.print(f"LLM: {usage.requests} requests, {usage.cached} from cache, {usage.repairs} repairs, "
                  f"{usage.prompt_tokens} + {usage.completion_tokens} tokens", highlight=False)


def print_report(report: Report, html: Path | None) -> None:
    from envscaler.rollout.report import text_histogram

    console = _console()
    table = Table(title=f"rollouts: {', '.join(report.files)}")
    for column in ("env", "episodes", "mean reward", "success rate", "mean steps", "errors by kind", "LLM time",
                   "env time"):
        table.add_column(column, justify="left" if column in ("env", "errors by kind") else "right")
    for i, r in enumerate([*report.rows, report.total]):
        table.add_row(r.env_id, str(r.episodes), *scored_cells(r.episodes, r.mean_reward, r.success_rate),
                      f"{r.mean_steps:.1f}", ", ".join(f"{k}: {v}" for k, v in r.errors.items()) or "none",
                      f"{r.llm_seconds:.1f} s", f"{r.env_seconds:.1f} s", end_section=i == len(report.rows) - 1)
    console.print(table)
    console.print("reward distribution", highlight=False)
    for line in text_histogram(report.reward_histogram):
        console.print(line, highlight=False)
    if report.groups:
        g = report.groups
        console.print(f"{g['scenarios']} scenarios, up to {g['k']} samples each: per-scenario variance "
                      f"{g['variance']:.3f}, pass@1 {g['pass@1']:.3f}, pass@k {g['pass@k']:.3f}", highlight=False)
    if html is not None:
        console.print(f"HTML report: {html}", highlight=False)


def print_checks(rows: list[ScenarioCheck], unloaded: list[str]) -> None:
    """One line per problem: the records that did not load first (their cause comes before any symptom), then each
    scenario's errors in the order found (static ones before what running showed), then its warnings."""
    console = _console()
    for line in unloaded:
        console.print(f"[bold red]error[/]: not loaded: {escape(line)}", highlight=False, soft_wrap=True)
    for r in rows:
        for severity, problems in (("error", r.errors), ("warning", r.warnings)):
            for problem in problems:
                console.print(f"[{STATUS_STYLE[severity]}]{severity}[/]: {escape(r.env_id)}/{escape(r.task_id)}: "
                              f"{escape(problem)}", highlight=False, soft_wrap=True)
    counts = {s: sum(r.status == s for r in rows) for s in ("ok", "warning", "error")}
    console.print(f"{len(rows)} scenarios: {counts['ok']} ok, {counts['warning']} with warnings, "
                  f"{counts['error']} with errors", highlight=False)
    solved = sum(r.solution == "replayed: reward 1.0" for r in rows)
    missing = sum(r.solution == "none" for r in rows)
    console.print(f"reference solutions: {solved} replayed to reward 1.0, {missing} none, "
                  f"{len(rows) - solved - missing} failing", highlight=False)
