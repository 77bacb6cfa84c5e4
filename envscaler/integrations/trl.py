"""TRL's GRPOTrainer, its environments hook (`environment_factory`), backed by a pool.

    from envscaler.integrations.trl import PoolEnvironment, sandboxed_checks

    with PoolEnvironment("tcp:127.0.0.1:50051", "env_4") as env:
        trainer = GRPOTrainer(model=model, args=GRPOConfig(...), processing_class=tokenizer,
                              train_dataset=env.dataset(), environment_factory=env, reward_funcs=sandboxed_checks)
        trainer.train()

TRL makes one environment instance per rollout (`env()`), calls its `reset(**row)` before each generation and its
public methods as the model's tools. Here `reset(scenario=...)` leases a container from the pool and starts the
scenario there (its task is what the model reads), each tool method is the environment's tool, called through the
lease, and `sandboxed_checks` scores each rollout with the scenario's checks, run in the sandbox (Evaluate), then
gives the lease back. The environment's code never runs in the trainer: it runs in its container.
"""

from __future__ import annotations

import inspect
import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Union

from envscaler.client.errors import EnvClientError
from envscaler.client.models import EnvInfo, Evaluation, ToolResult
from envscaler.client.pool_client import Pool, PoolSession
from envscaler.integrations.common import IntegrationError, describe, give_back, observation, reward

# TRL exposes every public method but these as a tool (TRL >= 1.0 reads get_reward as the environment's reward).
RESERVED = frozenset({"reset", "get_reward"})
_SCALARS: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool, "null": type(None)}


def annotation(schema: dict[str, Any]) -> Any:
    """A Python type hint that TRL (through transformers' get_json_schema) renders back as this JSON schema; nested
    objects become `dict` (the prompt loses their properties, the sandbox still checks them)."""
    if isinstance(schema.get("enum"), list) and schema["enum"] and \
            all(isinstance(v, str | int | float | bool) for v in schema["enum"]):
        return Literal.__getitem__(tuple(schema["enum"]))  # Literal["a", "b"] from values known at run time
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(alternatives, list) and alternatives:
        return Union[tuple(annotation(a) for a in alternatives)]  # noqa: UP007  (built from a tuple)
    kind = schema.get("type")
    if isinstance(kind, list) and kind:
        return Union[tuple(annotation({**schema, "type": k}) for k in kind)]  # noqa: UP007
    if kind == "array":
        items = schema.get("items")
        return list.__class_getitem__(annotation(items)) if isinstance(items, dict) and items else list
    if kind == "object":
        return dict
    return _SCALARS.get(kind, Any) if isinstance(kind, str) else Any


SECTION = re.compile(r"\b(Args|Returns|Raises):")


def one_line(text: str) -> str:
    """A description as one docstring line; a section word with its colon would end the part transformers reads
    (its Google-docstring parser), so it loses the colon's adjacency."""
    return SECTION.sub(r"\1 :", " ".join(text.split()))


def tool_method(env_id: str, tool: dict[str, Any]) -> Callable[..., str]:
    """The method TRL shows the model and calls for one of the environment's tools (OpenAI format)."""
    function = tool.get("function", {})
    name = function.get("name", "")
    where = f"{env_id}: tool {name!r}"
    if not name.isidentifier() or name.startswith("_") or name in RESERVED:
        raise IntegrationError(f"{where}: TRL cannot expose a tool of this name (a public Python method name, "
                               f"not {', '.join(sorted(RESERVED))}, is needed)")
    parameters = function.get("parameters") or {}
    properties: dict[str, Any] = parameters.get("properties") or {}
    required = set(parameters.get("required") or [])
    signature = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {"return": str}
    args_doc = []
    for arg, schema in properties.items():
        if not arg.isidentifier() or keyword.iskeyword(arg) or arg == "self":
            raise IntegrationError(f"{where}: argument {arg!r} is not a Python identifier, which TRL's tool "
                                   "methods need")
        hint = annotation(schema if isinstance(schema, dict) else {})
        annotations[arg] = hint
        signature.append(inspect.Parameter(arg, inspect.Parameter.KEYWORD_ONLY, annotation=hint,
                                           default=inspect.Parameter.empty if arg in required else None))
        described = one_line(str(schema.get("description", ""))) if isinstance(schema, dict) else ""
        args_doc.append(f"    {arg}: {described or arg}")

    def method(self: PoolToolEnv, **arguments: Any) -> str:
        return self._call(name, arguments)

    method.__name__ = method.__qualname__ = name
    method.__annotations__ = annotations
    method.__signature__ = inspect.Signature(signature, return_annotation=str)  # type: ignore[attr-defined]
    description = one_line(str(function.get("description", ""))) or name
    method.__doc__ = description + ("\n\nArgs:\n" + "\n".join(args_doc) if args_doc else "")
    return method


@dataclass(frozen=True)
class Call:
    name: str
    arguments: dict[str, Any]
    result: ToolResult


