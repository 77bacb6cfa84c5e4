"""Rollouts against a scripted OpenAI-compatible server (the real `openai` client,
real HTTP) and a real pool: expected rewards, failure paths, resume, conv mode, gym."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from openai import AsyncOpenAI

from envscaler.pool.runner import LocalPool, PoolOptions
from envscaler.rollout.agent import AgentOptions
from envscaler.rollout.gym_env import EnvScalerGymEnv
from envscaler.rollout.runner import run_rollouts
from envscaler.spec import Scenario, load_corpus
from tests.browser import ARTIFACTS, launched
from tests.conftest import SOLUTIONS
from tests.llm_server import ScriptedLLM

pytestmark = pytest.mark.integration
CORPUS = load_corpus()
SCENARIOS = [s for by_id in CORPUS.scenarios.values() for s in by_id.values()]


def key(scenario: Scenario) -> str:
    return scenario.task[:60]


def solution(scenario: Scenario) -> list[list[str]]:
    path = SOLUTIONS / f"{scenario.env_id}__{scenario.task_id}.jsonl"
    return [[c["name"], json.dumps(c["arguments"])] for c in map(json.loads, path.read_text().splitlines())]


def solving_script(scenario: Scenario, index: int) -> list[dict]:
    """Half of the scenarios make every call in one turn, half one call per turn."""
    calls = solution(scenario)
    turns = [{"tool_calls": calls}] if index % 2 == 0 else [{"tool_calls": [c]} for c in calls]
    return [*turns, {"content": "All done. Task Completed"}]


@pytest.fixture(scope="module")
def rollout_pool(engine: docker.DockerClient, example_images: dict[str, str]) -> Iterator[LocalPool]:
    with LocalPool(options=PoolOptions(size=8, acquire_wait=300)) as local:
        yield local


def rollout(local: LocalPool, llm: ScriptedLLM, scenarios: list[Scenario], out: Path,
            **options: object) -> object:
    client = AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=2)
    agent = AgentOptions(model="scripted", **options)  # type: ignore[arg-type]
    user = AsyncOpenAI(base_url=llm.base_url, api_key="test") if agent.mode == "conv" else None
    return asyncio.run(run_rollouts(local.address, scenarios, agent, client, out, concurrency=8, user_llm=user))


def records(out: Path) -> dict[tuple[str, str], dict]:
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return {(r["task_info"]["env_id"], r["task_info"]["task_id"]): r for r in rows}


def test_cli_rollout_of_every_example_scenario(rollout_pool: LocalPool, tmp_path: Path) -> None:
    scripts = {key(s): solving_script(s, i) for i, s in enumerate(SCENARIOS)}
    out = tmp_path / "traj.jsonl"
    with ScriptedLLM(scripts) as llm:
        done = subprocess.run([sys.executable, "-m", "envscaler.cli", "rollout", "--pool", rollout_pool.address,
                               "--model", "scripted", "--base-url", llm.base_url, "--out", str(out),
                               "--concurrency", "8"], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert "mean reward" in done.stdout and "1.000" in done.stdout and "100.0%" in done.stdout
    got = records(out)
    assert len(got) == len(SCENARIOS)
    for scenario in SCENARIOS:
        record = got[(scenario.env_id, scenario.task_id)]
        assert record["total_reward"] == 1.0 and record["terminated"] and not record["truncated"]
        assert [s["action"]["name"] for s in record["trajectory"]] == [c[0] for c in solution(scenario)]
        assert record["messages"][0]["role"] == "system" and record["messages"][1]["content"] == scenario.task
        assert {m["role"] for m in record["messages"]} == {"system", "user", "assistant", "tool"}
        assert record["final_observation"].endswith("Task Completed")
        assert record["tools"] and record["steps"] == len(record["trajectory"])
        assert record["tool_schemas"] == "derived"  # what the pool's servers said they serve
        assert record["timings"]["llm_seconds"] > 0 and record["timings"]["env_seconds"] > 0
        # environment time is the sandbox's own measure: less than the client's round trips to it
        assert record["timings"]["env_wall_seconds"] > record["timings"]["env_seconds"]
        assert record["timings"]["env_seconds"] == pytest.approx(sum(s["env_seconds"] for s in record["trajectory"]))


def test_failure_paths(rollout_pool: LocalPool, tmp_path: Path) -> None:
    library = CORPUS.scenarios_of("env_1")
    bank = CORPUS.scenarios_of("env_4")
    shop = CORPUS.scenarios_of("env_3")
    fixable = library["0115-140512"]
    flaky = library["0115-091204"]
    broken_llm = library["0115-102733"]
    overlong = bank["0502-113020"]
    endless = bank["0502-142201"]
    several = shop["0402-163011"]
    scripts = {
        key(fixable): [{"tool_calls": [["renew_loan", "{not json"], ["teleport", "{}"],
                                       ["return_book", '{"loan": "L002"}']]},
                       *solving_script(fixable, 0)],
        key(flaky): [{"status": 500, "times": 1, "then": {"tool_calls": solution(flaky)}},
                     {"content": "Task Completed"}],
        key(broken_llm): [{"status": 500, "times": 99}],
        key(overlong): [{"content": "x" * 20000, "finish_reason": "length"}],
        key(endless): [{"tool_calls": [["list_accounts", '{"customer_id": "CU3"}']]}] * 50,
        key(several): [{"tool_calls": solution(several)}, {"content": "Task Completed"}],
    }
    out = tmp_path / "traj.jsonl"
    with ScriptedLLM(scripts) as llm:
        summary = rollout(rollout_pool, llm, [fixable, flaky, broken_llm, overlong, endless, several], out,
                          max_steps=10)
    got = records(out)
    fixed = got[("env_1", fixable.task_id)]
    assert [s["error_kind"] for s in fixed["trajectory"][:3]] == ["INVALID_ARGUMENTS", "UNKNOWN_TOOL",
                                                                  "INVALID_ARGUMENTS"]
    assert fixed["total_reward"] == 1.0  # bad arguments are errors the agent sees, not the end
    assert got[("env_1", flaky.task_id)]["total_reward"] == 1.0  # retried after a 500
    assert ("env_1", broken_llm.task_id) not in got  # an unreachable LLM is not a result of the agent
    failed = records(out.with_name(out.name + ".errors.jsonl"))[("env_1", broken_llm.task_id)]
    assert failed["error_kind"] == "llm_error" and failed["total_reward"] == 0.0 and failed["truncated"]
    assert summary.infrastructure_failures == 1 and summary.episodes == 5
    cut = got[("env_4", overlong.task_id)]
    assert cut["terminated"] and cut["total_reward"] < 1.0 and len(cut["final_observation"]) == 20000
    capped = got[("env_4", endless.task_id)]
    assert capped["error_kind"] == "max_steps" and capped["steps"] == 10 and capped["total_reward"] == 0.0
    assert got[("env_3", several.task_id)]["total_reward"] == 1.0
    # failed tool calls count by kind too (issue 29): the agent saw them and the episode went on
    tool_errors = [s["error_kind"] for r in got.values() for s in r["trajectory"] if s["error_kind"]]
    assert tool_errors.count("UNKNOWN_TOOL") >= 1 and tool_errors.count("INVALID_ARGUMENTS") >= 2
    assert summary.errors == {"llm_error": 1, "max_steps": 1,
                              **{f"tool {kind}": tool_errors.count(kind) for kind in set(tool_errors)}}


def test_a_killed_run_resumes_without_redoing_episodes(rollout_pool: LocalPool, tmp_path: Path) -> None:
    scripts = {key(s): solving_script(s, i) for i, s in enumerate(SCENARIOS)}
    out = tmp_path / "traj.jsonl"
    command = [sys.executable, "-m", "envscaler.cli", "rollout", "--pool", rollout_pool.address, "--model",
               "scripted", "--out", str(out), "--concurrency", "2"]
    with ScriptedLLM(scripts, delay=0.15) as llm:
        first = subprocess.Popen([*command, "--base-url", llm.base_url], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 6):
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        first.wait()
        finished = set(records(out)) if out.read_text().endswith("\n") else set(list(records(out))[:-1])
        assert 6 <= len(finished) < len(SCENARIOS)
        requests_before = len(llm.requests)
        done = subprocess.run([*command, "--base-url", llm.base_url], capture_output=True, text=True, timeout=600,
                              check=False)
        assert done.returncode == 0, done.stderr
        second_run = llm.requests[requests_before:]
    lines = out.read_text().splitlines()
    got = records(out)
    assert len(lines) == len(got) == len(SCENARIOS)  # every episode exactly once
    assert all(r["total_reward"] == 1.0 for r in got.values())
    replayed = {m["content"][:60] for r in second_run for m in r["messages"] if m["role"] == "user"}
    assert not replayed & {key(CORPUS.scenario(e, t)) for e, t in finished}


def test_conversational_mode(rollout_pool: LocalPool, tmp_path: Path) -> None:
    scenario = CORPUS.scenario("env_6", "0718-104433")
    opener = "Bilal finished the SMTP fix; please move his ticket to review."
    users = {scenario.task[:40]: [f"# Thought: start with the first part.\n# Reply: {opener}",
                                  "# Thought: all done.\n# Reply: Thanks, that is everything. ###STOP###"]}
    agent = {opener[:30]: [{"tool_calls": solution(scenario)}, {"content": "Done: in review, commented, assigned."}]}
    out = tmp_path / "conv.jsonl"
    with ScriptedLLM(agent, users) as llm:
        rollout(rollout_pool, llm, [scenario], out, mode="conv", user_model="simulator")
    record = records(out)[("env_6", scenario.task_id)]
    assert record["messages"][1] == {"role": "assistant", "content": "Hi! How can I help you today?"}
    assert record["messages"][2]["content"] == opener
    assert record["user_messages"][0]["role"] == "system" and "###STOP###" in record["user_messages"][-1]["content"]
    assert record["trajectory"][-1]["observation"]["type"] == "user"
    assert record["total_reward"] == 1.0 and record["terminated"]


def test_gym_adapter_in_an_rl_style_loop(rollout_pool: LocalPool) -> None:
    env = EnvScalerGymEnv(rollout_pool.pool, "env_8", max_steps=10)
    try:
        for task_id in ("0915-080130", "0915-101742"):
            obs, info = env.reset(seed=1, options={"scenario": task_id})
            assert obs == CORPUS.scenario("env_8", task_id).task and info["tools"]
            reward, terminated = 0.0, False
            for name, raw in solution(CORPUS.scenario("env_8", task_id)):
                obs, reward, terminated, truncated, step_info = env.step({"name": name, "arguments": raw})
                assert not terminated and not truncated and step_info["errors"] == [""]
            obs, reward, terminated, truncated, step_info = env.step("Task Completed")
            assert terminated and reward == 1.0
    finally:
        env.close()


def cli_rollout(pool: LocalPool, base_url: str, out: Path, *extra: str, timeout: float = 600) -> \
        subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "envscaler.cli", "rollout", "--pool", pool.address, "--model",
                           "scripted", "--base-url", base_url, "--out", str(out), "--concurrency", "4", *extra],
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_an_unreachable_llm_fails_the_preflight_then_the_fixed_url_runs_everything(rollout_pool: LocalPool,
                                                                                    tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    out = tmp_path / "traj.jsonl"
    started = time.monotonic()
    failed = cli_rollout(rollout_pool, dead_url, out, "--only", "env_2")
    assert failed.returncode == 2 and time.monotonic() - started < 30
    assert failed.stderr.count("\n") == 1 and "pre-flight" in failed.stderr and "Traceback" not in failed.stderr
    assert not out.exists() or not out.read_text()
    env_2 = list(CORPUS.scenarios_of("env_2").values())
    with ScriptedLLM({key(s): solving_script(s, i) for i, s in enumerate(env_2)}) as llm:
        done = cli_rollout(rollout_pool, llm.base_url, out, "--only", "env_2")
        assert done.returncode == 0, done.stderr
        assert {k[1] for k in records(out)} == {s.task_id for s in env_2}
        again = cli_rollout(rollout_pool, llm.base_url, out, "--only", "env_2")  # all done: it writes none
    assert again.returncode == 0, again.stderr
    assert "no episodes" in again.stdout and "0.000" not in again.stdout, again.stdout
    assert f"no episodes written to {out} by this run ({len(env_2)} already done)" in " ".join(again.stdout.split())


def test_infrastructure_failures_are_not_recorded_as_done_and_exit_nonzero(rollout_pool: LocalPool,
                                                                           tmp_path: Path) -> None:
    library = list(CORPUS.scenarios_of("env_1").values())
    broken = library[0]
    scripts = {key(s): solving_script(s, i) for i, s in enumerate(library)}
    out = tmp_path / "traj.jsonl"
    with ScriptedLLM({**scripts, key(broken): [{"status": 503, "times": 99}]}) as llm:
        first = cli_rollout(rollout_pool, llm.base_url, out, "--only", "env_1", "--llm-retries", "0")
    assert first.returncode == 1 and "infrastructure" in first.stderr and "Traceback" not in first.stderr
    assert (broken.env_id, broken.task_id) not in records(out) and len(records(out)) == len(library) - 1
    errors = records(out.with_name(out.name + ".errors.jsonl"))
    assert list(errors) == [(broken.env_id, broken.task_id)]
    with ScriptedLLM(scripts) as llm:
        second = cli_rollout(rollout_pool, llm.base_url, out, "--only", "env_1")
        asked = {m["content"][:60] for r in llm.requests for m in r["messages"] if m["role"] == "user"}
    assert second.returncode == 0, second.stderr
    assert asked & {key(s) for s in library} == {key(broken)}  # only the failed episode ran again
    lines = out.read_text().splitlines()
    assert len(lines) == len(library) and all(r["total_reward"] == 1.0 for r in records(out).values())


def test_a_pool_that_does_not_serve_the_corpus_fails_the_preflight(rollout_pool: LocalPool, tmp_path: Path) -> None:
    from envscaler.rollout.runner import PreflightError

    stranger = SCENARIOS[0].model_copy(update={"env_id": "env_not_served"})
    with ScriptedLLM({}) as llm, pytest.raises(PreflightError, match=r"does not serve 1 environment.*env_not_served"):
        rollout(rollout_pool, llm, [SCENARIOS[1], stranger], tmp_path / "traj.jsonl")
    assert not (tmp_path / "traj.jsonl").exists()


def lease_ids(pool: LocalPool) -> set[str]:
    """The leases the pool holds now (a killed run's stay until their TTL: the test before this one kills one)."""
    assert pool.manager is not None
    return set(pool.manager.leases.copy())


def test_sigint_releases_every_lease_and_the_run_resumes(rollout_pool: LocalPool, tmp_path: Path) -> None:
    scenarios = [s for s in SCENARIOS if s.env_id in ("env_3", "env_4")]
    scripts = {key(s): [{"tool_calls": [c]} for c in solution(s)] + [{"content": "Task Completed"}]
               for s in scenarios}
    out = tmp_path / "traj.jsonl"
    command = [sys.executable, "-m", "envscaler.cli", "rollout", "--pool", rollout_pool.address, "--model",
               "scripted", "--out", str(out), "--concurrency", "3", "--only", "env_3", "env_4"]
    earlier = lease_ids(rollout_pool)
    with ScriptedLLM(scripts, delay=0.3) as llm:
        run = subprocess.Popen([*command, "--base-url", llm.base_url], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (len(lease_ids(rollout_pool) - earlier) < 2 or not out.exists()
                                               or not out.read_text()):
            time.sleep(0.05)
        assert len(lease_ids(rollout_pool) - earlier) >= 2
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=60)
        assert run.returncode == 130, stderr
        assert "Traceback" not in stderr and stderr.count("\n") == 1 and "stopped by SIGINT" in stderr, stderr
        assert "the same command resumes" in stderr
        released = time.monotonic() + 5  # at once, not after the lease TTL (600 s)
        while lease_ids(rollout_pool) - earlier and time.monotonic() < released:
            time.sleep(0.1)
        assert lease_ids(rollout_pool) - earlier == set()
        written = len(records(out))
        assert 1 <= written < len(scenarios)
        done = subprocess.run([*command, "--base-url", llm.base_url], capture_output=True, text=True, timeout=600,
                              check=False)
    assert done.returncode == 0, done.stderr
    assert len(out.read_text().splitlines()) == len(records(out)) == len(scenarios)


def test_samples_per_scenario_resume_per_sample_and_the_report(rollout_pool: LocalPool, tmp_path: Path) -> None:
    scenarios = [s for s in SCENARIOS if s.env_id in ("env_7", "env_8")]
    half = scenarios[0]  # two of its samples are dropped below

    def respond(messages: list[dict]) -> dict | None:
        user = next((m["content"] for m in messages if m["role"] == "user"), "")
        scenario = next((s for s in scenarios if s.task[:60] in user), None)
        if scenario is None:
            return None
        turns = sum(m["role"] == "assistant" for m in messages)
        return {"tool_calls": solution(scenario)} if turns == 0 else {"content": "Task Completed"}

    out = tmp_path / "traj.jsonl"
    with ScriptedLLM(respond=respond) as llm:
        done = cli_rollout(rollout_pool, llm.base_url, out, "--only", "env_7", "env_8", "--samples", "4")
        assert done.returncode == 0, done.stderr
        assert "6 scenarios x 4 samples" in done.stdout and "pass@4 1.000" in done.stdout
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 4 * len(scenarios)
        for s in scenarios:
            mine = [r for r in rows if (r["task_info"]["env_id"], r["task_info"]["task_id"]) == (s.env_id, s.task_id)]
            assert sorted(r["sample_index"] for r in mine) == [0, 1, 2, 3]
        # drop two samples of one scenario: a rerun runs exactly those two
        keep = [r for r in rows if not (r["task_info"]["task_id"] == half.task_id and r["sample_index"] in (1, 3))]
        out.write_text("".join(json.dumps(r) + "\n" for r in keep))
        before = len(llm.requests)
        again = cli_rollout(rollout_pool, llm.base_url, out, "--only", "env_7", "env_8", "--samples", "4")
        assert again.returncode == 0, again.stderr
        episodes = [r for r in llm.requests[before:] if sum(m["role"] == "assistant" for m in r["messages"]) == 0
                    and any(m["role"] == "user" and half.task[:60] in m["content"] for m in r["messages"])]
        assert len(episodes) == 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["sample_index"] for r in rows if r["task_info"]["task_id"] == half.task_id) == [0, 1, 2, 3]
    html = tmp_path / "report.html"
    shown = subprocess.run([sys.executable, "-m", "envscaler.cli", "report", str(out), "--html", str(html)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "env_7" in shown.stdout and "env_8" in shown.stdout and "reward distribution" in shown.stdout
    assert "<svg" in html.read_text() and "steps per episode" in html.read_text()
    look_at_report(html, scenarios=len(scenarios), episodes=4 * len(scenarios))
    as_json = subprocess.run([sys.executable, "-m", "envscaler.cli", "results", str(out), "--json"],
                             capture_output=True, text=True, timeout=60, check=False)
    report = json.loads(as_json.stdout)
    assert [r["episodes"] for r in report["rows"]] == [12, 12]
    assert report["reward_histogram"]["1.0"] == 24 and report["groups"]["k"] == 4


def test_rollout_reads_several_corpus_files(rollout_pool: LocalPool, tmp_path: Path) -> None:
    from envscaler.spec.loader import bundled_envs_path, bundled_scenarios_path

    envs = json.loads(bundled_envs_path().read_text())
    scenarios = json.loads(bundled_scenarios_path().read_text())
    (tmp_path / "a.json").write_text(json.dumps({"env_2": envs["env_2"]}))
    (tmp_path / "b.json").write_text(json.dumps([envs["env_5"]]))
    (tmp_path / "sa.json").write_text(json.dumps([s for s in scenarios if s["env_id"] == "env_2"]))
    (tmp_path / "sb.json").write_text(json.dumps([s for s in scenarios if s["env_id"] == "env_5"]))
    chosen = [s for s in SCENARIOS if s.env_id in ("env_2", "env_5")]
    out = tmp_path / "traj.jsonl"
    with ScriptedLLM({key(s): solving_script(s, i) for i, s in enumerate(chosen)}) as llm:
        files = [str(tmp_path / name) for name in ("a.json", "b.json", "sa.json", "sb.json")]
        done = cli_rollout(rollout_pool, llm.base_url, out, "--envs", *files[:2], "--scenarios", *files[2:])
    assert done.returncode == 0, done.stderr
    assert set(records(out)) == {(s.env_id, s.task_id) for s in chosen}


def test_a_bad_scenario_is_left_out_alone(rollout_pool: LocalPool, tmp_path: Path) -> None:
    from envscaler.spec.loader import bundled_scenarios_path

    scenarios = json.loads(bundled_scenarios_path().read_text())
    bad = next(s for s in scenarios if s["env_id"] == "env_2")
    bad["checklist_with_func"][0]["check_func"] = "def check_func(final_state:\n"
    (tmp_path / "scenarios.json").write_text(json.dumps(scenarios))
    good = [s for s in SCENARIOS if s.env_id == "env_2" and s.task_id != bad["task_id"]]
    out = tmp_path / "traj.jsonl"
    with ScriptedLLM({key(s): solving_script(s, i) for i, s in enumerate(good)}) as llm:
        done = cli_rollout(rollout_pool, llm.base_url, out, "--only", "env_2", "--scenarios",
                           str(tmp_path / "scenarios.json"))
    assert done.returncode == 0, done.stderr
    assert (f"left out: env_2/{bad['task_id']}: scenario left out: checklist_with_func[0].check_func: does not parse"
            in done.stderr) and "Traceback" not in done.stderr
    assert set(records(out)) == {(s.env_id, s.task_id) for s in good}


def test_an_endpoint_that_refuses_the_key_fails_the_preflight(rollout_pool: LocalPool, tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Refusing(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps({"error": {"message": "invalid api key", "type": "auth"}}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = cli_rollout(rollout_pool, f"http://127.0.0.1:{server.server_address[1]}/v1", tmp_path / "t.jsonl",
                           "--only", "env_2")
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "refuses the API key" in done.stderr


def look_at_report(html: Path, scenarios: int, episodes: int) -> None:
    """The HTML report in headless Chromium: self-contained (nothing fetched but the file), its tables and plots
    drawn, a trajectory opened to its calls and checks; the screenshot is for a person to look at."""
    with launched() as browser:
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        fetched: list[str] = []
        page.on("request", lambda r: fetched.append(r.url))
        page.goto(html.as_uri())
        assert fetched == [html.as_uri()]
        assert page.locator("h2", has_text="by scenario").count() == 1
        assert page.locator("table").nth(1).locator("tr").count() == scenarios + 1  # its header, then one each
        plots = page.locator("svg")
        assert plots.count() == 3  # rewards, steps, and mean reward by environment (two environments)
        for i in range(plots.count()):
            box = plots.nth(i).bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 200
        assert page.locator("svg").first.locator("text", has_text="episodes").count() >= 1  # a titled axis
        assert page.locator("details").count() == episodes
        first = page.locator("details").first
        assert not first.locator("text=tool calls").is_visible()
        first.locator("summary").click()
        assert first.locator("text=tool calls").is_visible() and first.locator("td", has_text="PASS").count() >= 1
        (ARTIFACTS / "rollout").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "rollout" / "report.png"), full_page=True)
