"""--tool-schemas derived|record: from the command line to what a server describes and a trajectory records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from envscaler.client import EnvClient
from envscaler.protocol import bundle
from envscaler.runtime.trusted import served
from envscaler.runtime.trusted.server import serving
from envscaler.spec import load_corpus
from envscaler.spec.served import from_spec
from tests.unit.test_toolschema import ENVSCALER_RECORD_CODE, ENVSCALER_RECORD_TOOLS

CLI = [sys.executable, "-m", "envscaler.cli"]


def write_corpus(tmp_path: Path) -> tuple[Path, Path]:
    record = {"env_1": {"env_id": "env_1", "environment_summary": "clinic", "environment_introduction": "A clinic.",
                        "env_class_name": "Clinic", "env_class_code": ENVSCALER_RECORD_CODE,
                        "tools": ENVSCALER_RECORD_TOOLS}}
    scenario = [{"env_id": "env_1", "env_class_name": "Clinic", "task_id": "0101-000000", "init_config": {},
                 "task": "cancel it", "checklist_with_func": [
                     {"check_item": "ran", "check_func": "def check_func(final_state):\n    return True"}]}]
    envs, scenarios = tmp_path / "envs.json", tmp_path / "scenarios.json"
    envs.write_text(json.dumps(record))
    scenarios.write_text(json.dumps(scenario))
    return envs, scenarios


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, check=False)


def test_schema_derives_by_default_and_reproduces_the_record_on_request(tmp_path: Path) -> None:
    envs, scenarios = write_corpus(tmp_path)
    base = ("schema", "--envs", str(envs), "--scenarios", str(scenarios), "--env", "env_1")
    derived = json.loads(run_cli(*base).stdout)
    assert [t["function"]["parameters"]["required"] for t in derived] == [["appointment_id"], []]
    record = json.loads(run_cli(*base, "--tool-schemas", "record").stdout)
    assert record == [t for t in ENVSCALER_RECORD_TOOLS if t["function"]["name"] != "_audit"]
    validated = run_cli("validate", "--envs", str(envs), "--scenarios", str(scenarios), "--json")
    assert "['reason'] required in the tools list but with a default in the code" in validated.stdout


def test_a_server_says_which_schemas_it_serves(tmp_path: Path) -> None:
    envs, scenarios = write_corpus(tmp_path)
    corpus = load_corpus(envs, scenarios)
    for mode in ("derived", "record"):
        env, served_scenarios = from_spec(corpus.env("env_1"), corpus.scenarios_of("env_1"), mode)
        path = tmp_path / f"{mode}.json"
        path.write_bytes(bundle.bundle(env, served_scenarios))
        env, served_scenarios = served.load_bundle(path)  # as a sandbox container reads it
        with serving(env, served_scenarios, f"unix:{tmp_path}/{mode}.sock") as running, \
                EnvClient(running.address) as client:
            info = client.describe()
            assert info.tool_schemas == mode
            required = info.tools[0]["function"]["parameters"]["required"]
            assert required == (["appointment_id"] if mode == "derived" else ["appointment_id", "reason"])
