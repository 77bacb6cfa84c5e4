"""`check` runs each scenario in a hardened container: already-solved scenarios, checks that error on the initial
state, init_config typos and reference solutions that do not fit or do not solve are reported per scenario."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from envscaler.spec.loader import bundled_envs_path, bundled_scenarios_path
from tests.conftest import SOLUTIONS

pytestmark = pytest.mark.integration
SOLVED = "def check_func(final_state):\n    return True\n"
ERRORS = "def check_func(final_state):\n    return final_state['no_such_attribute'] == 1\n"


def test_check_reports_each_broken_scenario_alone(engine: docker.DockerClient, runtime_image: str,
                                                  tmp_path: Path) -> None:
    scenarios = json.loads(bundled_scenarios_path().read_text())
    by_id = {(s["env_id"], s["task_id"]): s for s in scenarios}
    by_id[("env_4", "0502-091533")]["checklist_with_func"] = [{"check_item": "always", "check_func": SOLVED}]
    by_id[("env_4", "0502-113020")]["checklist_with_func"].append({"check_item": "broken", "check_func": ERRORS})
    typo = by_id[("env_4", "0502-142201")]["init_config"]
    typo["acounts"] = typo["accounts"]
    (tmp_path / "scenarios.json").write_text(json.dumps(scenarios))
    solutions = tmp_path / "solutions"
    shutil.copytree(SOLUTIONS, solutions)
    mistyped = solutions / "env_1__0115-091204.jsonl"
    mistyped.write_text(mistyped.read_text().replace('"loan_days": 21', '"loan_days": "two"'))
    unsolved = solutions / "env_1__0115-140512.jsonl"
    unsolved.write_text(unsolved.read_text().splitlines()[0] + "\n")
    done = subprocess.run([sys.executable, "-m", "envscaler.cli", "check", "--envs", str(bundled_envs_path()),
                           "--scenarios", str(tmp_path / "scenarios.json"), "--only", "env_1", "env_4",
                           "--solutions", str(solutions), "--sandbox", "container", "--json"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1, done.stderr
    rows = {r["task_id"]: r for r in json.loads(done.stdout)["scenarios"]}
    assert len(rows) == 6

    def errors(task_id: str) -> str:
        return " | ".join(rows[task_id]["errors"])

    assert "already solved: every check passes on the initial state" in errors("0502-091533")
    assert "check 2 ('broken') errors on the initial state: check_func raised KeyError" in errors("0502-113020")
    assert "init_config.acounts: 'acounts' is not a state attribute of 'RetailBank'" in errors("0502-142201")
    assert ("call 3: checkout_book: parameter 'loan_days' is \"two\", expected integer" in errors("0115-091204")
            and rows["0115-091204"]["solution"] == "does not fit the tools")
    assert "solution: reward" in errors("0115-140512") and "not passing" in errors("0115-140512")
    assert rows["0115-102733"] == {"env_id": "env_1", "task_id": "0115-102733", "errors": [], "warnings": [],
                                   "solution": "replayed: reward 1.0", "status": "ok"}
    assert rows["0502-113020"]["solution"] == "reward 0.6667"  # the erroring check never passes
    shown = subprocess.run([sys.executable, "-m", "envscaler.cli", "check", "--only", "env_2", "--solutions",
                            str(SOLUTIONS), "--sandbox", "container"], capture_output=True, text=True, timeout=300,
                           check=False)
    assert shown.returncode == 0, shown.stderr
    assert "3 scenarios: 3 ok, 0 with warnings, 0 with errors" in shown.stdout


def test_build_leaves_out_a_bad_scenario_alone(engine: docker.DockerClient, runtime_image: str,
                                               example_images: dict[str, str], tmp_path: Path) -> None:
    scenarios = json.loads(bundled_scenarios_path().read_text())
    bad = next(s for s in scenarios if s["env_id"] == "env_2")
    bad["checklist_with_func"][0]["check_func"] = "def check_func(final_state:\n"
    (tmp_path / "scenarios.json").write_text(json.dumps(scenarios))
    done = subprocess.run([sys.executable, "-m", "envscaler.cli", "build", "--only", "env_2", "env_3", "--scenarios",
                           str(tmp_path / "scenarios.json"), "--envs", str(bundled_envs_path())],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "COLUMNS": "400"})
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("│")}
    failed = rows[f"env_2/{bad['task_id']}"]
    assert "failed" in failed and "scenario left out: checklist_with_func[0].check_func: does not parse" in failed
    assert "built" in rows["env_2"] or "cached" in rows["env_2"]  # the environment and its good scenarios
    assert "built" in rows["env_3"] or "cached" in rows["env_3"]
    assert "2 failed" not in done.stdout
