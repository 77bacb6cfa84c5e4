"""SkelBuilder: from user requests to checked environment classes.

Stage 1 (topics): keep stateful requests, infer an environment for each, score it,
de-duplicate (exactly, then by embeddings when an embedding model is given), keep
those over the thresholds. Stage 2 (code): state space and rules, class
definition, operation list, one method per operation, one assembled module that
must parse. Stage 3 (quality): an initial config instantiated in the sandbox, then
rounds of a caller agent choosing tool calls and a checker agent judging them,
every call executed in the sandbox; tools that cannot run at all are dropped.

Every stage writes its artifacts to the output directory and reuses them when run
again, so a run can be resumed and re-running it costs nothing.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import json
import math
import re
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from envscaler.containers.sandbox import Mode, SandboxError, open_sandbox
from envscaler.spec.models import EnvSpec, Operation, StateEntity
from envscaler.spec.toolschema import SchemaError, derive_tools, parse_module
from envscaler.synth.llm import LLM, LLMFailure, LLMUnavailable, fresh

# ---------------------------------------------------------------- structured answers


class Judge(BaseModel):
    stateful: bool
    reason: str = ""


class Inferred(BaseModel):
    environment_summary: str = Field(min_length=3)
    environment_introduction: str = Field(min_length=10)
    usefulness: int = Field(ge=1, le=10)
    modelability: int = Field(ge=1, le=10)


class StateSpace(BaseModel):
    state_space_definition: list[StateEntity] = Field(min_length=1)
    constraints_rules: list[str] = Field(default_factory=list)


class ClassDefinition(BaseModel):
    env_class_name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    code: str


class OperationItem(BaseModel):
    operation_name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    operation_description: str = ""
    operation_type: Literal["query", "state_change"]


class Operations(BaseModel):
    operation_list: list[OperationItem] = Field(min_length=1)


class MethodCode(BaseModel):
    code: str


class InitConfig(BaseModel):
    init_config: dict[str, Any]


class CallerChoice(BaseModel):
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    case: Literal["positive", "negative"] = "positive"


class Verdict(BaseModel):
    verdict: Literal["Pass", "Warning", "Fail"]
    reason: str = ""


# ---------------------------------------------------------------- settings and records


@dataclass
class SkelSettings:
    min_usefulness: int = 7
    min_modelability: int = 7
    duplicate_similarity: float = 0.92  # cosine similarity above which two environments are one
    rounds: int = 30
    pass_threshold: float = 0.85
    tool_timeout: float = 5.0
    sandbox: Mode = "auto"
    embed_model: str = ""
    id_prefix: str = ""  # env ids are <id_prefix><n>; default from the output folder (see id_prefix())
    retry_failed: bool = False  # re-run environments rejected at stage 2 or 3, asking the endpoint anew


@dataclass
class Topic:
    task: str
    stateful: bool = False
    judge_reason: str = ""
    inferred: dict[str, Any] = field(default_factory=dict)
    kept: bool = False
    reason: str = ""
    transient: bool = False  # the endpoint failed, not the topic: the next run asks again


def id_prefix(out: Path) -> str:
    """Ids of a run's environments: `env_<run>_<n>`, from the output folder's name, so they never collide with
    the bundled `env_<n>` and stay the same on every rerun into that folder."""
    return f"env_{slug(out.resolve().name)[:24]}_"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "env"


def read_tasks(path: Path) -> list[str]:
    """User requests from JSON (a list of strings or of objects) or JSONL."""
    text = path.read_text(encoding="utf-8")
    items = [json.loads(line) for line in text.splitlines() if line.strip()] if path.suffix == ".jsonl" \
        else json.loads(text)
    tasks = []
    for item in items:
        if isinstance(item, str):
            tasks.append(item)
        elif isinstance(item, dict):
            value = next((item[k] for k in ("task", "query", "question", "content", "instruction") if k in item), "")
            if isinstance(value, str) and value.strip():
                tasks.append(value)
    return list(dict.fromkeys(t.strip() for t in tasks if t.strip()))


def load_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def save_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    tmp.replace(path)  # a run killed mid-write never leaves a half artifact


# ---------------------------------------------------------------- stage 1: topics


async def stage_topics(llm: LLM, tasks: list[str], settings: SkelSettings) -> list[Topic]:
    async def one(task: str) -> Topic:
        topic = Topic(task=task)
        try:
            judge = await llm.structured(Judge, "judge_stateful", task=task)
            topic.stateful, topic.judge_reason = judge.stateful, judge.reason
            if not judge.stateful:
                topic.reason = f"not stateful: {judge.reason}"
                return topic
            topic.inferred = (await llm.structured(Inferred, "infer_environment", task=task)).model_dump()
        except LLMFailure as exc:
            topic.reason, topic.transient = str(exc), isinstance(exc, LLMUnavailable)
        return topic

    topics = await asyncio.gather(*(one(task) for task in tasks))
    candidates = [t for t in topics if t.inferred]
    for topic in candidates:
        scores = topic.inferred
        if scores["usefulness"] < settings.min_usefulness or scores["modelability"] < settings.min_modelability:
            topic.reason = (f"scores under the thresholds (usefulness {scores['usefulness']}, modelability "
                            f"{scores['modelability']})")
        else:
            topic.kept = True
    kept = [t for t in candidates if t.kept]
    seen: dict[str, Topic] = {}
    for topic in kept:  # exact duplicates of the summary
        name = topic.inferred["environment_summary"].strip().lower()
        if name in seen:
            topic.kept, topic.reason = False, f"duplicate of {seen[name].inferred['environment_summary']!r}"
        else:
            seen[name] = topic
    if settings.embed_model:
        await dedupe_by_embeddings(llm, [t for t in kept if t.kept], settings)
    return list(topics)


async def dedupe_by_embeddings(llm: LLM, topics: list[Topic], settings: SkelSettings) -> None:
    """Greedy: keep a topic unless it is too similar to one already kept."""
    texts = [f"{t.inferred['environment_summary']}: {t.inferred['environment_introduction']}" for t in topics]
    if len(texts) < 2:
        return
    response = await llm.client.embeddings.create(model=settings.embed_model, input=texts)
    vectors = [item.embedding for item in response.data]
    kept: list[int] = []
    for i, vector in enumerate(vectors):
        twin = next((j for j in kept if cosine(vector, vectors[j]) >= settings.duplicate_similarity), None)
        if twin is None:
            kept.append(i)
        else:
            topics[i].kept = False
            topics[i].reason = f"near-duplicate of {topics[twin].inferred['environment_summary']!r}"


def cosine(a: list[float], b: list[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=False)) / norm if norm else 0.0


# ---------------------------------------------------------------- stage 2: code


def method_problem(code: str, name: str) -> str | None:
    try:
        tree = ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError, RecursionError) as exc:
        return f"does not parse: {getattr(exc, 'msg', exc)}"
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    if len(functions) != 1 or functions[0].name != name:
        return f"must define exactly one method named {name}"
    if not functions[0].args.args or functions[0].args.args[0].arg != "self":
        return "its first parameter must be self"
    return None


def assemble(class_code: str, class_name: str, methods: dict[str, str]) -> str:
    """The class definition with the methods added to its body; must parse and define the class."""
    body = "\n\n".join(textwrap.indent(textwrap.dedent(code).strip(), "    ") for code in methods.values())
    module = f"{class_code.rstrip()}\n\n{body}\n"
    tree = parse_module(module)
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    if not classes or classes[-1].name != class_name:
        raise SchemaError(f"the class {class_name!r} must be the last definition of the class code")
    return module


async def stage_code(llm: LLM, topic: Topic) -> dict[str, Any]:
    """The environment's code artifacts, or a record of why it was dropped."""
    info = topic.inferred
    try:
        space = await llm.structured(StateSpace, "state_space", **info)
        state = json.dumps([e.model_dump() for e in space.state_space_definition])
        definition = await llm.structured(ClassDefinition, "class_definition", state_space=state, **info)
        try:
            parse_module(definition.code)
        except SchemaError as exc:
            return {"ok": False, "reason": f"class definition {exc}"}
        rules = json.dumps(space.constraints_rules)
        ops = await llm.structured(Operations, "operation_list", class_code=definition.code, rules=rules, **info)
        methods: dict[str, str] = {}
        dropped: dict[str, str] = {}
        for op in ops.operation_list:
            code = (await llm.structured(MethodCode, "method", class_code=definition.code, rules=rules,
                                         **op.model_dump())).code
            problem = method_problem(code, op.operation_name)
            if problem:
                dropped[op.operation_name] = problem
            else:
                methods[op.operation_name] = textwrap.dedent(code).strip()
        if len(methods) < 2:
            return {"ok": False, "reason": f"fewer than two usable methods ({dropped})", "dropped": dropped}
        module = assemble(definition.code, definition.env_class_name, methods)
    except (LLMFailure, SchemaError) as exc:
        return {"ok": False, "reason": str(exc), "transient": isinstance(exc, LLMUnavailable)}
    return {"ok": True, "state_space_definition": [e.model_dump() for e in space.state_space_definition],
            "constraints_rules": space.constraints_rules, "env_class_name": definition.env_class_name,
            "class_code": definition.code, "operations": [o.model_dump() for o in ops.operation_list
                                                          if o.operation_name in methods],
            "methods": methods, "dropped_methods": dropped, "env_class_code": module}


