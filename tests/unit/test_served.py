"""The bundle a sandbox container serves from: plain JSON, read without pydantic."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from envscaler.client import EnvClient
from envscaler.protocol import bundle
from envscaler.protocol.health import check
from envscaler.runtime.trusted import served
from envscaler.spec import Corpus
from envscaler.spec.served import from_spec


def test_a_bundle_round_trips(corpus: Corpus, tmp_path: Path) -> None:
    env, scenarios = from_spec(corpus.env("env_4"), corpus.scenarios_of("env_4"))
    path = tmp_path / "served.json"
    path.write_bytes(bundle.bundle(env, scenarios))
    assert served.load_bundle(path) == (env, scenarios)
    first = next(iter(scenarios.values()))
    assert list(first.init_config) == list(corpus.scenarios_of("env_4")[first.task_id].init_config)  # key order kept


def test_a_bundle_directory_reads_one_scenario_at_a_time(corpus: Corpus, tmp_path: Path) -> None:
    env, scenarios = from_spec(corpus.env("env_4"), corpus.scenarios_of("env_4"))
    loaded_env, store = served.load_bundle(bundle.write_bundle(tmp_path / "bundle", env, scenarios))
    assert loaded_env == env and isinstance(store, served.ScenarioStore)
    assert list(store) == list(scenarios) and len(store) == len(scenarios)
    assert {key: store[key] for key in store} == scenarios  # key order of init_config kept too
    first = next(iter(scenarios))
    assert served.scenario_checks(store, first) == scenarios[first].checklist_with_func
    assert served.scenario_checks(store, "nope") is None and store.get("nope") is None
    # Nothing but the index is held: a scenario changed on disk is what the next lookup returns.
    position = store.positions[first]
    (tmp_path / "bundle" / "scenarios" / f"{position}.json").write_text(
        json.dumps({"task_id": first, "task": "changed", "init_config": {}}))
    assert store[first].task == "changed"


def test_the_container_entry_serves_a_bundle_without_pydantic(corpus: Corpus, tmp_path: Path) -> None:
    env, scenarios = from_spec(corpus.env("env_4"), corpus.scenarios_of("env_4"))
    folder = bundle.write_bundle(tmp_path / "served", env, scenarios)
    address = f"unix:{tmp_path}/env.sock"
    probe = ("import sys\nimport envscaler.runtime.trusted.serve_bundle as entry\n"
             "assert 'pydantic' not in sys.modules, 'pydantic was imported'\nsys.exit(entry.main())")
    process = subprocess.Popen([sys.executable, "-c", probe, str(folder), "--listen", address],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not check(address, timeout=1.0):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with EnvClient(address) as client:
            first = next(iter(scenarios))
            reset = client.reset(first)
            assert reset.task == scenarios[first].task
            assert client.call("get_account", {"account_id": "AC-100"}).ok
            assert client.evaluate().total == len(scenarios[first].checklist_with_func)
    finally:
        process.terminate()
        process.wait()


def test_a_missing_bundle_is_one_clear_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "envscaler.runtime.trusted.serve_bundle", str(tmp_path / "nope.json"),
                           "--listen", f"unix:{tmp_path}/x.sock"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("serve_bundle: cannot read") and "Traceback" not in done.stderr
