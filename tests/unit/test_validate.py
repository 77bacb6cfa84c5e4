"""`envscaler-runtime validate`: static checks, per-record report, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envscaler.cli import main
from envscaler.spec.loader import bundled_envs_path, bundled_scenarios_path
from envscaler.spec.validate import validate_files


def corpus_copy(tmp_path: Path) -> tuple[Path, Path, dict, list]:
    envs = json.loads(bundled_envs_path().read_text())
    scenarios = json.loads(bundled_scenarios_path().read_text())
    return tmp_path / "envs.json", tmp_path / "scenarios.json", envs, scenarios


def save(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_bundled_corpus_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 0
    assert "0 with errors" in capsys.readouterr().out


@pytest.mark.parametrize(("mutate", "field", "message"), [
    (lambda e, s: e["env_3"].update(env_class_code="class OnlineShop(:\n"), "env_class_code", "does not parse"),
    (lambda e, s: e["env_3"].update(env_class_name="Missing"), "env_class_name", "is not defined"),
    (lambda e, s: e["env_3"]["tools"][0]["function"].update(parameters={"type": 5}),
     "tools[0].function.parameters.type", "invalid JSON Schema"),
    (lambda e, s: s[4]["checklist_with_func"][1].update(check_func="def other(x):\n    return True\n"),
     "checklist_with_func[1].check_func", "does not define"),
    (lambda e, s: s[4]["checklist_with_func"][0].update(check_func="def check_func(s:\n"),
     "checklist_with_func[0].check_func", "does not parse"),
    (lambda e, s: s[4].update(env_id="env_999"), "env_id", "unknown env_id"),
])
def test_one_broken_record_fails_and_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str], mutate,
                                              field: str, message: str) -> None:
    envs_path, scen_path, envs, scenarios = corpus_copy(tmp_path)
    mutate(envs, scenarios)
    save(envs_path, envs)
    save(scen_path, scenarios)
    assert main(["validate", "--envs", str(envs_path), "--scenarios", str(scen_path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    broken = [r for r in report if r["status"] == "error"]
    assert len(broken) == 1
    problem = broken[0]["problems"][0]
    assert problem["field"] == field and message in problem["message"]
    assert broken[0]["record"] in ("envs.json[env_3]", "scenarios.json[4]")


def test_an_init_config_key_the_class_never_sets_is_named(tmp_path: Path) -> None:
    envs_path, scen_path, envs, scenarios = corpus_copy(tmp_path)
    bank = scenarios[4]
    bank["init_config"]["acounts"] = bank["init_config"].pop("accounts")
    report = validate_files(save(envs_path, envs), save(scen_path, scenarios))
    problems = [p for r in report.records for p in r.problems]
    assert [(p.record, p.field, p.severity) for p in problems] == [("scenarios.json[4]", "init_config.acounts",
                                                                    "warning")]
    assert "'acounts' is not a state attribute of 'RetailBank'; did you mean 'accounts'?" in problems[0].message


def test_init_config_keys_read_by_init_or_set_dynamically_are_known() -> None:
    from envscaler.spec.validate import state_attributes

    reads = "class A:\n    def __init__(self, config=None):\n        data = (config or {}).get('raw', {})\n" \
            "        self.items = data\n"
    assert state_attributes(reads, "A") == {"raw", "items"}
    dynamic = "class B:\n    def __init__(self, config):\n        for k, v in config.items():\n" \
              "            setattr(self, k, v)\n"
    assert state_attributes(dynamic, "B") is None
    passed_on = "class C:\n    def __init__(self, config):\n        self.load(config)\n" \
                "    def load(self, c):\n        self.x = c\n"
    assert state_attributes(passed_on, "C") is None
    inherited = "class Base:\n    shared: int = 0\n    def reset(self):\n        self.y += 1\n" \
                "class D(Base):\n    def __init__(self):\n        self.z = 1\n"
    assert state_attributes(inherited, "D") == {"shared", "y", "z"}


def test_published_tools_quirks_are_warnings(tmp_path: Path) -> None:
    envs_path, _, envs, _ = corpus_copy(tmp_path)
    tools = envs["env_1"]["tools"]
    tools.append({"type": "function", "function": {"name": "_active_loans", "description": "",
                                                   "parameters": {"type": "object", "properties": {}}}})
    tools.append({"type": "function", "function": {"name": "teleport", "parameters": {"type": "object"}}})
    tools[0]["function"]["parameters"]["properties"]["extra"] = {"type": "string"}
    del tools[1]
    report = validate_files(save(envs_path, envs))
    assert report.ok
    messages = [p.message for r in report.records for p in r.problems]
    assert any("'_active_loans' is private" in m for m in messages)
    assert any("'teleport' is not a public method" in m for m in messages)
    assert any("is missing from tools" in m for m in messages)
    assert any("tools list" in m and "extra" in m for m in messages)


def test_unreadable_file_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "envs.json"
    bad.write_text("{broken")
    assert main(["validate", "--envs", str(bad)]) == 1
    assert "invalid JSON" in capsys.readouterr().out


def test_several_corpus_files_are_one_corpus_and_duplicate_env_ids_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    envs = json.loads(bundled_envs_path().read_text())
    scenarios = json.loads(bundled_scenarios_path().read_text())
    first = save(tmp_path / "a_envs.json", {k: v for k, v in envs.items() if k in ("env_1", "env_2")})
    second = save(tmp_path / "b_envs.json", [v for k, v in envs.items() if k not in ("env_1", "env_2")])
    scen_a = save(tmp_path / "a_scen.json", [s for s in scenarios if s["env_id"] in ("env_1", "env_2")])
    scen_b = tmp_path / "b_scen.jsonl"
    scen_b.write_text("".join(json.dumps(s) + "\n" for s in scenarios if s["env_id"] not in ("env_1", "env_2")))
    assert main(["validate", "--envs", str(first), str(second), "--scenarios", str(scen_a), "--scenarios",
                 str(scen_b)]) == 0
    assert "8 environments, 24 scenarios" in capsys.readouterr().out
    twice = save(tmp_path / "c_envs.json", [envs["env_2"]])
    assert main(["validate", "--envs", str(first), str(twice), "--scenarios", str(scen_a)]) == 2
    err = capsys.readouterr().err
    assert err == (f"envscaler-runtime validate: env_id 'env_2' is defined in both {first} and {twice}; env ids "
                   "must be unique across --envs files\n")
