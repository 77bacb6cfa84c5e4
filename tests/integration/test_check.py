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


TODO_ENV = '''
from typing import TypedDict


class Todo(TypedDict):
    """One thing to do."""
    title: str
    done: bool


class TodoList:
    """A to-do list: add items and tick them off.

    A small list that a user keeps.

    Rules:
    - Titles are unique.
    - Only an open item can be completed.
    """

    def __init__(self):
        self.todos: dict[str, Todo] = {}

    def add_todo(self, title: str, priority: int = 1) -> dict:
        """Add an open item.

        Args:
            title: What to do.
            priority: 1 (high) to 3 (low).
        """
        if title in self.todos:
            return {"success": False, "error": "exists"}
        self.todos[title] = {"title": title, "done": False}
        return {"success": True, "data": self.todos[title]}

    def complete(self, title: str) -> dict:
        """Tick an item off."""
        if title not in self.todos or self.todos[title]["done"]:
            return {"success": False, "error": "no open item"}
        self.todos[title]["done"] = True
        return {"success": True}

    def _helper(self) -> None:
        pass
'''


def test_assemble_a_class_then_check_it_in_the_sandbox(engine: docker.DockerClient, runtime_image: str,
                                                       tmp_path: Path) -> None:
    (tmp_path / "todo_env.py").write_text(TODO_ENV)
    bought = "def check_func(final_state):\n    return final_state['todos'].get('milk', {}).get('done') is True\n"
    scenarios = [
        {"task_id": "buy-milk", "task": "Add milk to my list and tick it off.", "init_config": {"todos": {}},
         "checks": [["milk is done", bought]],
         "solution": [["add_todo", {"title": "milk"}], ["complete", {"title": "milk"}]]},
        {"task_id": "nothing-to-do", "task": "Tick off milk.",
         "init_config": {"todos": {"milk": {"title": "milk", "done": True}}}, "checks": [["milk is done", bought]]},
    ]
    (tmp_path / "scen.json").write_text(json.dumps(scenarios))
    out = tmp_path / "corpus"
    cli = [sys.executable, "-m", "envscaler.cli"]
    made = subprocess.run([*cli, "assemble", str(tmp_path / "todo_env.py"), "--scenarios", str(tmp_path / "scen.json"),
                           "--out", str(out)], capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("env_todo: class TodoList, 2 tools, 2 scenarios, 1 reference solutions")
    env = json.loads((out / "env_metadata.json").read_text())["env_todo"]
    assert env["environment_summary"] == "A to-do list: add items and tick them off."
    assert env["constraints_rules"] == ["Titles are unique.", "Only an open item can be completed."]
    assert env["state_space_definition"][0]["entity"] == "Todo"
    assert [o["operation_name"] for o in env["operation_list"]] == ["add_todo", "complete"]
    assert env["tools"][0]["function"]["parameters"]["required"] == ["title"]
    assert env["tools"][0]["function"]["parameters"]["properties"]["priority"]["type"] == "integer"
    checked = subprocess.run([*cli, "check", "--envs", str(out / "env_metadata.json"), "--scenarios",
                              str(out / "scenarios.json"), "--solutions", str(out / "solutions"), "--sandbox",
                              "container", "--json"], capture_output=True, text=True, timeout=300, check=False)
    assert checked.returncode == 1, checked.stderr
    rows = {r["task_id"]: r for r in json.loads(checked.stdout)["scenarios"]}
    assert rows["buy-milk"]["status"] == "ok" and rows["buy-milk"]["solution"] == "replayed: reward 1.0", rows
    assert rows["nothing-to-do"]["errors"] == ["already solved: every check passes on the initial state"]
