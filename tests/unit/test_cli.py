"""The command line as a user runs it: real processes, real sockets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from envscaler.cli import main
from envscaler.client import EnvClient
from tests.conftest import SOLUTIONS

CLI = [sys.executable, "-m", "envscaler.cli"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, check=False)


def test_replay_reaches_reward_one_and_is_deterministic() -> None:
    calls = SOLUTIONS / "env_2__0310-081522.jsonl"
    reports = []
    for _ in range(2):
        done = run_cli("replay", "--env", "env_2", "--scenario", "0310-081522", "--calls", str(calls), "--json")
        assert done.returncode == 0, done.stderr
        reports.append(json.loads(done.stdout))
    assert reports[0]["evaluation"]["reward"] == 1.0
    assert [c["outcome"] for c in reports[0]["evaluation"]["checks"]] == ["PASS"] * 3
    assert reports[0]["final_sha256"] == reports[1]["final_sha256"]
    assert reports[0]["initial_sha256"] != reports[0]["final_sha256"]


def test_replay_table_output() -> None:
    done = run_cli("replay", "--env", "env_1", "--scenario", "0115-140512", "--calls",
                   str(SOLUTIONS / "env_1__0115-140512.jsonl"))
    assert done.returncode == 0, done.stderr
    assert "reward 1 (2/2)" in done.stdout and "renew_loan" in done.stdout


def test_replay_names_the_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calls = tmp_path / "calls.jsonl"
    calls.write_text('{"name": "list_rooms", "arguments": {}}\n{"arguments": {}}\n')
    assert main(["replay", "--env", "env_7", "--scenario", "1102-213005", "--calls", str(calls)]) == 2
    err = capsys.readouterr().err
    assert "calls.jsonl:2: name: Field required" in err and "Traceback" not in err


def test_replay_refuses_a_mistyped_argument_before_running(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    calls = tmp_path / "calls.jsonl"
    calls.write_text('{"name": "search_books", "arguments": {"query": "Dune"}}\n'
                     '{"name": "checkout_book", "arguments": {"member_id": "M001", "book_id": "B003", '
                     '"loan_days": "two"}}\n')
    assert main(["replay", "--env", "env_1", "--scenario", "0115-091204", "--calls", str(calls),
                 "--sandbox", "process"]) == 2
    err = capsys.readouterr().err
    assert err == ("envscaler-runtime replay: calls.jsonl, call 2: checkout_book: parameter 'loan_days' is \"two\", "
                   "expected integer\n")


def test_replay_runs_a_call_to_an_unknown_tool_in_band_and_warns(tmp_path: Path) -> None:
    """Issue 29: as EnvScaler does (an LLM's recorded calls often name tools that do not exist), not refused."""
    calls = tmp_path / "calls.jsonl"
    calls.write_text('{"name": "serch_books", "arguments": {"query": "Dune"}}\n'
                     + (SOLUTIONS / "env_1__0115-140512.jsonl").read_text())
    done = run_cli("replay", "--env", "env_1", "--scenario", "0115-140512", "--calls", str(calls), "--json",
                   "--sandbox", "process")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["steps"][0]["error_kind"] == "UNKNOWN_TOOL" and report["evaluation"]["reward"] == 1.0
    (warning,) = done.stderr.splitlines()
    assert warning.startswith("envscaler-runtime replay: warning: calls.jsonl, call 1: no tool named 'serch_books' "
                              "(served: "), warning
    assert warning.endswith("replayed all the same, answered in band")


def test_unknown_env_is_one_line() -> None:
    done = run_cli("schema", "--env", "env_404")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("envscaler-runtime schema: unknown env_id 'env_404'")
    assert "Traceback" not in done.stderr


def test_schema_prints_openai_tools() -> None:
    done = run_cli("schema", "--env", "env_5")
    tools = json.loads(done.stdout)
    assert {t["function"]["name"] for t in tools} >= {"book_flight", "change_seat"}
    assert all(t["type"] == "function" for t in tools)


def test_serve_answers_and_stops_on_sigterm(tmp_path_factory: pytest.TempPathFactory) -> None:
    sock = tmp_path_factory.mktemp("srv") / "env.sock"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([*CLI, "serve", "--env", "env_3", "--listen", f"unix:{sock}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("envscaler-runtime serve: a process sandbox on this host, not a "
                                                     "container")
        assert "serving env_3" in process.stdout.readline()
        with EnvClient(f"unix:{sock}") as client:
            client.reset("0402-163011")
            assert client.call("get_order", {"order_id": "O1002"}).result["data"]["total"] == 73.9
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        assert not sock.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_rejects_a_bad_listen_address() -> None:
    done = run_cli("serve", "--env", "env_3", "--listen", "nowhere")
    assert done.returncode == 2 and "expected unix:/path or tcp:HOST:PORT" in done.stderr


def test_serve_time_to_stop_is_short(tmp_path_factory: pytest.TempPathFactory) -> None:
    """SIGTERM with a live episode: the worker and zygote go with the server."""
    sock = tmp_path_factory.mktemp("srv") / "env.sock"
    process = subprocess.Popen([*CLI, "serve", "--env", "env_8", "--listen", f"unix:{sock}"],
                               stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    process.stdout.readline()  # the sandbox notice
    process.stdout.readline()  # serving
    with EnvClient(f"unix:{sock}") as client:
        client.reset("0915-080130")
    children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert children, "the zygote runs as a child of the server"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=5)
    time.sleep(0.2)
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_rollout_without_a_pool_and_without_an_engine_is_one_line(tmp_path: Path) -> None:
    """Issue 29: it starts a pool of its own, which needs an engine; none is reachable here."""
    env = dict(os.environ, DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    done = subprocess.run([*CLI, "rollout", "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--out",
                           str(tmp_path / "traj.jsonl")], capture_output=True, text=True, timeout=120, check=False,
                          env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("envscaler-runtime rollout: without --pool, rollout starts a pool of its own: no Docker "
                           "engine is reachable") and line.endswith("(or give --pool ADDRESS)")