# ---------------------------------------------------------------- stage 3: quality


def contract_problem(result: Any) -> str | None:
    """EnvScaler's return contract: {"success": bool, "data" | "message" | "error": ...}."""
    if not isinstance(result, dict) or not isinstance(result.get("success"), bool):
        return 'the return value is not {"success": bool, ...}'
    if result["success"] and not ({"data", "message"} & result.keys()):
        return 'a success carries neither "data" nor "message"'
    if not result["success"] and "error" not in result:
        return 'a failure carries no "error"'
    return None


def spec_from_code(env_id: str, topic: Topic, code: dict[str, Any], module: str) -> EnvSpec:
    operations = [Operation(operation_name=o["operation_name"], operation_description=o["operation_description"],
                            operation_type=o["operation_type"], code=code["methods"][o["operation_name"]])
                  for o in code["operations"] if o["operation_name"] in code["methods"]]
    return EnvSpec(env_id=env_id, environment_summary=topic.inferred["environment_summary"],
                   environment_introduction=topic.inferred["environment_introduction"],
                   state_space_definition=code["state_space_definition"],
                   constraints_rules=code["constraints_rules"], operation_list=operations,
                   env_class_name=code["env_class_name"], env_class_code=module,
                   tools=derive_tools(module, code["env_class_name"]))


