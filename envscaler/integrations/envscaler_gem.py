"""EnvScaler's own RL environment classes, with the environment in the pool's sandboxes.

    from envscaler.integrations.envscaler_gem import EnvScalerNonConvRLEnv

    env = EnvScalerNonConvRLEnv(mode="train", env_items_path="191_env_metadata.json",
                                task_items_path="rl_scenario_metadata.json", pool="tcp:127.0.0.1:50051")
    observation, info = env.reset(seed=0)
    observation, reward, terminated, truncated, info = env.step('<tool_call>{"name": ...}</tool_call>')

Drop-ins for `EnvScalerNonConvRLEnv` and `EnvScalerConvRLEnv` of EnvScaler (RUC-NLPIR/EnvScaler, commit 87e66739):
the same constructor arguments plus `pool`, and the same return values from `reset(seed, task_index)` and
`step(action)`. `flavor` picks which of EnvScaler's two copies to match: "roll" (default; the GEM classes under
`rl/roll/.../envscaler_env/` that ROLL trains with) or "interact_with_env" (`interact_with_env/envscaler_env/`).
Each episode holds one lease; the environment's code and the checks run there, never in this process. Parsing
replies, the task data and the user simulator's LLM calls stay here, as in EnvScaler. docs/envscaler_gem.md says
where the results can differ, and why.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import json
import os
import random
import re
import threading
import time
import traceback
import weakref
from copy import deepcopy
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from envscaler.client.errors import EnvClientError
from envscaler.client.models import EnvInfo
from envscaler.client.pool_client import Pool, PoolSession
from envscaler.integrations import envscaler_compat as compat
from envscaler.spec.loader import bundled_envs_path, bundled_scenarios_path
from envscaler.spec.models import EnvSpec

try:  # GEM (PyPI gem-llm): ROLL's environment interface. Without it the classes stand alone.
    import gem as _gem

    _Base: Any = _gem.Env
except ImportError:  # pragma: no cover - exercised where gem-llm is absent
    _gem = None

    class _Base:  # type: ignore[no-redef]
        """gem.Env's part the classes use: reset seeds Python's (and numpy's) global generators."""

        def reset(self, seed: int | None = None) -> None:
            if seed is not None:
                random.seed(seed)
                with contextlib.suppress(ImportError):
                    import numpy

                    numpy.random.seed(seed)


Flavor = Literal["roll", "interact_with_env"]
FLAVORS: tuple[Flavor, ...] = ("roll", "interact_with_env")
POOL_ENV = "ENVSCALER_POOL"
GREETING = "[Agent] Hi! How can I help you today?"
STOP = "###STOP###"
_USER_REPLY = re.compile(r"# Thought:\s*(.*?)\s*# Reply:\s*(.*)", re.DOTALL)


# ---------------------------------------------------------------- errors (infrastructure, never an episode's result)


class EnvScalerGemError(RuntimeError):
    """The drop-in could not do what EnvScaler's class would have done in-process."""


class PoolUnavailable(EnvScalerGemError):
    """The pool refused a request or could not be reached (no lease, a lost lease, a pool gone)."""


class PoolMismatch(EnvScalerGemError):
    """The pool serves something other than the files say: other code, no such scenario, another format."""


class ResetFailed(EnvScalerGemError):
    """The environment's module did not load, or the instance did not build from init_config, in the sandbox."""


class UnsendableArguments(EnvScalerGemError, TypeError):
    """An action's arguments hold values JSON cannot carry to the sandbox (EnvScaler passes Python objects)."""


class EmptyChecklist(EnvScalerGemError, ZeroDivisionError):
    """EnvScaler's reward divides by the number of checks; a task without any raises where it does."""


class _SandboxFailure(Exception):
    """A tool call that EnvScaler would have seen raise: `line` is its traceback's last line."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


def _user(content: Any) -> dict[str, Any]:
    return {"type": "user", "content": content}


# ---------------------------------------------------------------- the user simulator (an LLM, called from here)


def envscaler_user_prompt() -> str | None:
    """EnvScaler's own user-simulator prompt, read (never run) from an installed copy of EnvScaler's classes:
    `envscaler_env` (interact_with_env/ on sys.path) or ROLL's `roll` package; None when neither is there."""
    for top, relative in (("envscaler_env", "utils/user_agent.py"),
                          ("roll", "pipeline/agentic/env/envscaler_env/utils/user_agent.py")):
        try:
            spec = importlib.util.find_spec(top)  # a top-level name is found without running its package
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            path = Path(location) / relative
            if not path.is_file():
                continue
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (OSError, SyntaxError, ValueError):
                continue
            for node in tree.body:
                if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "user_system_prompt"
                                                        for t in node.targets) \
                        and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    return node.value.value
    return None