class PoolToolEnv:
    """One rollout's environment: a lease from `reset` to its scoring. Subclassed per environment (its tools are
    methods); make instances with PoolEnvironment. Public attributes (not methods, which would be tools) tell what
    happened: `calls`, `evaluation`, `broken`, `lost`."""

    _owner: PoolEnvironment

    def __init__(self) -> None:
        self._session: PoolSession | None = None
        self.scenario_id = ""
        self.calls: list[Call] = []
        self.evaluation: Evaluation | None = None
        self.broken = ""  # the sandbox's message when the environment's own code ended the episode
        self.lost = ""  # why the lease was lost mid-episode (no reward then)

    def reset(self, **row: Any) -> str:
        """Start the row's scenario in a fresh lease; the task is what the model reads."""
        self._release()
        scenario = row.get("scenario")
        if not isinstance(scenario, str) or not scenario:
            raise IntegrationError(f"{self._owner.env_id}: a training row needs a 'scenario' column (a scenario "
                                   f"id), got {scenario!r}; PoolEnvironment.dataset() makes such rows")
        self.scenario_id, self.calls, self.evaluation, self.broken, self.lost = scenario, [], None, "", ""
        owner = self._owner
        try:
            self._session = owner.pool.acquire(owner.env_id, scenario, wait=owner.wait, ttl=owner.ttl)
        except EnvClientError as exc:
            raise IntegrationError(f"{owner.env_id}/{scenario}: cannot lease: {exc}") from None
        return self._session.initial.task if self._session.initial is not None else ""

    def _call(self, name: str, arguments: dict[str, Any]) -> str:
        """One tool call in the sandbox. A raised error is what TRL shows the model as the tool's answer."""
        if self.broken or self.lost:
            raise RuntimeError(f"the episode is over: {self.broken or self.lost}")
        if self._session is None:
            raise RuntimeError("no episode: TRL calls reset() before the tools")
        try:
            result = self._session.call(name, arguments)
        except EnvClientError as exc:
            self.lost = str(exc)
            raise RuntimeError(f"the environment is unreachable: {exc}") from None
        self.calls.append(Call(name, arguments, result))
        if result.episode_broken:
            self.broken = result.error_message or "the environment's code ended the episode"
        return observation(result, self._owner.max_observation_chars)

    def _score(self) -> float | None:
        """The scenario's checks, run in the sandbox, on this rollout's final state; None when the lease was lost
        (TRL then leaves this reward out rather than count a 0 the model did not earn)."""
        if self._session is None:
            return None
        try:
            if not self.broken and not self.lost:
                self.evaluation = self._session.evaluate()
        except EnvClientError as exc:
            self.lost = str(exc)
        finally:
            self._release()
        return None if self.lost else reward(self.evaluation, self.broken)

    def _release(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            give_back(session)


def sandboxed_checks(environments: list[PoolToolEnv], **_: Any) -> list[float | None]:
    """TRL reward function: each rollout's reward is its scenario's checks, evaluated in its container."""
    return [environment._score() for environment in environments]


class PoolEnvironment:
    """The `environment_factory` for one pooled environment: calling it makes one rollout's environment.
    `pool` is an address or a Pool (then left open at close)."""

    def __init__(self, pool: str | Pool, env_id: str, *, wait: float = 120.0, ttl: float | None = None,
                 max_observation_chars: int = 8000) -> None:
        self._own_pool = isinstance(pool, str)
        self.pool = Pool(pool) if isinstance(pool, str) else pool
        self.env_id, self.wait, self.ttl = env_id, wait, ttl
        self.max_observation_chars = max_observation_chars
        described = describe(self.pool, env_id, wait=wait)
        self.info: EnvInfo = described.info
        self.system_prompt = described.system_prompt
        methods = {tool["function"]["name"]: tool_method(env_id, tool) for tool in self.info.tools}
        self.environment_class: type[PoolToolEnv] = type(
            f"{self.info.env_class_name or env_id}PoolEnv", (PoolToolEnv,), {"_owner": self, **methods})
        self._made: list[PoolToolEnv] = []

    def __call__(self) -> PoolToolEnv:
        environment = self.environment_class()
        self._made.append(environment)
        return environment

    def dataset(self, scenarios: list[str] | None = None, repeat: int = 1) -> Any:
        """A datasets.Dataset of training rows: the environment's system prompt, and a user turn the scenario's
        task fills in (reset returns it); `repeat` times each of `scenarios` (default: all)."""
        from datasets import Dataset

        chosen = self.info.scenario_ids if scenarios is None else scenarios
        unknown = [s for s in chosen if s not in self.info.scenario_ids]
        if unknown:
            raise IntegrationError(f"{self.env_id}: no scenario {', '.join(map(repr, unknown))} "
                                   f"(it has {', '.join(self.info.scenario_ids)})")
        prompt = [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": ""}]
        return Dataset.from_list([{"prompt": prompt, "scenario": s} for s in chosen for _ in range(repeat)])

    def close(self) -> None:
        """Give back every lease still held (a rollout never scored) and, if this made it, close the pool."""
        for environment in self._made:
            environment._release()
        if self._own_pool:
            self.pool.close()

    def __enter__(self) -> PoolEnvironment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
