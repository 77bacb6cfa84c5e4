"""The web console in a real browser (Debian's chromium, headless, driven by Playwright) against a real pool
and the console's own process: browse an environment, solve a bundled scenario by filling the generated forms,
watch the pool page take the lease live, read a rollout. Screenshots of every page go to
$ENVSCALER_TEST_ARTIFACTS (default tests/artifacts/console)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from openai import AsyncOpenAI
from playwright.sync_api import Browser, Page, expect, sync_playwright

from envscaler.pool.runner import LocalPool, PoolOptions
from envscaler.rollout.agent import AgentOptions
from envscaler.rollout.runner import run_rollouts
from envscaler.spec import load_corpus
from tests.conftest import ROOT, SOLUTIONS
from tests.llm_server import ScriptedLLM

pytestmark = pytest.mark.integration

ENV, PLAYED, ROLLED, UNSOLVED = "env_8", "0915-101742", "0915-143308", "0915-080130"
PLAY_TTL = 6.0
ARTIFACTS = Path(os.environ.get("ENVSCALER_TEST_ARTIFACTS", ROOT / "tests" / "artifacts")) / "console"
HOSTILE = "Task Completed <img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def solution(task_id: str) -> list[dict]:
    return [json.loads(line) for line in (SOLUTIONS / f"{ENV}__{task_id}.jsonl").read_text().splitlines()]


def chromium() -> str:
    path = os.environ.get("ENVSCALER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("no chromium: run scripts/ensure-browser (./dev test does)")
    return path


@pytest.fixture(scope="module")
def local_pool(engine: docker.DockerClient, example_images: dict[str, str]) -> Iterator[LocalPool]:
    metrics = f"127.0.0.1:{free_port()}"
    with LocalPool(options=PoolOptions(size=2, only=[ENV], metrics_listen=metrics, acquire_wait=120)) as local:
        yield local


@pytest.fixture(scope="module")
def trajectories(local_pool: LocalPool, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real episodes through the rollout machinery: one solved, one that gives up with a hostile reply."""
    corpus = load_corpus()
    solved, unsolved = corpus.scenario(ENV, ROLLED), corpus.scenario(ENV, UNSOLVED)
    scripts = {solved.task[:60]: [{"tool_calls": [[c["name"], json.dumps(c["arguments"])]
                                                  for c in solution(ROLLED)]}, {"content": "Task Completed"}],
               unsolved.task[:60]: [{"content": HOSTILE}]}
    out = tmp_path_factory.mktemp("rollouts") / "trajectories.jsonl"
    with ScriptedLLM(scripts) as llm:
        client = AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
        asyncio.run(run_rollouts(local_pool.address, [solved, unsolved], AgentOptions(model="scripted"), client, out,
                                 concurrency=2))
    return out


