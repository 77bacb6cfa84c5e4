"""Loading EnvScaler's files in both published layouts, and what a bad record reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envscaler.spec import SpecError, load_corpus
from envscaler.spec.loader import bundled_envs_path, bundled_scenarios_path

CODE = "class Env:\n    def ping(self) -> dict:\n        return {'success': True, 'data': 'pong'}\n"


def env_record(env_id: str = "env_9", **extra: object) -> dict:
    return {"env_id": env_id, "env_class_name": "Env", "env_class_code": CODE, **extra}


def scenario_record(task_id: str = "0101-000000", env_id: str = "env_9") -> dict:
    return {"env_id": env_id, "env_class_name": "Env", "task_id": task_id, "init_config": {"x": 1}, "task": "t",
            "checklist": ["c"], "checklist_with_func": [{"check_item": "c", "check_func": "def check_func(s):\n"
                                                                                          "    return True\n"}]}


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_bundled_corpus_in_the_published_keyed_layout() -> None:
    raw = json.loads(bundled_envs_path().read_text())
    assert isinstance(raw, dict)
    corpus = load_corpus()
    assert set(corpus.envs) == set(raw)
    assert sum(len(s) for s in corpus.scenarios.values()) == len(json.loads(bundled_scenarios_path().read_text()))


def test_keyed_dict_layout_fills_env_id_from_the_key(tmp_path: Path) -> None:
    record = env_record()
    del record["env_id"]
    corpus = load_corpus(write(tmp_path / "envs.json", {"env_9": record}))
    assert corpus.env("env_9").env_class_name == "Env"


def test_list_layout_and_jsonl_scenarios(tmp_path: Path) -> None:
    envs = write(tmp_path / "envs.json", [env_record("env_1"), env_record("env_2")])
    scenarios = tmp_path / "rl.jsonl"
    scenarios.write_text("\n".join(json.dumps(scenario_record(t, e)) for t, e in
                                   [("a", "env_1"), ("b", "env_2")]) + "\n\n")
    corpus = load_corpus(envs, scenarios)
    assert sorted(corpus.envs) == ["env_1", "env_2"]
    assert corpus.scenario("env_2", "b").init_config == {"x": 1}


def test_unknown_fields_are_kept(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path / "e.json", [env_record(env_structure={"reads": []})]))
    assert corpus.env("env_9").model_dump()["env_structure"] == {"reads": []}


def test_numeric_task_ids_become_text(tmp_path: Path) -> None:
    scen = scenario_record()
    scen["task_id"] = 17
    corpus = load_corpus(write(tmp_path / "e.json", [env_record()]), write(tmp_path / "s.json", [scen]))
    assert list(corpus.scenarios_of("env_9")) == ["17"]


def test_duplicate_task_ids_are_kept_apart_and_reported(tmp_path: Path) -> None:
    corpus = load_corpus(write(tmp_path / "e.json", [env_record()]),
                         write(tmp_path / "s.json", [scenario_record("t"), scenario_record("t")]))
    assert list(corpus.scenarios_of("env_9")) == ["t", "t~2"]
    assert [p.severity for p in corpus.problems] == ["warning"]


def test_missing_field_names_record_and_field(tmp_path: Path) -> None:
    record = env_record()
    del record["env_class_code"]
    with pytest.raises(SpecError, match=r"e\.json\[0\]: env_class_code: Field required"):
        load_corpus(write(tmp_path / "e.json", [record]))


def test_wrong_type_names_the_nested_field(tmp_path: Path) -> None:
    scen = scenario_record()
    scen["checklist_with_func"][0]["check_func"] = 5
    with pytest.raises(SpecError, match=r"s\.json\[0\]: checklist_with_func\[0\]\.check_func"):
        load_corpus(write(tmp_path / "e.json", [env_record()]), write(tmp_path / "s.json", [scen]))


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(scenario_record()) + "\n{not json\n")
    with pytest.raises(SpecError, match=r"s\.jsonl:2: invalid JSON"):
        load_corpus(write(tmp_path / "e.json", [env_record()]), path)


def test_scenario_of_unknown_env(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"env_id: unknown env_id 'env_404'"):
        load_corpus(write(tmp_path / "e.json", [env_record()]), write(tmp_path / "s.json",
                                                                       [scenario_record(env_id="env_404")]))


def test_not_a_record(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"e\.json\[0\]: expected a JSON object, got str"):
        load_corpus(write(tmp_path / "e.json", ["oops"]))


def test_lenient_loading_keeps_the_good_records(tmp_path: Path) -> None:
    bad = env_record("env_2")
    bad["env_class_name"] = ""
    corpus = load_corpus(write(tmp_path / "e.json", [env_record("env_1"), bad]), strict=False)
    assert list(corpus.envs) == ["env_1"]
    assert corpus.problems[0].field == "env_class_name"


def test_spec_hash_follows_code_tools_and_rules() -> None:
    from envscaler.spec import EnvSpec

    base = EnvSpec(**env_record())
    assert base.spec_hash == EnvSpec(**env_record(environment_summary="other words")).spec_hash
    assert base.spec_hash != EnvSpec(**env_record(constraints_rules=["a rule"])).spec_hash
    assert base.spec_hash != EnvSpec(**{**env_record(), "env_class_code": CODE + "\n# changed\n"}).spec_hash
    assert base.spec_hash != EnvSpec(**env_record(tools=[])).spec_hash