def project_user_prompt() -> str:
    """This project's user-simulator prompt (envscaler/rollout/prompts/user_simulator.txt, as `rollout` uses it)."""
    return (resources.files("envscaler.rollout") / "prompts" / "user_simulator.txt").read_text(encoding="utf-8")


def _load_dotenv() -> None:
    """EnvScaler reads USER_OPENAI_API_KEY / USER_OPENAI_BASE_URL from a .env file when python-dotenv is there."""
    with contextlib.suppress(ImportError):
        import dotenv

        dotenv.load_dotenv(dotenv.find_dotenv(usecwd=True))


def user_llm_reply(model: str, messages: list[dict[str, Any]], provider: str, api_key: str | None,
                   base_url: str | None, flavor: Flavor) -> Any:
    """One reply of the user model, as EnvScaler asks for it: a new OpenAI client per request, temperature 0.7,
    up to 10 tries with a pause of 0, 10, 20 ... s between them, and '' when every try failed."""
    if provider != "openai":
        raise ValueError(f"Invalid provider: {provider}." if flavor == "interact_with_env"
                         else f"Unknown provider {provider}")
    from openai import OpenAI

    _load_dotenv()
    client = OpenAI(api_key=api_key or os.getenv("USER_OPENAI_API_KEY"),
                    base_url=base_url or os.getenv("USER_OPENAI_BASE_URL"))
    for retries in range(10):
        try:
            response = client.chat.completions.create(model=model, messages=messages, stop=None,  # type: ignore
                                                      temperature=0.7, max_tokens=None)
            return response.choices[0].message.content
        except KeyboardInterrupt:
            break
        except Exception:
            time.sleep(retries * 10)
    return ""


def parse_user_reply(text: Any) -> tuple[bool, str]:
    """The user's words from '# Thought: ... # Reply: ...'; '###STOP###' alone once the user says it."""
    if STOP in text:
        return True, STOP
    match = _USER_REPLY.search(text)
    return (True, match.group(2).strip()) if match else (False, "")


class UserSimulator:
    """EnvScaler's UserAgent: in `messages`, role "user" is the agent's turn and "assistant" the user's."""

    def __init__(self, system_prompt: str, model: str, provider: str, api_key: str | None = None,
                 base_url: str | None = None, flavor: Flavor = "roll") -> None:
        self.system_prompt, self.model, self.provider = system_prompt, model, provider
        self.api_key, self.base_url, self.flavor = api_key, base_url, flavor
        self.messages: list[dict[str, Any]] | None = None
        self.conversations: list[dict[str, str]] | None = None

    def get_init_reply(self, task: str) -> str:
        self.conversations = []
        self.messages = [{"role": "system", "content": self.system_prompt.format(task=task)},
                         {"role": "user", "content": GREETING}]
        raw, content = self._infer()
        self.messages.append({"role": "assistant", "content": raw})
        self.conversations.append({"user": f"{content}"})
        return f"{content}"

    def user_step(self, agent_response: Any) -> str:
        assert self.messages is not None and self.conversations is not None, "get_init_reply comes first"
        turn = f"[Agent] {agent_response}"
        self.messages.append({"role": "user", "content": turn})
        self.conversations.append({"agent": turn})
        raw, content = self._infer()
        self.messages.append({"role": "assistant", "content": raw})
        self.conversations.append({"user": f"{content}"})
        return f"{content}"

    def _infer(self) -> tuple[Any, str]:
        raw: Any = ""
        content = ""
        for _ in range(5):  # a reply out of the format is asked for again, 5 times in all
            raw = user_llm_reply(self.model, self.messages or [], self.provider, self.api_key, self.base_url,
                                 self.flavor)
            ok, content = parse_user_reply(raw)
            if ok:
                break
        return raw, content

    def get_messages(self) -> list[dict[str, Any]]:
        return deepcopy(self.messages or [])


