"""`check`: what `validate` cannot see, found by running the scenarios in the sandbox.

Per scenario: the static problems (with an unknown init_config key as an error), the initial config must
instantiate, no check may error or already pass all together on the initial state, and a reference solution
(`<env_id>__<task_id>.jsonl` in --solutions) must fit the tools' schemas and replay to reward 1.0. Environment
code runs only in the sandbox (`open_sandbox`, as synthesis does), never in this process.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from envscaler.client.errors import EnvClientError
from envscaler.client.replay import CallsFileError, read_calls, replay
from envscaler.containers.sandbox import Mode, SandboxError, open_sandbox
from envscaler.spec.loader import Corpus
from envscaler.spec.models import EnvSpec, Scenario
from envscaler.spec.toolschema import SchemaError, derive_tools
from envscaler.spec.validate import call_argument_problem, check_func_problem, validate_env, validate_scenario

Status = Literal["ok", "warning", "error"]


@dataclass
class ScenarioCheck:
    env_id: str
    task_id: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    solution: str = ""  # "replayed: reward 1.0", "none", or why it failed

    @property
    def status(self) -> Status:
        return "error" if self.errors else "warning" if self.warnings else "ok"

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "status": self.status}


def _static(env: EnvSpec, scenario: Scenario, envs: dict[str, EnvSpec], row: ScenarioCheck) -> None:
    location = f"{scenario.env_id}/{scenario.task_id}"
    problems = validate_scenario(location, scenario, envs, guesses="error")
    for p in problems:
        (row.errors if p.severity == "error" else row.warnings).append(f"{p.field}: {p.message}")


def check_env(env: EnvSpec, scenarios: dict[str, Scenario], envs: dict[str, EnvSpec], solutions: Path | None,
              sandbox: Mode = "auto", base: str | None = None) -> list[ScenarioCheck]:
    rows = {task_id: ScenarioCheck(env.env_id, task_id) for task_id in scenarios}
    env_errors = [f"{p.field}: {p.message}" for p in validate_env(env.env_id, env) if p.severity == "error"]
    if env_errors:
        for row in rows.values():
            row.errors.append("the environment itself: " + "; ".join(env_errors))
        return list(rows.values())
    try:
        tools = derive_tools(env.env_class_code, env.env_class_name)
    except SchemaError as exc:
        tools = []
        for row in rows.values():
            row.errors.append(f"the environment's tools: {exc}")
    for task_id, scenario in scenarios.items():
        _static(env, scenario, envs, rows[task_id])
    runnable = {t: s for t, s in scenarios.items()  # a check that cannot even compile is not worth a sandbox
                if not any(check_func_problem(c.check_func) for c in s.checklist_with_func)}
    try:
        with open_sandbox(env, runnable, sandbox, base) as (client, _):
            for task_id in runnable:
                _run(client, env, task_id, rows[task_id], tools, solutions)
    except SandboxError as exc:
        for task_id in runnable:
            rows[task_id].errors.append(f"the sandbox could not start: {exc}")
    return list(rows.values())


def _run(client: object, env: EnvSpec, task_id: str, row: ScenarioCheck, tools: list[dict],
         solutions: Path | None) -> None:
    from envscaler.client.env_client import EnvClient

    assert isinstance(client, EnvClient)
    try:
        client.reset(task_id)
    except EnvClientError as exc:
        row.errors.append(f"the initial config does not instantiate: {exc}")
        return
    try:
        evaluation = client.evaluate()
    except EnvClientError as exc:
        row.errors.append(f"the checks cannot run: {exc}")
        return
    for c in evaluation.checks:
        if c.outcome == "ERROR":
            row.errors.append(f"check {c.index} ({c.check_item!r}) errors on the initial state: {c.message}")
    if evaluation.total and evaluation.passed == evaluation.total:
        row.errors.append("already solved: every check passes on the initial state")
    if not evaluation.total:
        row.errors.append("checklist_with_func is empty: no check functions, nothing to reward")
    path = solutions / f"{env.env_id}__{task_id}.jsonl" if solutions is not None else None
    if path is None or not path.exists():
        row.solution = "none"
        return
    try:
        calls = read_calls(path)
    except CallsFileError as exc:
        row.errors.append(f"solution: {exc}")
        row.solution = "unreadable"
        return
    for number, call in enumerate(calls, start=1):
        problem = call_argument_problem(tools, call.name, call.arguments)
        if problem:
            row.errors.append(f"solution {path.name}, call {number}: {problem}")
            row.solution = "does not fit the tools"
            return
    try:
        report = replay(client, task_id, calls)
    except EnvClientError as exc:
        row.errors.append(f"solution: {exc}")
        row.solution = "failed"
        return
    if report.evaluation is None:
        broken = report.steps[-1]
        row.errors.append(f"solution: call {len(report.steps)} ({broken.name}) broke the episode: "
                          f"{broken.error_message}")
        row.solution = "broke the episode"
    elif report.evaluation.reward != 1.0:
        failing = [f"check {c.index} ({c.check_item!r}) {c.outcome}{': ' + c.message if c.message else ''}"
                   for c in report.evaluation.checks if c.outcome != "PASS"]
        why = f"not passing: {'; '.join(failing)}" if failing else "no check functions"
        row.errors.append(f"solution: reward {report.evaluation.reward:g}; {why}")
        row.solution = f"reward {report.evaluation.reward:g}"
    else:
        row.solution = "replayed: reward 1.0"


def check_corpus(corpus: Corpus, only: list[str] | None, solutions: Path | None, sandbox: Mode = "auto",
                 base: str | None = None) -> list[ScenarioCheck]:
    rows: list[ScenarioCheck] = []
    for env_id, env in corpus.envs.items():
        if only and env_id not in only:
            continue
        rows += check_env(env, corpus.scenarios_of(env_id), corpus.envs, solutions, sandbox, base)
    return rows