@pytest.fixture(scope="module")
def console(local_pool: LocalPool, trajectories: Path) -> Iterator[str]:
    port = free_port()
    metrics = local_pool.options.metrics_listen
    process = subprocess.Popen([sys.executable, "-m", "envscaler.cli", "console", "--pool", local_pool.address,
                                "--metrics", metrics, "--listen", f"127.0.0.1:{port}", "--trajectories",
                                str(trajectories), "--play-ttl", str(PLAY_TTL)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/envs", timeout=2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the console did not start: {process.communicate()[0]}")
            time.sleep(0.2)
    yield url
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        # Chromium's own sandbox refuses to start as root (CI containers); the pages it loads are our own
        root = os.geteuid() == 0
        browser = p.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"] if root else [])
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    yield page
    context.close()
    assert not errors, f"the page reported errors: {errors}"


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def leased_now(local: LocalPool) -> int:
    return sum(e.leased for e in local.pool.stats().envs)


def fill_call(page: Page, call: dict) -> None:
    """Open a tool's form and fill it as a person would: each argument in the input the schema gave it."""
    form = page.locator(f"#form-{call['name']}")
    if not form.evaluate("e => e.open"):
        form.locator("summary").click()
    for name, value in call["arguments"].items():
        field = form.locator(f'[name="{name}"]')
        tag = field.evaluate("e => e.tagName")
        if tag == "SELECT":
            field.select_option(str(value).lower() if isinstance(value, bool) else str(value))
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            field.fill("\n".join(value))
        else:
            field.fill(value if isinstance(value, str) else json.dumps(value))
    form.locator("button[type=submit]").click()


def test_environments_list_search_and_page(console: str, page: Page) -> None:
    page.goto(console + "/envs")
    rows = page.locator("#env-rows tr")
    assert rows.count() == len(load_corpus().envs)
    expect(page.locator("#env-rows")).not_to_contain_text("looking…", timeout=30_000)
    shot(page, "1-environments")
    page.fill("input[name=q]", "warehouse")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(ENV)
    expect(rows.first).to_contain_text("built")
    rows.first.locator("a").click()
    expect(page.locator("h1")).to_contain_text(ENV)
    expect(page.locator(".tool h3").first).to_be_visible()
    assert page.locator(".tool h3").count() >= 5
    expect(page.locator(".source .hl")).to_contain_text("class WarehouseInventory")
    assert page.locator(".source .hl span.k").count() > 10  # highlighted, server side
    shot(page, "2-environment")


def test_play_to_reward_one_while_the_pool_page_shows_the_lease(console: str, browser: Browser,
                                                               local_pool: LocalPool, page: Page) -> None:
    pool_page = page.context.new_page()
    pool_page.goto(console + "/pool")
    expect(pool_page.locator("#live")).to_have_text("live", timeout=15_000)
    expect(pool_page.locator("#c-leased")).to_have_text("0")

    page.goto(f"{console}/envs/{ENV}")
    page.locator(f'button[data-play="{PLAYED}"]').click()
    expect(page.locator("p.task")).to_contain_text("glove delivery for Lyon")
    assert leased_now(local_pool) == 1

    # the pool page, never reloaded, shows the lease (SSE)
    expect(pool_page.locator("#c-leased")).to_have_text("1", timeout=15_000)
    expect(pool_page.locator("#lease-table tbody")).to_contain_text(PLAYED)
    expect(pool_page.locator("#env-table tbody")).to_contain_text(ENV)

    # a bad value is refused in the form, naming the field; nothing reaches the sandbox
    calls = solution(PLAYED)
    adjust = next(c for c in calls if c["name"] == "adjust_stock")
    fill_call(page, {**adjust, "arguments": {**adjust["arguments"], "delta": "eight"}})
    expect(page.locator("#form-adjust_stock .field-error")).to_contain_text("whole number")
    assert page.locator("#steps .step").count() == 0

    page.locator("#state-panel summary").click()  # the whole state, as a table; it follows every call
    expect(page.locator("#state-panel")).to_contain_text('purchase_orders.PO001.status')

    for number, call in enumerate(calls, start=1):
        fill_call(page, call)
        expect(page.locator("#steps .step")).to_have_count(number)
        step = page.locator(f'#steps .step[data-step="{number}"]')
        expect(step.locator(".badge.pass")).to_be_visible()
        expect(step.locator("table.diff tbody tr").first).to_be_visible()  # every solving call changes the state
    expect(page.locator("#state-panel tbody")).to_contain_text('"received"')  # still open, and current
    page.locator("#evaluate").click()
    expect(page.locator("#reward")).to_have_text("1")
    expect(page.locator(".evaluation .badge.fail")).to_have_count(0)
    assert page.locator(".evaluation .badge.pass").count() >= 1
    pool_page.wait_for_timeout(1500)  # the histograms have the calls now
    shot(pool_page, "4-pool")
    shot(page, "3-play")

    page.locator("#reset").click()
    expect(page.locator("#steps .step")).to_have_count(0)
    page.locator("#release").click()
    expect(page).to_have_url(f"{console}/envs/{ENV}")
    expect(pool_page.locator("#c-leased")).to_have_text("0", timeout=15_000)
    assert leased_now(local_pool) == 0


def test_a_closed_tab_loses_its_lease(console: str, browser: Browser, local_pool: LocalPool) -> None:
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(f"{console}/envs/{ENV}")
    tab.locator(f'button[data-play="{PLAYED}"]').click()
    expect(tab.locator("p.task")).to_be_visible()
    assert leased_now(local_pool) == 1
    time.sleep(PLAY_TTL)  # the heartbeats hold it past its TTL
    assert leased_now(local_pool) == 1
    context.close()
    deadline = time.monotonic() + PLAY_TTL + 10
    while leased_now(local_pool) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert leased_now(local_pool) == 0


def test_rollouts_table_charts_and_a_trajectory(console: str, page: Page) -> None:
    page.goto(console + "/rollouts")
    row = page.locator("#per-env tbody tr").first
    expect(row).to_contain_text(ENV)
    expect(row.locator("td").nth(1)).to_have_text("2")  # episodes
    expect(row.locator("td").nth(2)).to_have_text("0.500")  # mean reward
    expect(row.locator("td").nth(3)).to_have_text("50.0%")  # success rate
    for chart in ("#chart-rewards", "#chart-steps"):  # Chart.js drew them
        assert page.evaluate(f"Chart.getChart(document.querySelector('{chart}')) !== undefined")
    rewards = page.evaluate("Chart.getChart(document.querySelector('#chart-rewards')).data.datasets[0].data")
    assert sum(rewards) == 2 and rewards[-1] == 1
    expect(page.locator("#trajectories tbody tr")).to_have_count(2)
    shot(page, "5-rollouts")

    page.fill("input[name=min_reward]", "1")
    page.locator(".filters button").click()
    expect(page.locator("#trajectories tbody tr")).to_have_count(1)
    page.locator("#trajectories tbody tr a").click()
    expect(page.locator("#t-reward")).to_have_text("1.000")
    expect(page.locator("#checks .badge.pass").first).to_be_visible()
    assert page.locator("#steps-table > tbody > tr").count() == len(solution(ROLLED))
    shot(page, "6-trajectory")

    # what an LLM wrote is shown as text, never run
    page.goto(console + "/rollouts?max_reward=0.5")
    page.locator("#trajectories tbody tr a").click()
    expect(page.locator(".msg-assistant pre").last).to_have_text(HOSTILE)
    assert page.title() != "pwned"
    with contextlib.suppress(Exception):
        shot(page, "7-trajectory-unsolved")
