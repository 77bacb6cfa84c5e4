"""ScenGenerator: initial states, tasks, checklists and check functions, each tried
in the sandbox. Stricter than EnvScaler: every initial config must instantiate,
every check function must run without error on the initial state, and the
initial state must not already satisfy the whole checklist. Rejections keep
their reasons.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from envscaler.containers.sandbox import Mode, SandboxError, open_sandbox
from envscaler.spec.models import EnvSpec, Scenario
from envscaler.spec.validate import check_func_problem
from envscaler.synth.llm import LLM, LLMFailure, LLMUnavailable, fresh
from envscaler.synth.skel import InitConfig, load_json, save_json


class Task(BaseModel):
    task: str = Field(min_length=1)


class Checklist(BaseModel):
    checklist: list[str] = Field(min_length=1, max_length=12)


class CheckFunc(BaseModel):
    check_func: str = Field(min_length=1)


@dataclass
class ScenSettings:
    per_env: int = 5
    min_task_words: int = 50
    sandbox: Mode = "auto"
    temperature: float = 0.7
    retry_failed: bool = False  # re-run rejected drafts, asking the endpoint anew; accepted ones are kept


@dataclass
class Draft:
    index: int
    init_config: dict[str, Any]
    task: str = ""
    checks: list[tuple[str, str]] | None = None


def task_id(env_id: str, index: int, init_config: dict[str, Any]) -> str:
    """Deterministic, so re-running yields the same ids (EnvScaler's timestamps collide)."""
    digest = hashlib.sha256(json.dumps([env_id, index, init_config], sort_keys=True).encode()).hexdigest()
    return f"s{index:03d}-{digest[:8]}"


class Unavailable(str):
    """Why a draft has no answer when the endpoint, not the draft, failed: never kept as a rejection."""


async def draft(llm: LLM, spec: EnvSpec, index: int, settings: ScenSettings) -> Draft | str:
    """One scenario from the LLM, or why there is none."""
    class_code = spec.env_class_code.split("\n    def ", 1)[0]
    try:
        config = (await llm.structured(InitConfig, "initial_config", class_code=class_code,
                                       variation=f"Variation {index + 1}: make it differ from the others.",
                                       temperature=settings.temperature)).init_config
        tools = ", ".join(t["function"]["name"] for t in spec.tools or [])
        task = (await llm.structured(Task, "scenario_task", environment_summary=spec.environment_summary,
                                     tool_names=tools, init_config=json.dumps(config))).task
        if len(task.split()) < settings.min_task_words:
            return f"the task has {len(task.split())} words, fewer than {settings.min_task_words}"
        items = (await llm.structured(Checklist, "scenario_checklist", task=task,
                                      init_config=json.dumps(config))).checklist
        checks = []
        for item in items:
            source = (await llm.structured(CheckFunc, "check_function", check_item=item, task=task,
                                           init_config=json.dumps(config))).check_func
            problem = check_func_problem(source)
            if problem:
                return f"check {item!r}: {problem}"
            checks.append((item, source))
    except LLMUnavailable as exc:
        return Unavailable(str(exc))
    except LLMFailure as exc:
        return str(exc)
    return Draft(index=index, init_config=config, task=task, checks=checks)


def try_in_sandbox(client: Any, drafts: list[Draft]) -> list[tuple[Draft, str]]:
    """(draft, "") when it holds, else (draft, why not)."""
    outcomes = []
    for item in drafts:
        try:
            client.reset(init_config=item.init_config)
        except Exception as exc:
            outcomes.append((item, f"the initial config does not instantiate: {exc}"))
            continue
        evaluation = client.evaluate(checks=item.checks)
        errors = [f"check {c.index} ({c.check_item!r}): {c.message}" for c in evaluation.checks if c.outcome == "ERROR"]
        if errors:
            outcomes.append((item, "a check fails to run on the initial state: " + "; ".join(errors)))
        elif evaluation.passed == evaluation.total:
            outcomes.append((item, "the initial state already satisfies every check"))
        else:
            outcomes.append((item, ""))
    return outcomes


async def scenarios_for(llm: LLM, spec: EnvSpec, settings: ScenSettings,
                        indices: list[int] | None = None) -> dict[str, Any]:
    numbers = list(range(settings.per_env)) if indices is None else indices
    drafts = await asyncio.gather(*(draft(llm, spec, i, settings) for i in numbers))
    rejected = [{"index": i, "reason": str(d), **({"transient": True} if isinstance(d, Unavailable) else {})}
                for i, d in zip(numbers, drafts, strict=True) if isinstance(d, str)]
    candidates = [d for d in drafts if isinstance(d, Draft)]
    accepted = []
    if candidates:
        try:
            with open_sandbox(spec, {}, settings.sandbox) as (client, _):
                outcomes = await asyncio.to_thread(try_in_sandbox, client, candidates)
        except SandboxError as exc:
            return {"scenarios": [], "rejected": [*rejected, {"index": -1, "reason": str(exc), "transient": True}]}
        for item, reason in outcomes:
            if reason:
                rejected.append({"index": item.index, "task": item.task, "reason": reason})
                continue
            assert item.checks is not None
            accepted.append(Scenario(
                env_id=spec.env_id, env_class_name=spec.env_class_name,
                task_id=task_id(spec.env_id, item.index, item.init_config), init_config=item.init_config,
                task=item.task, checklist=[c for c, _ in item.checks],
                checklist_with_func=[{"check_item": c, "check_func": f} for c, f in item.checks],
            ).model_dump(mode="json"))
    return {"scenarios": accepted, "rejected": rejected}


async def generate_scenarios(llm: LLM, specs: list[EnvSpec], out: Path, settings: ScenSettings,
                             progress: Any = lambda *_: None) -> dict[str, Any]:
    """Per environment, resuming from out/scen/<env_id>.json; writes scenarios.json and rejections.json."""
    report: dict[str, Any] = {}
    scenarios, rejections = [], {}
    for spec in specs:
        path = out / "scen" / f"{spec.env_id}.json"
        result = load_json(path)
        if result is None or any(r.get("transient") for r in result["rejected"]):
            result = await scenarios_for(llm, spec, settings)  # answered requests come from the cache
            save_json(path, result)
        elif settings.retry_failed and result["rejected"] and all(r["index"] >= 0 for r in result["rejected"]):
            token = fresh.set(True)
            try:
                again = await scenarios_for(llm, spec, settings, [r["index"] for r in result["rejected"]])
            finally:
                fresh.reset(token)
            result = {"scenarios": result["scenarios"] + again["scenarios"], "rejected": again["rejected"]}
            save_json(path, result)
        scenarios += result["scenarios"]
        rejections[spec.env_id] = result["rejected"]
        unavailable = sum(bool(r.get("transient")) for r in result["rejected"])
        report[spec.env_id] = {"accepted": len(result["scenarios"]), "rejected": len(result["rejected"]) - unavailable,
                               "unavailable": unavailable}
        progress(spec.env_id, 1)
    save_json(out / "scenarios.json", scenarios)
    save_json(out / "rejections.json", rejections)
    return report