async def stage_quality(llm: LLM, env_id: str, topic: Topic, code: dict[str, Any],
                        settings: SkelSettings) -> dict[str, Any]:
    """Dual-agent check, every call in the sandbox; returns the verdicts and the final spec (or why not)."""
    spec = spec_from_code(env_id, topic, code, code["env_class_code"])
    try:
        config = (await llm.structured(InitConfig, "initial_config", class_code=code["class_code"],
                                       variation="")).init_config
        return await asyncio.to_thread(_dual_agent_rounds, llm, asyncio.get_running_loop(), spec, topic, code,
                                       config, settings)
    except (LLMFailure, SandboxError) as exc:  # an engine that fails is no verdict on the environment either
        return {"ok": False, "reason": str(exc), "transient": isinstance(exc, LLMUnavailable | SandboxError)}


def _dual_agent_rounds(llm: LLM, loop: asyncio.AbstractEventLoop, spec: EnvSpec, topic: Topic,
                       code: dict[str, Any], config: dict[str, Any], settings: SkelSettings) -> dict[str, Any]:
    def ask(model: type[BaseModel], template: str, **fields: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(llm.structured(model, template, **fields), loop).result()

    verdicts: list[dict[str, Any]] = []
    calls: Counter[str] = Counter()
    broken_tools: Counter[str] = Counter()
    with open_sandbox(spec, {}, settings.sandbox) as (client, sandbox):
        try:
            client.reset(init_config=config)
        except Exception as exc:
            return {"ok": False, "reason": f"the initial config does not instantiate: {exc}", "sandbox": sandbox}
        tools = [t["function"] for t in client.tools]
        for round_number in range(settings.rounds):
            case = "positive" if round_number % 2 == 0 else "negative"
            before = client.state().state
            choice = ask(CallerChoice, "caller_agent", case=case, calls_so_far=json.dumps(dict(calls)),
                         tools=json.dumps(tools)[:6000], state=json.dumps(before)[:4000])
            calls[choice.tool] += 1
            result = client.call(choice.tool, choice.arguments, timeout=settings.tool_timeout)
            record = {"round": round_number, "tool": choice.tool, "arguments": choice.arguments, "case": choice.case}
            if result.episode_broken:
                broken_tools[choice.tool] += 1
                verdicts.append({**record, "verdict": "Fail", "reason": f"{result.error_kind}: {result.error_message}"})
                client.reset(init_config=config)
                continue
            problem = result.error_message if result.error_kind else contract_problem(result.result)
            if result.error_kind == "UNKNOWN_TOOL":
                verdicts.append({**record, "verdict": "Warning", "reason": "the caller chose no real tool"})
                continue
            if problem:
                verdicts.append({**record, "verdict": "Fail", "reason": problem})
                continue
            after = client.state().state
            verdict = ask(Verdict, "checker_agent", case=choice.case,
                          source=code["methods"].get(choice.tool, "")[:4000], arguments=json.dumps(choice.arguments),
                          before=json.dumps(before)[:3000], after=json.dumps(after)[:3000],
                          result=json.dumps(result.result)[:2000])
            verdicts.append({**record, "verdict": verdict.verdict, "reason": verdict.reason})
    tally = Counter(v["verdict"] for v in verdicts)
    score = (tally["Pass"] + tally["Warning"]) / max(1, len(verdicts))
    # A tool that never ran without killing its worker cannot be served: drop it (EnvScaler kept such tools).
    unusable = sorted(t for t, n in broken_tools.items() if n == calls[t])
    return {"ok": score >= settings.pass_threshold, "score": round(score, 4), "tally": dict(tally),
            "verdicts": verdicts, "dropped_tools": unusable, "sandbox": sandbox, "init_config": config,
            "reason": "" if score >= settings.pass_threshold else
            f"(pass + warning) / total = {score:.2f} < {settings.pass_threshold}"}


def final_spec(env_id: str, topic: Topic, code: dict[str, Any], quality: dict[str, Any]) -> EnvSpec:
    methods = {k: v for k, v in code["methods"].items() if k not in quality.get("dropped_tools", [])}
    module = assemble(code["class_code"], code["env_class_name"], methods)
    return spec_from_code(env_id, topic, {**code, "methods": methods}, module)


# ---------------------------------------------------------------- the whole builder


async def build_skeletons(llm: LLM, tasks: list[str], out: Path, settings: SkelSettings,
                          progress: Any = lambda *_: None) -> dict[str, Any]:
    """Run the three stages, resuming from the artifacts in `out`; writes env_metadata.json."""
    topics_path = out / "stage1_topics.json"
    saved = load_json(topics_path)
    # a stage-1 file with a transient failure is run again: its answered requests come from the cache
    if saved is None or any(t.get("transient") for t in saved):
        topics = await stage_topics(llm, tasks, settings)
        save_json(topics_path, [t.__dict__ for t in topics])
    else:
        topics = [Topic(**t) for t in saved]
    progress("topics", len(topics))
    kept = [t for t in topics if t.kept]
    envs: dict[str, Any] = {}
    report: dict[str, Any] = {"topics": len(topics), "kept_topics": len(kept), "environments": {}}
    for topic in topics:  # stage-1 rejections, with their reasons
        if not topic.kept:
            report["environments"][f"task: {topic.task[:60]}"] = {
                "summary": topic.inferred.get("environment_summary", ""), "env_id": "", "stage": 1,
                "status": "unavailable" if topic.transient else "rejected", "reason": topic.reason}
    prefix = settings.id_prefix or id_prefix(out)
    for number, topic in enumerate(kept, start=1):
        name = slug(topic.inferred["environment_summary"])
        code_path = out / "stage2" / f"{name}.json"
        code = load_json(code_path)
        retry = settings.retry_failed and code is not None and not code["ok"]
        if code is None or code.get("transient") or retry:
            token = fresh.set(retry)
            try:
                code = await stage_code(llm, topic)
            finally:
                fresh.reset(token)
            save_json(code_path, code)
        env_id = f"{prefix}{number}"
        entry: dict[str, Any] = {"summary": topic.inferred["environment_summary"], "env_id": env_id}
        if not code["ok"]:
            report["environments"][name] = {**entry, "status": "unavailable" if code.get("transient") else
                                            "rejected", "stage": 2, "reason": code["reason"]}
            progress("code", 1)
            continue
        quality_path = out / "stage3" / f"{name}.json"
        quality = load_json(quality_path)
        retry = settings.retry_failed and quality is not None and not quality["ok"]
        if quality is None or quality.get("transient") or retry:
            token = fresh.set(retry)
            try:
                quality = await stage_quality(llm, env_id, topic, code, settings)
            finally:
                fresh.reset(token)
            save_json(quality_path, quality)
        progress("quality", 1)
        if not quality["ok"]:
            report["environments"][name] = {**entry, "status": "unavailable" if quality.get("transient") else
                                            "rejected", "stage": 3, "reason": quality["reason"]}
            continue
        spec = final_spec(env_id, topic, code, quality)
        envs[env_id] = spec.model_dump(mode="json")
        report["environments"][name] = {**entry, "status": "kept", "score": quality["score"],
                                        "tools": len(spec.tools or []), "dropped_tools": quality["dropped_tools"],
                                        "dropped_methods": code.get("dropped_methods", {}),
                                        "spec_hash": spec.spec_hash,
                                        "code_sha256": hashlib.sha256(spec.env_class_code.encode()).hexdigest()}
    save_json(out / "env_metadata.json", envs)
    return report