# ---------------------------------------------------------------- one episode: a lease and what it serves


class _Episode:
    """A leased container reset to one task, and what the drop-in knows of what it serves. A daemon thread renews
    the lease every third of its TTL while the episode lives (EnvScaler's episodes never expire, however slow the
    trainer); the lease goes back on release, or when the episode is garbage-collected unreleased."""

    def __init__(self, session: PoolSession, info: EnvInfo, model: compat.ClassModel, client_checks: bool,
                 ttl: float) -> None:
        self.session, self.info, self.model, self.client_checks = session, info, model, client_checks
        self.tools = {t["function"]["name"] for t in info.tools}
        self.broken = False
        self.lost = ""  # why the lease was lost, once renewing it failed
        stop = threading.Event()
        self.release = weakref.finalize(self, _release, session, stop)
        threading.Thread(target=_keep_alive, args=(weakref.ref(self), stop, max(ttl / 3, 0.5)), daemon=True,
                         name=f"envscaler-gem-lease-{session.lease_id[:8]}").start()

    def use(self) -> PoolSession:
        if self.lost:
            raise PoolUnavailable(f"the episode's lease is lost: {self.lost}")
        return self.session

    def state(self) -> dict[str, Any] | None:
        try:
            return self.use().state().state
        except EnvClientError:
            return None  # a broken episode has no state to read; the class's syntax still speaks


