"""One episode of an LLM agent in a sandboxed environment, EnvScaler's two ways.

Compared with EnvScaler's loop: every tool call of a turn runs, in order; a bad
argument is an error the agent sees, not the end of the episode; the user
simulator is awaited like any other call; steps, time and LLM retries are capped.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import openai
from openai import AsyncOpenAI

from envscaler.client.env_client import AsyncEnvMethods
from envscaler.client.errors import EnvClientError
from envscaler.client.models import EnvInfo
from envscaler.rollout.trajectory import Action, Observation, Step, TaskInfo, TrajectoryRecord
from envscaler.spec.models import Scenario

Mode = Literal["non-conv", "conv"]
GREETING = "Hi! How can I help you today?"
STOP = "###STOP###"


def prompt(name: str) -> str:
    return (resources.files("envscaler.rollout") / "prompts" / f"{name}.txt").read_text()


def agent_system_prompt(info: EnvInfo, mode: Mode) -> str:
    rules = "\n".join(f"- {rule}" for rule in info.constraints_rules) or "- (none)"
    template = prompt("agent_system" if mode == "non-conv" else "agent_system_conv")
    return template.format(environment_introduction=info.environment_introduction, rules=rules)


def parse_user_reply(text: str) -> str:
    """The simulator answers '# Thought: ... # Reply: ...'; the reply is what the agent hears."""
    marker = "# Reply:"
    return text.split(marker, 1)[1].strip() if marker in text else text.strip()


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… [truncated {len(text) - limit} characters]"


@dataclass
class AgentOptions:
    model: str
    mode: Mode = "non-conv"
    max_steps: int = 30
    episode_timeout: float = 600.0
    temperature: float | None = None
    max_observation_chars: int = 8000
    user_model: str = ""
    max_turns_without_progress: int = 3  # empty replies in a row before the episode is cut


@dataclass
class Episode:
    record: TrajectoryRecord
    steps: int = 0


class EpisodeOver(Exception):
    def __init__(self, error_kind: str, message: str) -> None:
        super().__init__(message)
        self.error_kind = error_kind


async def chat(llm: AsyncOpenAI, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
               temperature: float | None) -> tuple[Any, float]:
    """One completion; the client retries connection errors, 429 and 5xx with backoff."""
    started = time.perf_counter()
    kwargs: dict[str, Any] = {"model": model, "messages": messages}
    if tools:
        kwargs["tools"] = tools
    if temperature is not None:
        kwargs["temperature"] = temperature
    try:
        response = await llm.chat.completions.create(**kwargs)
    except openai.APIError as exc:
        raise EpisodeOver("llm_error", f"{type(exc).__name__}: {str(exc)[:300]}") from None
    if not response.choices:
        raise EpisodeOver("llm_error", "the model returned no choices")
    return response.choices[0], time.perf_counter() - started


def assistant_message(message: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant", "content": message.content or ""}
    if message.tool_calls:
        out["tool_calls"] = [{"id": call.id, "type": "function",
                              "function": {"name": call.function.name, "arguments": call.function.arguments}}
                             for call in message.tool_calls]
    reasoning = (message.model_extra or {}).get("reasoning_content")
    if reasoning:
        out["reasoning_content"] = reasoning
    return out


def parsed_arguments(raw: str) -> Any:
    try:
        return json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        return raw


async def run_tool_calls(session: AsyncEnvMethods, episode: Episode, calls: list[Any], llm_seconds: float,
                         options: AgentOptions) -> None:
    record = episode.record
    for call in calls:
        if episode.steps >= options.max_steps:
            raise EpisodeOver("max_steps", f"the step cap of {options.max_steps} was reached")
        started = time.perf_counter()
        try:
            result = await session.call(call.function.name, call.function.arguments or "{}")
        except EnvClientError as exc:
            raise EpisodeOver("env_error", str(exc)) from None
        # environment time is what the sandbox's server measured around the call, not our round trip (which
        # includes the pool hop and this event loop's waits); the round trip is kept as env_wall_seconds
        record.timings.env_wall_seconds += time.perf_counter() - started
        env_seconds = result.duration_us / 1e6
        record.timings.env_seconds += env_seconds
        content = clip(result.observation, options.max_observation_chars)
        record.messages.append({"role": "tool", "tool_call_id": call.id, "name": call.function.name,
                                "content": content})
        episode.steps += 1
        record.trajectory.append(Step(step=episode.steps, action=Action(name=call.function.name,
                                                                        arguments=parsed_arguments(
                                                                            call.function.arguments or "")),
                                      observation=Observation(type="tool", content=content),
                                      error_kind=result.error_kind, env_seconds=env_seconds,
                                      llm_seconds=llm_seconds))
        llm_seconds = 0.0
        if result.episode_broken:  # the environment's own code ended its worker: a result, not an outage
            raise EpisodeOver("episode_broken", result.error_message)


async def user_turn(user_llm: AsyncOpenAI, episode: Episode, agent_text: str, options: AgentOptions) -> str:
    record = episode.record
    record.user_messages.append({"role": "user", "content": agent_text})
    choice, seconds = await chat(user_llm, options.user_model, record.user_messages, None, None)
    record.timings.llm_seconds += seconds
    text = choice.message.content or ""
    record.user_messages.append({"role": "assistant", "content": text})
    return parse_user_reply(text)


async def _loop(llm: AsyncOpenAI, user_llm: AsyncOpenAI | None, session: AsyncEnvMethods, episode: Episode,
                options: AgentOptions) -> None:
    record = episode.record
    silent = 0
    while True:
        choice, seconds = await chat(llm, options.model, record.messages, record.tools, options.temperature)
        record.timings.llm_seconds += seconds
        message = choice.message
        record.messages.append(assistant_message(message))
        if message.tool_calls:
            silent = 0
            await run_tool_calls(session, episode, list(message.tool_calls), seconds, options)
            continue
        text = message.content or ""
        if not text.strip():
            silent += 1
            if silent >= options.max_turns_without_progress:
                raise EpisodeOver("empty_replies", "the model kept answering with nothing")
            continue
        if options.mode == "non-conv" or user_llm is None:
            record.final_observation = text
            return
        reply = await user_turn(user_llm, episode, text, options)
        episode.steps += 1
        record.trajectory.append(Step(step=episode.steps, action=Action(name="respond", arguments={"content": text}),
                                      observation=Observation(type="user", content=reply), llm_seconds=seconds))
        if STOP in reply:
            record.final_observation = reply
            return
        if episode.steps >= options.max_steps:
            raise EpisodeOver("max_steps", f"the step cap of {options.max_steps} was reached")
        record.messages.append({"role": "user", "content": reply.replace(STOP, "").strip()})


async def run_episode(llm: AsyncOpenAI, session: AsyncEnvMethods, scenario: Scenario, options: AgentOptions,
                      user_llm: AsyncOpenAI | None = None) -> TrajectoryRecord:
    """Reset, let the agent act until it is done or a cap is hit, then score with the sandboxed checks."""
    started = time.perf_counter()
    info = await session.describe()
    await session.reset(scenario.task_id)
    record = TrajectoryRecord(task_info=TaskInfo(env_id=scenario.env_id, task_id=scenario.task_id, task=scenario.task),
                              tools=info.tools, tool_schemas=info.tool_schemas, messages=[{"role": "system",
                                                           "content": agent_system_prompt(info, options.mode)}],
                              mode=options.mode, model=options.model)
    episode = Episode(record=record)
    if options.mode == "non-conv" or user_llm is None:
        record.messages.append({"role": "user", "content": scenario.task})
    else:
        record.user_messages.append({"role": "system", "content": prompt("user_simulator").format(task=scenario.task)})
        record.messages.append({"role": "assistant", "content": GREETING})
    try:
        if options.mode == "conv" and user_llm is not None:
            first = await user_turn(user_llm, episode, GREETING, options)
            record.messages.append({"role": "user", "content": first.replace(STOP, "").strip()})
        await asyncio.wait_for(_loop(llm, user_llm, session, episode, options), timeout=options.episode_timeout)
        record.terminated = True
    except EpisodeOver as over:
        record.truncated, record.error_kind = True, over.error_kind
        record.final_info["error"] = str(over)
    except TimeoutError:
        record.truncated, record.error_kind = True, "deadline"
        record.final_info["error"] = f"the episode overran its {options.episode_timeout:g} s deadline"
    record.steps = episode.steps
    await score(session, record)
    record.timings.total_seconds = time.perf_counter() - started
    return record


async def score(session: AsyncEnvMethods, record: TrajectoryRecord) -> None:
    """The checks' reward; a truncated episode scores 0, as in EnvScaler (its checks are still recorded)."""
    started = time.perf_counter()
    try:
        evaluation = await session.evaluate()
    except EnvClientError as exc:
        record.final_info["evaluation_error"] = str(exc)
        record.error_kind = record.error_kind or "env_error"
        return
    finally:
        record.timings.env_wall_seconds += time.perf_counter() - started
    record.final_info["evaluation"] = evaluation.model_dump()
    record.total_reward = 0.0 if record.truncated else evaluation.reward
    if record.trajectory:
        last = record.trajectory[-1]
        last.reward, last.terminated, last.truncated = record.total_reward, record.terminated, record.truncated
