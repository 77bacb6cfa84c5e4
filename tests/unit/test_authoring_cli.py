"""The author's view through the real CLI: each mistake is one line naming the file, the record, the field and what
is wrong, never a traceback; validate, check and assemble exit non-zero whenever they report an error; the bundled
corpus passes its own `check --solutions`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from envscaler.spec.loader import bundled_envs_path, bundled_scenarios_path
from tests.conftest import SOLUTIONS


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "envscaler.cli", *args], capture_output=True, text=True,
                          timeout=300, check=False, cwd=cwd, env={**os.environ, "COLUMNS": "80"})


def test_validate_prints_one_line_per_mistake_and_exits_1(tmp_path: Path) -> None:
    envs = json.loads(bundled_envs_path().read_text())
    scenarios = json.loads(bundled_scenarios_path().read_text())
    envs["env_3"]["enviroment_summary"] = envs["env_3"].pop("environment_summary")
    scenarios[0]["checks"] = scenarios[0].pop("checklist_with_func")
    scenarios[4]["checklist_with_func"][0]["check_func"] = "def check_func(s, s):\n    return True\n"
    scenarios[5]["init_config"]["acounts"] = scenarios[5]["init_config"].pop("accounts")
    (tmp_path / "envs.json").write_text(json.dumps(envs))
    (tmp_path / "scenarios.json").write_text(json.dumps(scenarios))
    done = cli("validate", "--envs", "envs.json", "--scenarios", "scenarios.json", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == [
        "error: envs.json[env_3]: enviroment_summary: unknown field 'enviroment_summary'; did you mean "
        "'environment_summary'? (without it, environment_summary is left empty)",
        "error: scenarios.json[0]: checks: unknown field 'checks'; did you mean 'checklist_with_func'? "
        "(without it, checklist_with_func is left empty)",
        f"error: scenarios.json[4] (env_4/{scenarios[4]['task_id']}): checklist_with_func[0].check_func: does not "
        "compile: duplicate argument 's' in function definition at line 1",
    ]
    # env_3's scenarios point at the cause, not at an "unknown env_id"
    env_3 = [(i, s["task_id"]) for i, s in enumerate(scenarios) if s["env_id"] == "env_3"]
    assert lines[3:3 + len(env_3)] == [f"error: scenarios.json[{i}] (env_3/{task_id}): env_id: its environment "
                                       "'env_3' did not load (see envs.json[env_3])" for i, task_id in env_3]
    assert lines[3 + len(env_3):] == [
        f"warning: scenarios.json[5] (env_4/{scenarios[5]['task_id']}): init_config.acounts: 'acounts' is not a "
        "state attribute of 'RetailBank'; did you mean 'accounts'?",
        f"8 environments, 24 scenarios: 25 ok, 1 with warnings, {3 + len(env_3)} with errors"]
    strict = cli("validate", "--envs", "envs.json", "--scenarios", "scenarios.json", "--strict", cwd=tmp_path)
    assert strict.returncode == 1
    assert strict.stdout.splitlines()[-1].endswith(f"0 with warnings, {4 + len(env_3)} with errors")


def test_the_bundled_corpus_passes_its_own_check_with_solutions() -> None:
    done = cli("check", "--solutions", str(SOLUTIONS), "--sandbox", "process")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert done.stdout.splitlines()[-2:] == ["24 scenarios: 24 ok, 0 with warnings, 0 with errors",
                                             "reference solutions: 24 replayed to reward 1.0, 0 none, 0 failing"]


def test_check_names_the_cause_first_one_problem_per_line_and_exits_1(tmp_path: Path) -> None:
    scenarios = [s for s in json.loads(bundled_scenarios_path().read_text()) if s["env_id"] == "env_4"]
    first, second, third = (s["task_id"] for s in scenarios)
    scenarios[0]["init_config"]["acounts"] = scenarios[0]["init_config"].pop("accounts")
    scenarios[1]["checklist_with_func"][0]["check_func"] = \
        "def check_func(final_state):\n    return final_state['accounts'] != intial_state['accounts']\n"
    scenarios[2]["check"] = scenarios[2].pop("checklist_with_func")
    (tmp_path / "scenarios.json").write_text(json.dumps(scenarios))
    done = cli("check", "--envs", str(bundled_envs_path()), "--scenarios", "scenarios.json", "--solutions",
               str(SOLUTIONS), "--sandbox", "process", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == ("error: not loaded: scenarios.json[2]: check: unknown field 'check'; did you mean "
                        "'checklist_with_func'? (without it, checklist_with_func is left empty)")
    # the cause (the typo) comes before its symptoms (an empty account table: checks and solution fail)
    assert lines[1] == (f"error: env_4/{first}: init_config.acounts: 'acounts' is not a state attribute of "
                        "'RetailBank'; did you mean 'accounts'?")
    assert any(line.startswith(f"error: env_4/{first}: solution:") for line in lines[2:])
    assert (f"error: env_4/{second}: checklist_with_func[0].check_func: check_func refers to 'intial_state' "
            "(did you mean 'initial_state'?), which nothing defines (not the check, not a builtin, not "
            "initial_state): a NameError when it runs") in lines
    assert all(not line.startswith(f"error: env_4/{third}") for line in lines)


def test_assemble_refuses_a_misspelt_field_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "pad_env.py").write_text('class Pad:\n    """A note pad."""\n\n    def __init__(self):\n'
                                         '        self.notes: dict = {}\n\n    def add(self, text: str) -> dict:\n'
                                         '        """Add a note.\n\n        Args:\n            text: The note.\n'
                                         '        """\n        self.notes[str(len(self.notes))] = text\n'
                                         '        return {"success": True, "message": "added"}\n')
    (tmp_path / "pad_scenarios.py").write_text(
        'SCENARIOS = [{"task_id": "t1", "task": "Add a note.", "init_configs": {"notes": {}},\n'
        '              "checks": [["added", "def check_func(s):\\n    return len(s[\'notes\']) == 1\\n"]]}]\n')
    done = cli("assemble", "pad_env.py", "--scenarios", "pad_scenarios.py", "--out", "out", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == ("envscaler-runtime assemble: pad_scenarios.py: scenario t1: unknown field "
                           "'init_configs'; did you mean 'init_config'?\n")
    assert not (tmp_path / "out").exists()


def test_the_corpus_is_named_once_by_environment_variables(tmp_path: Path) -> None:
    scenarios = json.loads(bundled_scenarios_path().read_text())
    (tmp_path / "a.json").write_text(json.dumps([s for s in scenarios if s["env_id"] == "env_1"]))
    (tmp_path / "b.json").write_text(json.dumps([s for s in scenarios if s["env_id"] == "env_2"]))
    env = {**os.environ, "ENVSCALER_ENVS": str(bundled_envs_path()),
           "ENVSCALER_SCENARIOS": os.pathsep.join([str(tmp_path / "a.json"), str(tmp_path / "b.json")])}
    done = subprocess.run([sys.executable, "-m", "envscaler.cli", "validate"], capture_output=True, text=True,
                          timeout=120, check=False, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "8 environments, 6 scenarios: 14 ok, 0 with warnings, 0 with errors"
    flag = subprocess.run([sys.executable, "-m", "envscaler.cli", "validate", "--scenarios", str(tmp_path / "a.json")],
                          capture_output=True, text=True, timeout=120, check=False, env=env)
    assert flag.stdout.splitlines()[-1].startswith("8 environments, 3 scenarios")  # the flag wins
    shown = subprocess.run([sys.executable, "-m", "envscaler.cli", "validate", "--help"], capture_output=True,
                           text=True, timeout=120, check=False, env={**env, "COLUMNS": "200"})
    assert "$ENVSCALER_ENVS" in shown.stdout and "$ENVSCALER_SCENARIOS" in shown.stdout