def _keep_alive(ref: weakref.ReferenceType[_Episode], stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        episode = ref()
        if episode is None:
            return
        try:
            episode.session.renew()
        except EnvClientError as exc:
            episode.lost = str(exc)
            return
        del episode  # hold no reference between renewals: an unreleased episode can still be collected


def _release(session: PoolSession, stop: threading.Event) -> None:
    stop.set()
    with contextlib.suppress(EnvClientError):  # an expired or lost lease is already back in the pool
        session.release()


def _sandbox_seed(seed: Any) -> int:
    """The proto's int64 seed for the sandbox's own random (0: unseeded); EnvScaler's seed may be any hashable."""
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed if -(2 ** 63) <= seed < 2 ** 63 else seed % (2 ** 63)
    return 0


def _spec_hash(env_id: str, env_item: Any) -> str:
    try:
        return EnvSpec.model_validate({"env_id": env_id, **env_item}).spec_hash
    except (ValidationError, TypeError) as exc:
        raise PoolMismatch(f"env_items[{env_id!r}] is not an EnvScaler environment record: "
                           f"{str(exc).splitlines()[0]}") from None


# ---------------------------------------------------------------- the classes


class _SandboxedEnvScalerEnv(_Base):  # type: ignore[misc]
    """EnvScalerBaseEnv's reset/step workflow, with the instance in a leased sandbox."""

    env_name = ""

    def __init__(self, mode: str, env_items_path: str | os.PathLike[str] | None = None,
                 task_items_path: str | os.PathLike[str] | None = None, *, pool: str | Pool | None = None,
                 flavor: Flavor = "roll", lease_ttl: float = 600.0, acquire_wait: float = 60.0,
                 timeout: float = 60.0) -> None:
        super().__init__()
        if flavor not in FLAVORS:
            raise ValueError(f"flavor {flavor!r}: expected one of {', '.join(FLAVORS)}")
        self.mode, self.flavor = mode, flavor
        self.lease_ttl, self.acquire_wait = lease_ttl, acquire_wait
        if task_items_path is not None:
            with open(task_items_path, encoding="utf-8") as handle:
                self.task_items = json.load(handle)
        else:
            self.task_items = self.load_task_items()
        if env_items_path is not None:
            with open(env_items_path, encoding="utf-8") as handle:
                self.env_items = json.load(handle)
        else:
            self.env_items = self.load_env_items()
        address = pool if pool is not None else os.environ.get(POOL_ENV)
        if address is None:
            raise ValueError(f"pool: give the pool's address (pool='tcp:127.0.0.1:50051') or set {POOL_ENV}")
        self._own_pool = not isinstance(address, Pool)
        self.pool: Pool = Pool(address, timeout=timeout) if isinstance(address, str) else address
        self._episode: _Episode | None = None
        self.reset_attributes()

    # ---- data: EnvScaler ships its own files; the drop-in's defaults are the bundled examples

    def load_env_items(self) -> Any:
        with open(bundled_envs_path(), encoding="utf-8") as handle:
            return json.load(handle)

    def load_task_items(self) -> Any:
        accepted = ("train",) if self.flavor == "roll" else ("eval", "train")
        if self.mode not in accepted:
            raise ValueError("mode must be train" if self.flavor == "roll" else "mode must be eval or train")
        with open(bundled_scenarios_path(), encoding="utf-8") as handle:
            return json.load(handle)

    def reset_attributes(self) -> None:
        self.current_step = 0
        self.env_item: Any = None
        self.system_prompt = None
        self.init_config: Any = None
        self.task_item: Any = None
        self.checklist_with_func: Any = None

    # ---- reset

    def reset(self, seed: int | None = None, task_index: int | None = None) -> tuple[Any, dict[str, Any]]:
        if self.flavor == "roll":
            _Base.reset(self, seed)
        self._end_episode()
        self.reset_attributes()
        if seed is not None:
            random.seed(seed)
        if task_index is None:
            if self.flavor == "roll" and len(self.task_items) == 0:
                raise ValueError(f"No tasks available for mode '{self.mode}'")
            task_index = random.randrange(0, len(self.task_items))
        elif self.flavor == "roll" and (task_index < 0 or task_index >= len(self.task_items)):
            raise ValueError(f"Invalid task_index {task_index}, expected range [0, {len(self.task_items)})")
        self.task_item = self.task_items[task_index]
        self.checklist_with_func = self.task_item["checklist_with_func"] if self.flavor == "roll" \
            else self.task_item.get("checklist_with_func", [])
        self.task_id = self.task_item["task_id"]
        self.env_id = self.task_item["env_id"]
        self.init_config = self.task_item["init_config"]
        self._start_episode(seed)
        self.env_introduction = self.construct_env_introduction(self.env_item)
        self.tools = deepcopy(self.env_item["tools"])
        observation: Any = self.get_initial_observation(self.task_item)
        if self.flavor == "roll":
            observation = _user(observation)
            info = {"env_name": self.env_name, "env_introduction": self.env_introduction, "tools": self.tools,
                    "task": self.task_item}
        else:
            info = {"env_introduction": self.env_introduction, "tools": self.tools, "task": self.task_item}
        return observation, deepcopy(info)

    def _start_episode(self, seed: int | None) -> None:
        """Lease a container of the task's environment, make sure it serves the files' code, and reset it."""
        if self.env_id not in self.env_items:
            raise ValueError(f"Invalid env_id '{self.env_id}', not found in env_items")
        self.env_item = self.env_items[self.env_id]
        code, class_name = self.env_item["env_class_code"], self.task_item["env_class_name"]
        model = compat.class_model(code, class_name)
        try:
            session = self.pool.acquire(self.env_id, ttl=self.lease_ttl, wait=self.acquire_wait, direct=True)
        except EnvClientError as exc:
            raise PoolUnavailable(f"no lease for {self.env_id}: {exc}") from None
        try:
            info = session.describe()
            self._check_served(info, model, class_name)
            client_checks = bool(info.isolation.get("client_checks"))
            sandbox_seed = _sandbox_seed(seed)
            if client_checks:  # the task's own init_config and checks, whatever scenarios the pool holds
                session.reset(init_config=self.init_config, seed=sandbox_seed)
            else:
                if str(self.task_id) not in info.scenario_ids:
                    raise PoolMismatch(
                        f"the pool serves no scenario {self.task_id!r} of {self.env_id} and takes no checks from "
                        "clients: start it with these task items as its --scenarios, or with --allow-client-checks")
                started = session.reset(str(self.task_id), seed=sandbox_seed)
                if started.task != self.task_item.get("task"):
                    raise PoolMismatch(f"the pool's scenario {self.task_id!r} of {self.env_id} has another task "
                                       "text than task_items: start the pool with the same scenario file")
        except EnvClientError as exc:
            with contextlib.suppress(EnvClientError):
                session.release()
            if exc.method == "Reset" and exc.code in ("FAILED_PRECONDITION", "DEADLINE_EXCEEDED"):
                raise ResetFailed(f"{self.env_id}, task {self.task_id}: {exc.details}") from None
            raise PoolUnavailable(f"{self.env_id}, task {self.task_id}: {exc}") from None
        except BaseException:
            with contextlib.suppress(EnvClientError):
                session.release()
            raise
        self._episode = _Episode(session, info, model, client_checks, self.lease_ttl)

    def _check_served(self, info: EnvInfo, model: compat.ClassModel, class_name: str) -> None:
        if info.env_class_name != class_name:
            if not model.defined:
                raise ValueError(f"Class '{class_name}' not found in provided env_class_code.")
            raise PoolMismatch(f"the pool serves class {info.env_class_name!r} for {self.env_id}; the task names "
                               f"{class_name!r}")
        expected = _spec_hash(self.env_id, self.env_item)
        if info.spec_hash != expected:
            raise PoolMismatch(f"the pool serves other code for {self.env_id} (spec {info.spec_hash[:12]}, "
                               f"env_items has {expected[:12]}): start the pool with the same env metadata")
        if info.observation_format != "repr":
            raise PoolMismatch(f"the pool's {self.env_id} answers tool calls as {info.observation_format!r}; "
                               "EnvScaler's observations are str(result): serve it with --observation repr")

    def _end_episode(self) -> None:
        if self._episode is not None:
            self._episode.release()
            self._episode = None

    def close(self) -> None:
        """Release the episode's lease (and the pool's channel, when the drop-in opened it)."""
        self._end_episode()
        if self._own_pool:
            self.pool.close()

    def __enter__(self) -> _SandboxedEnvScalerEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- step

    def step(self, action: str | dict[str, Any]) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        raw_response = deepcopy(action)
        reward, terminated, truncated, info = 0.0, False, False, {"action": raw_response}
        if isinstance(raw_response, str):
            ok, struct_response = compat.parse_response(raw_response)
            if not ok:
                return self._count(_user(compat.PARSE_RESPONSE_FAILED)), reward, terminated, truncated, info
        else:
            struct_response = raw_response
        ok, parsed = compat.parse_action(struct_response)
        if not ok:
            return self._count(_user(compat.PARSE_ACTION_FAILED)), reward, terminated, truncated, info
        info.update({"action": parsed})
        resolution = self._validate(parsed)
        if resolution is None:
            return self._count(_user(compat.INVALID_ACTION)), reward, terminated, truncated, info
        if self.is_action_terminated(parsed):
            reward = self._reward()
            return self._count(_user(compat.TASK_FINISHED)), reward, True, truncated, info
        name = parsed["name"]
        try:
            if name == compat.CHAT:
                observation = _user(self.user_step(parsed["arguments"]["content"]))
            else:
                observation = self._call_tool(name, parsed["arguments"], resolution)
            if self.is_observation_terminated(parsed, observation):
                terminated = True
                reward = self._reward()
            if self.flavor == "interact_with_env" and (terminated or truncated) and hasattr(self, "user_agent"):
                info.update({"user_messages": self.user_agent.get_messages()})
            return self._count(observation), reward, terminated, truncated, info
        except _SandboxFailure as failure:
            observation = _user(compat.exception_observation(failure.line, name))
        except EmptyChecklist:  # raised inside EnvScaler's try here: its observation, as for any exception
            observation = _user(compat.exception_observation("ZeroDivisionError: division by zero",
                                                             "calculate_reward"))
        except EnvScalerGemError:
            raise  # the pool's trouble: not a result of the episode
        except Exception:  # what EnvScaler's step catches: an exception here ends the episode with reward 0
            observation = _user(compat.EXCEPTION_PREFIX + traceback.format_exc())
        return self._count(observation), 0.0, True, truncated, info

    def _count(self, observation: dict[str, Any]) -> dict[str, Any]:
        if self.flavor == "roll":  # ROLL's copy counts every step; interact_with_env's never does
            self.current_step += 1
        return observation

    def _live(self) -> _Episode:
        if self._episode is None:
            raise EnvScalerGemError("step() before reset(): the episode has no lease")
        return self._episode

    def _validate(self, action: dict[str, Any]) -> compat.Resolution | tuple[Literal["tool", "chat"], str] | None:
        """EnvScaler's check_vaild_action, with hasattr on the instance answered from the tools the sandbox serves,
        the state and the class's syntax; None for an invalid action, else how to carry it out."""
        name = action.get("name")
        if self.flavor == "roll" and not name:
            return None
        if not isinstance(name, str):
            raise TypeError(f"attribute name must be string, not '{type(name).__name__}'")  # hasattr's own words
        episode = self._live()
        how: Any
        if name in episode.tools:
            how = ("tool", name)
        elif name == compat.CHAT:
            how = ("chat", name)
        else:
            how = compat.resolve(name, episode.model, episode.state())
            if how[0] != "uncallable":
                return None  # missing, or a name the sandbox serves no tool by (docs/envscaler_gem.md)
        params = action.get("arguments", {})
        if not isinstance(params, dict) or (name == compat.CHAT and "content" not in params):
            return None
        return how  # type: ignore[no-any-return]

    def _call_tool(self, name: str, arguments: dict[Any, Any], how: Any) -> dict[str, Any]:
        episode = self._live()
        if how[0] == "uncallable":
            raise _SandboxFailure(f"TypeError: '{how[1]}' object is not callable")
        signature = episode.model.methods.get(name)
        if any(not isinstance(k, str) for k in arguments):
            raise _SandboxFailure("TypeError: keywords must be strings")
        try:
            encoded = json.dumps(arguments)
        except (TypeError, ValueError) as exc:
            raise UnsendableArguments(f"arguments of {name!r} cannot be sent to the sandbox as JSON: {exc}") from None
        try:
            result = episode.use().call(name, encoded)
        except EnvClientError as exc:
            if episode.broken:  # the sandbox refuses calls once a worker died: the episode's result, not the pool's
                raise _SandboxFailure(f"EPISODE_BROKEN: {exc.details}") from None
            raise PoolUnavailable(f"calling {name!r} failed: {exc}") from None
        if result.ok:
            return {"type": "tool", "content": result.observation}
        episode.broken = episode.broken or result.episode_broken
        message = result.error_message
        if result.error_kind == "INVALID_ARGUMENTS":
            text = compat.call_error(signature, arguments) if signature else None
            raise _SandboxFailure(f"TypeError: {text or message.split(': ', 1)[-1]}")
        if result.error_kind == "TOOL_EXCEPTION":
            raise _SandboxFailure(message.removeprefix(f"tool {name!r} raised "))
        if result.error_kind == "UNKNOWN_TOOL":  # an attribute of the instance hides the method
            resolved = compat.resolve(name, compat.ClassModel(episode.model.class_name), episode.state())
            if resolved[0] == "uncallable":
                raise _SandboxFailure(f"TypeError: '{resolved[1]}' object is not callable")
        raise _SandboxFailure(f"{result.error_kind}: {message}")

    def _reward(self) -> float:
        """EnvScaler's calculate_reward: the mean of the check results (a check that raised, returned a non-bool or
        did not compile counts 0), rounded to 4 places; the checks run in the episode's sandbox."""
        checks = self.checklist_with_func
        sources = [item["check_func"] for item in checks]
        if not checks:
            raise EmptyChecklist(f"division by zero: task {self.task_id!r} of {self.env_id} has no checks, and "
                                 "EnvScaler's reward divides by their number")
        episode = self._live()
        try:
            if episode.client_checks:
                sent = [(i, str(item.get("check_item", "")) if isinstance(item, dict) else "", source)
                        for i, (item, source) in enumerate(zip(checks, sources, strict=True))
                        if isinstance(source, str)]
                evaluation = episode.use().evaluate(checks=[(item, source) for _, item, source in sent])
                passed = sum(c.outcome == "PASS" for c in evaluation.checks)
            else:
                evaluation = episode.use().evaluate()
                if evaluation.total != len(checks):
                    raise PoolMismatch(f"the pool's scenario {self.task_id!r} of {self.env_id} has "
                                       f"{evaluation.total} checks; task_items has {len(checks)}")
                passed = evaluation.passed
        except EnvClientError as exc:
            if episode.broken:
                return 0.0  # its worker is gone; EnvScaler had ended this episode with reward 0 already
            raise PoolUnavailable(f"evaluating {self.task_id!r} of {self.env_id} failed: {exc}") from None
        return round(passed / len(checks), 4)

    def construct_env_introduction(self, env_item: dict[str, Any]) -> str:
        rules = "".join("- " + rule + "\n" for rule in env_item.get("constraints_rules", []))
        return (f"# Environment Information\n\n## Brief Introduction:  \n{env_item['environment_introduction']}"
                f"\n\n## Environment Rules / Constraints:  \n{rules}")

    # ---- what the subclasses decide

    def get_initial_observation(self, task_item: dict[str, Any]) -> str:
        raise NotImplementedError

    def is_action_terminated(self, action: dict[str, Any]) -> bool:
        raise NotImplementedError

    def is_observation_terminated(self, action: dict[str, Any], observation: dict[str, Any]) -> bool:
        raise NotImplementedError

    def user_step(self, content: Any) -> str:
        raise AttributeError("user_agent is not initialized. chat_with_user action requires EnvScalerConvRLEnv.")


class EnvScalerNonConvRLEnv(_SandboxedEnvScalerEnv):
    """The task is the first observation; a reply without a tool call (chat_with_user) ends the episode."""

    env_name = "envscaler_non_conversation_rl"

    def __init__(self, mode: str, env_items_path: str | os.PathLike[str] | None = None,
                 task_items_path: str | os.PathLike[str] | None = None, **options: Any) -> None:
        super().__init__(mode, env_items_path, task_items_path, **options)

    def get_initial_observation(self, task_item: dict[str, Any]) -> str:
        return f"{task_item['task']}"

    def is_action_terminated(self, action: dict[str, Any]) -> bool:
        if action["name"] == compat.CHAT:
            _ = "Task Completed" not in action["arguments"]["content"]  # EnvScaler tests it (and so may raise)
            return True
        return False

    def is_observation_terminated(self, action: dict[str, Any], observation: dict[str, Any]) -> bool:
        return False


class EnvScalerConvRLEnv(_SandboxedEnvScalerEnv):
    """An LLM plays the user: it opens the conversation and ends it with ###STOP###.

    `user_system_prompt` (a str.format template with {task}): by default EnvScaler's own prompt, read from an
    installed copy of EnvScaler's classes when there is one, else this project's user-simulator prompt."""

    env_name = "envscaler_conversation_rl"

    def __init__(self, mode: str, user_model: str, provider: str,
                 env_items_path: str | os.PathLike[str] | None = None,
                 task_items_path: str | os.PathLike[str] | None = None, api_key: str | None = None,
                 base_url: str | None = None, *, user_system_prompt: str | None = None, **options: Any) -> None:
        template = user_system_prompt or envscaler_user_prompt() or project_user_prompt()
        self.user_agent = UserSimulator(template, user_model, provider, api_key, base_url,
                                        options.get("flavor", "roll"))
        super().__init__(mode, env_items_path, task_items_path, **options)

    def get_initial_observation(self, task_item: dict[str, Any]) -> str:
        return self.user_agent.get_init_reply(task=task_item["task"])

    def is_action_terminated(self, action: dict[str, Any]) -> bool:
        return False

    def is_observation_terminated(self, action: dict[str, Any], observation: dict[str, Any]) -> bool:
        return action.get("name") == compat.CHAT and STOP in str(observation)

    def user_step(self, content: Any) -> str:
        return self.user_agent.user_step(agent_response=content)


__all__ = ["EmptyChecklist", "EnvScalerConvRLEnv", "EnvScalerGemError", "EnvScalerNonConvRLEnv", "PoolMismatch",
           "PoolUnavailable", "ResetFailed", "UnsendableArguments", "UserSimulator", "envscaler_user_prompt"]
