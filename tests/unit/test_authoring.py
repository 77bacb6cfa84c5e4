"""An author's mistakes are caught where they are made: at load, `validate` and `assemble`, each a one-line problem
naming the record, the field (or line) and what is wrong; warnings become errors under --strict. EnvScaler's own
fields and quirks stay accepted."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from envscaler.spec.loader import Problem, RawRecord, SpecError, bundled_envs_path, bundled_scenarios_path, load_corpus
from envscaler.spec.loader import parse_record as _parse
from envscaler.spec.models import EnvSpec, Scenario
from envscaler.spec.validate import check_func_problem, undefined_names, validate_env, validate_files
from envscaler.synth.assemble import AssembleError, assemble

SCENARIO = {"env_id": "env_1", "task_id": "t1", "task": "do it", "init_config": {},
            "checklist_with_func": [{"check_item": "done", "check_func": "def check_func(s):\n    return True\n"}]}


def parse(model: type, data: dict) -> tuple[object, list[Problem]]:
    return _parse(model, RawRecord("f.json[0]", None, data), {})


def corpus_files(tmp_path: Path) -> tuple[dict, list]:
    return json.loads(bundled_envs_path().read_text()), json.loads(bundled_scenarios_path().read_text())


def save(tmp_path: Path, envs: dict, scenarios: list) -> tuple[Path, Path]:
    (tmp_path / "envs.json").write_text(json.dumps(envs))
    (tmp_path / "scenarios.json").write_text(json.dumps(scenarios))
    return tmp_path / "envs.json", tmp_path / "scenarios.json"


# -- misspelt and unknown fields ------------------------------------------------------------------------------

@pytest.mark.parametrize(("wrong", "meant"), [
    ("checks", "checklist_with_func"), ("check", "checklist_with_func"),
    ("checklist_with_funcs", "checklist_with_func"), ("init", "init_config"), ("init_configs", "init_config"),
    ("Init_Config", "init_config"),
])
def test_a_misspelt_scenario_field_is_an_error_naming_the_field_it_meant(wrong: str, meant: str) -> None:
    data = {k: v for k, v in SCENARIO.items() if k != meant}
    data[wrong] = SCENARIO[meant]
    scenario, problems = parse(Scenario, data)
    assert scenario is None
    assert [(p.field, p.severity) for p in problems] == [(wrong, "error")]
    assert f"unknown field {wrong!r}; did you mean {meant!r}?" in problems[0].message


def test_a_misspelt_nested_field_is_named_and_not_followed_by_its_symptom() -> None:
    data = {**SCENARIO, "checklist_with_func": [{"check_item": "done", "func": "def check_func(s): return True"}]}
    _, problems = parse(Scenario, data)
    # the cause only: no "Field required" for the check_func it stands for
    assert [str(p) for p in problems] == ["f.json[0]: checklist_with_func[0].func: unknown field 'func'; did you "
                                          "mean 'check_func'? (without it, check_func is left empty)"]


def test_an_unknown_field_that_resembles_nothing_is_a_warning_and_the_record_loads() -> None:
    scenario, problems = parse(Scenario, {**SCENARIO, "difficulty": "hard", "x_note": "mine"})
    assert isinstance(scenario, Scenario)
    assert [(p.field, p.severity) for p in problems] == [("difficulty", "warning")]
    assert "unknown field 'difficulty', ignored (known: " in problems[0].message
    alongside, problems = parse(Scenario, {**SCENARIO, "checks": []})  # the real one is there: nothing lost
    assert isinstance(alongside, Scenario) and [p.severity for p in problems] == ["warning"]


def test_envscaler_pipeline_fields_are_accepted_silently() -> None:
    env = json.loads(bundled_envs_path().read_text())["env_1"]
    env.update(env_class_def="class X: ...", env_structure={"states": {}}, env_func_details={}, task="seed",
               task_from="api-bank", usefulness=8, modelability=9, init_config_list=[{}], func_test_result={})
    env["operation_list"][0]["description"] = "SkelBuilder stage 2 calls it description"
    spec, problems = parse(EnvSpec, env)
    assert isinstance(spec, EnvSpec) and problems == []
    assert spec.model_dump()["usefulness"] == 8  # kept: a record round-trips


def test_load_corpus_refuses_a_misspelt_field_naming_file_record_and_field(tmp_path: Path) -> None:
    envs, scenarios = corpus_files(tmp_path)
    scenarios[3]["init"] = scenarios[3].pop("init_config")
    envs_path, scen_path = save(tmp_path, envs, scenarios)
    with pytest.raises(SpecError, match=r"^scenarios\.json\[3\]: init: unknown field 'init'; did you mean "
                                        r"'init_config'\?"):
        load_corpus(str(envs_path), str(scen_path))  # paths as text work too
    with pytest.raises(TypeError, match="envs: expected a path"):
        load_corpus(42)  # type: ignore[arg-type]


# -- check functions -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "message"), [
    ("def check_func(s:\n", "does not parse"),
    ("def check_func(s, s):\n    return True\n", "does not compile: duplicate argument 's'"),
    ("def check_func(s):\n    nonlocal q\n    return True\n", "does not compile: no binding for nonlocal 'q'"),
    ("def check(s):\n    return True\n", "does not define a top-level function check_func"),
])
def test_a_check_that_cannot_compile_is_an_error(source: str, message: str) -> None:
    assert message in (check_func_problem(source) or "")


def test_the_names_a_check_reads_that_nothing_defines() -> None:
    source = textwrap.dedent("""\
        import re
        from datetime import datetime as dt
        LIMIT = 3
        def helper(x):
            return x
        def check_func(final_state):
            global seen
            seen = True
            orders = finalstate.get("orders", {})
            ids = [k for k in orders if k in intial_state and re.match("O", k)]
            return helper(len(ids)) < LIMIT and dt is not None and seen and isinstance(initial_state, dict)
        """)
    assert undefined_names(source) == ["finalstate", "intial_state"]
    assert undefined_names("from math import *\ndef check_func(s):\n    return floor(s) == 1\n") == []


def test_a_checks_undefined_name_warns_in_validate_and_is_an_error_under_strict(tmp_path: Path) -> None:
    envs, scenarios = corpus_files(tmp_path)
    scenarios[4]["checklist_with_func"][0]["check_func"] = \
        "def check_func(final_state):\n    return final_state['accounts'] != intial_state['accounts']\n"
    paths = save(tmp_path, envs, scenarios)
    (problem,) = [p for r in validate_files(*paths).records for p in r.problems]
    assert (problem.record, problem.field, problem.severity) == ("scenarios.json[4]",
                                                                 "checklist_with_func[0].check_func", "warning")
    assert "refers to 'intial_state' (did you mean 'initial_state'?), which nothing defines" in problem.message
    strict = validate_files(*paths, strict=True)
    assert not strict.ok and [p.severity for r in strict.records for p in r.problems] == ["error"]


# -- init_config against the class ------------------------------------------------------------------------------

def test_a_misspelt_key_of_an_init_config_entity_is_named_with_its_typeddict(tmp_path: Path) -> None:
    envs, scenarios = corpus_files(tmp_path)
    accounts = scenarios[4]["init_config"]["accounts"]
    for account in accounts.values():
        account["balence"] = account.pop("balance")
    report = validate_files(*save(tmp_path, envs, scenarios))
    (problem,) = [p for r in report.records for p in r.problems]
    first = next(iter(accounts))
    assert problem.field == f"init_config.accounts.{first}.balence"
    assert problem.message == (f"'balence' is not a key of AccountInfo; did you mean 'balance'? "
                               f"({len(accounts)} entries)")


# -- what the code tells the agent ------------------------------------------------------------------------------

LINTED = textwrap.dedent('''\
    from typing import Dict, List, TypedDict


    class Line(TypedDict):
        sku: str
        qty: int
        price: float


    class Shop:
        """A shop."""

        def __init__(self):
            self.stock: Dict[str, int] = {}

        def bare(self, sku: str) -> dict:
            return {"success": True, "data": self.stock.get(sku)}

        def half(self, sku: str, qty: int) -> dict:
            """Half documented.

            Args:
                sku: The item.
                colour: Not a parameter.
            """
            return {"success": True, "data": qty}

        def odd_default(self, qty: int = "two") -> dict:
            """A default its annotation refuses.

            Args:
                qty: How many.
            """
            return {"success": True, "data": qty}

        def order(self, lines: List[Line]) -> dict:
            """Order lines.

            Args:
                lines: What to order.
            """
            for line in lines:
                self.stock[line["sku"]] = self.stock.get(line["sku"], 0) - line["qty"]
            return {"success": True, "message": "ordered"}
    ''')


def test_tools_the_agent_cannot_understand_are_warnings_with_their_line() -> None:
    spec = EnvSpec(env_id="env_lint", env_class_name="Shop", env_class_code=LINTED, environment_introduction="Shop")
    found = validate_env("envs.json[env_lint]", spec)
    assert {p.severity for p in found} == {"warning"}
    problems = {(p.field, p.line, p.message) for p in found}
    intro = [m for f, _, m in problems if f == "environment_introduction"]
    assert len(intro) == 1 and intro[0].startswith("says nothing about the environment")
    assert ("env_class_code.bare", 16, "tool 'bare' has no docstring: the agent sees only its name") in problems
    assert ("env_class_code.bare", 16, "tool 'bare': parameter 'sku' not described (add an Args: section to its "
                                       "docstring)") in problems
    assert ("env_class_code.half", 19, "tool 'half': parameter 'qty' not described (add an Args: section to its "
                                       "docstring)") in problems
    assert ("env_class_code.half", 19, "tool 'half': its docstring describes 'colour', which is not a "
                                       "parameter") in problems
    assert any(f == "env_class_code.odd_default" and "parameter 'qty' defaults to 'two', which its annotation does "
               "not allow" in m for f, _, m in problems)
    (order,) = [m for f, _, m in problems if f == "env_class_code.order"]
    assert order.startswith("tool 'order': its schema requires lines[].price (from Line), which the code never "
                            "reads: a caller must invent it")


def test_the_bundled_corpus_has_no_authoring_warnings_even_under_strict() -> None:
    report = validate_files(strict=True)
    assert report.ok, [str(p) for r in report.records for p in r.problems]


# -- assemble -------------------------------------------------------------------------------------------------

ENV_PY = textwrap.dedent('''\
    from typing import Dict, TypedDict


    class Item(TypedDict):
        item_id: str
        count: int


    class Store:
        """A tiny store of counted items."""

        def __init__(self, init_config: dict | None = None):
            self.items: Dict[str, Item] = {}

        def take(self, item_id: str, n: int = 1) -> dict:
            if item_id not in self.items or self.items[item_id]["count"] < n:
                return {"success": False, "error": "not enough"}
            self.items[item_id]["count"] -= n
            return {"success": True, "message": "taken"}
    ''')
CHECK = "def check_func(final_state):\n    return final_state['items']['A']['count'] == 1\n"


def authored(tmp_path: Path, scenario: dict, meta: dict | None = None) -> tuple[Path, Path]:
    (tmp_path / "store_env.py").write_text(ENV_PY)
    text = (f"META = {meta or {'env_id': 'env_store'}!r}\nBASE = {{'items': {{'A': {{'item_id': 'A', 'count': 3}}}}}}\n"
            f"SCENARIOS = [{scenario!r}]\n")
    (tmp_path / "store_scenarios.py").write_text(text)
    return tmp_path / "store_env.py", tmp_path / "store_scenarios.py"


def test_assemble_refuses_a_misspelt_scenario_or_meta_field(tmp_path: Path) -> None:
    env_py, scen_py = authored(tmp_path, {"task_id": "t1", "task": "Take two.", "check": [["taken", CHECK]]})
    with pytest.raises(AssembleError, match=r"store_scenarios\.py: scenario t1: unknown field 'check'; did you "
                                            r"mean 'checks'\?"):
        assemble(env_py, tmp_path / "out", scenarios=scen_py)
    env_py, scen_py = authored(tmp_path, {"task_id": "t1", "task": "Take two.", "checks": [["taken", CHECK]]},
                               {"env_id": "env_store", "sumary": "Store"})
    with pytest.raises(AssembleError, match=r"META: unknown field 'sumary'; did you mean 'environment_summary'\?"):
        assemble(env_py, tmp_path / "out", scenarios=scen_py)
    assert not (tmp_path / "out").exists()


def test_assemble_reports_warnings_and_strict_refuses_them(tmp_path: Path) -> None:
    env_py, scen_py = authored(tmp_path, {"task_id": "t1", "task": "Take two.", "checks": [["taken", CHECK]]})
    done = assemble(env_py, tmp_path / "out", scenarios=scen_py)
    assert {(p.field, p.line, p.severity) for p in done["problems"]} == {("env_class_code.take", 15, "warning")}
    assert (tmp_path / "out" / "env_metadata.json").exists()
    with pytest.raises(AssembleError) as refused:
        assemble(env_py, tmp_path / "strict", scenarios=scen_py, strict=True)
    lines = str(refused.value).splitlines()
    assert lines[0] == "2 problems (--strict), nothing written:"
    assert lines[1] == (f"error: {env_py} (env_store): line 15: env_class_code.take: tool 'take' has no docstring: "
                        "the agent sees only its name")
    assert not (tmp_path / "strict").exists()


def test_assemble_refuses_a_check_that_does_not_parse(tmp_path: Path) -> None:
    env_py, scen_py = authored(tmp_path, {"task_id": "t1", "task": "Take two.",
                                          "checks": [["taken", "def check_func(s:\n"]]})
    with pytest.raises(AssembleError, match=r"1 problem, nothing written:\nerror: .*store_scenarios\.py "
                                            r"\(env_store/t1\): checklist_with_func\[0\]\.check_func: does not "
                                            "parse"):
        assemble(env_py, tmp_path / "out", scenarios=scen_py)
