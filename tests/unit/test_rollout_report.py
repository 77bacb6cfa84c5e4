"""The rollout report read back from JSONL files (no Docker, no LLM): rows, distributions, CLI errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from envscaler.rollout.report import build_report, text_histogram
from envscaler.rollout.report_html import write_html
from envscaler.rollout.runner import finished_keys


def record(env_id: str, task_id: str, reward: float, steps: int, error: str = "", sample: int = 0) -> dict:
    return {"task_info": {"env_id": env_id, "task_id": task_id, "task": "t"}, "total_reward": reward,
            "steps": steps, "error_kind": error, "sample_index": sample,
            "timings": {"llm_seconds": 1.0, "env_seconds": 0.5, "total_seconds": 2.0}}


def write(path: Path, rows: list[dict], torn: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + torn)
    return path


def test_rows_histograms_and_groups(tmp_path: Path) -> None:
    out = write(tmp_path / "traj.jsonl", [record("env_a", "t1", 1.0, 3, sample=0),
                                          record("env_a", "t1", 0.5, 5, sample=1),
                                          record("env_b", "t2", 0.0, 30, "max_steps"),
                                          record("env_b", "t3", 0.25, 2)], torn='{"task_info": {"env_id"')
    errors = write(tmp_path / "traj.jsonl.errors.jsonl", [record("env_b", "t2", 0.0, 0, "llm_error", sample=1)])
    before = out.read_bytes()
    report = build_report([out, errors])
    assert out.read_bytes() == before  # a report never writes to what it reads
    a, b = report.rows
    assert (a.env_id, a.episodes, a.mean_reward, a.success_rate, a.mean_steps) == ("env_a", 2, 0.75, 0.5, 4.0)
    # the infrastructure failure counts as an error, never as a reward
    assert (b.episodes, b.mean_reward, b.errors) == (2, 0.125, {"llm_error": 1, "max_steps": 1})
    assert b.llm_seconds == 3.0 and report.total.episodes == 4
    assert report.reward_histogram["1.0"] == 1 and report.reward_histogram["[0.5, 0.6)"] == 1
    assert report.reward_histogram["[0.0, 0.1)"] == 1 and report.reward_histogram["[0.2, 0.3)"] == 1
    assert sum(report.steps_histogram.values()) == 4
    assert report.groups["k"] == 2 and report.groups["pass@k"] == 1 / 3 and report.groups["pass@1"] == 1 / 6
    lines = text_histogram(report.reward_histogram, width=10)
    assert lines[-1].endswith("█" * 10 + " 1") and len(lines) == 11
    write_html(report, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert page.count("<svg") == 3 and "env_b" in page and "llm_error: 1" in page  # + mean reward by env
    assert [(s.env_id, s.task_id, s.samples, s.pass_at_1, s.pass_at_k) for s in report.scenarios] == [
        ("env_a", "t1", 2, 0.5, True), ("env_b", "t2", 1, 0.0, False), ("env_b", "t3", 1, 0.0, False)]
    assert report.scenarios[0].variance == 0.0625 and "records" not in report.as_json()
    assert page.count("<details>") == 5  # every trajectory, the infrastructure failure among them


def test_the_page_shows_trajectories_and_escapes_what_they_hold(tmp_path: Path) -> None:
    """Trajectories hold what an LLM and an environment wrote: the page shows it as text, never as markup."""
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    row = record("env_a", "t1", 1.0, 1) | {
        "messages": [{"role": "user", "content": hostile},
                     {"role": "assistant", "content": None,
                      "tool_calls": [{"function": {"name": "lookup", "arguments": '{"q": "a"}'}}]}],
        "trajectory": [{"step": 1, "action": {"name": "lookup", "arguments": {"q": hostile}},
                        "observation": {"type": "tool", "content": "x" * 5000 + hostile}}],
        "final_info": {"evaluation": {"passed": 1, "total": 1, "checks": [
            {"index": 0, "check_item": hostile, "outcome": "PASS", "message": ""}]}}}
    write_html(build_report([write(tmp_path / "t.jsonl", [row])]), tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert "<script" not in page and "<img" not in page and "&lt;script&gt;" in page
    assert "→ lookup" in page and "1 of 1" in page and "more characters in the JSONL" in page
    assert "http://" not in page and "https://" not in page  # self-contained: nothing to fetch


def test_resume_keys_count_per_sample_and_retry_errors_drops_error_records(tmp_path: Path) -> None:
    out = write(tmp_path / "traj.jsonl", [record("e", "t", 1.0, 1, sample=0),
                                          record("e", "t", 0.0, 30, "max_steps", 1),
                                          record("e", "u", 0.0, 0, "env_error")])  # as older versions wrote
    assert finished_keys(out) == {("e", "t", 0), ("e", "t", 1)}  # an infrastructure failure is never done
    assert finished_keys(out, retry_errors=True) == {("e", "t", 0)}
    assert len(out.read_text().splitlines()) == 1  # the error records left the file, to be written again


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "envscaler.cli", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_cli_report_json_and_user_mistakes(tmp_path: Path) -> None:
    out = write(tmp_path / "traj.jsonl", [record("env_a", "t1", 1.0, 3)])
    shown = run_cli("results", str(out), "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["rows"][0]["success_rate"] == 1.0
    missing = run_cli("report", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no such file" in missing.stderr
    empty = write(tmp_path / "empty.jsonl", [])
    nothing = run_cli("report", str(empty))
    assert nothing.returncode == 2 and "no trajectory record" in nothing.stderr


def test_failed_tool_calls_count_by_kind_and_a_row_of_no_episodes_says_so(tmp_path: Path) -> None:
    """Issue 29: "errors by kind" counts the tool calls that failed (the agent saw them; the episode went on), and
    an environment whose every episode failed for the infrastructure shows no episodes, not a mean reward of 0."""
    called = record("env_a", "t1", 1.0, 3)
    called["trajectory"] = [{"error_kind": "UNKNOWN_TOOL"}, {"error_kind": "INVALID_ARGUMENTS"},
                            {"error_kind": "UNKNOWN_TOOL"}, {"error_kind": ""}]
    out = write(tmp_path / "traj.jsonl", [called])
    write(tmp_path / "traj.jsonl.errors.jsonl", [record("env_b", "t2", 0.0, 0, "llm_error")])
    a, b = build_report([out, tmp_path / "traj.jsonl.errors.jsonl"]).rows
    assert a.errors == {"tool INVALID_ARGUMENTS": 1, "tool UNKNOWN_TOOL": 2}
    assert (b.episodes, b.errors) == (0, {"llm_error": 1})
    shown = run_cli("report", str(out), str(tmp_path / "traj.jsonl.errors.jsonl"))
    assert shown.returncode == 0, shown.stderr
    row_b = next(line for line in shown.stdout.splitlines() if "env_b" in line)
    assert "no episodes" in row_b and "0.000" not in row_b and "0.0%" not in row_b
    assert "tool UNKNOWN_TOOL: 2" in shown.stdout
