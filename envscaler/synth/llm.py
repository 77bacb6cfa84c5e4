"""The pipeline's LLM access: any OpenAI-compatible endpoint through the `openai`
client, with an on-disk response cache keyed by the request, retries with backoff,
bounded concurrency, structured outputs parsed with pydantic (repaired up to a
cap, never an endless loop), and token and cost accounting.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import openai
from openai import AsyncOpenAI
from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)
# Set while a recorded failure is re-run (--retry-failed): ask the endpoint again instead of reading the cache,
# which would only replay the answers that failed. Tasks and threads started inside inherit it.
fresh: contextvars.ContextVar[bool] = contextvars.ContextVar("fresh", default=False)
JSON_BLOCK = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class LLMFailure(Exception):
    """A request that could not yield a valid answer; the message says why."""


class LLMUnavailable(LLMFailure):
    """The endpoint failed for a transient reason (connection, timeout, rate limit, 5xx) after the client's
    retries: not a verdict on the item, so it is never cached or recorded as a rejection; a rerun retries it."""


def transient(exc: openai.APIError) -> bool:
    if isinstance(exc, openai.APIConnectionError | openai.RateLimitError):  # timeouts are connection errors
        return True
    return isinstance(exc, openai.APIStatusError) and (exc.status_code >= 500 or exc.status_code in (408, 409, 429))


def prompt(name: str) -> str:
    return (resources.files("envscaler.synth") / "prompts" / f"{name}.txt").read_text()


def prompt_hash(name: str) -> str:
    return hashlib.sha256(prompt(name).encode()).hexdigest()[:12]


@dataclass
class Usage:
    requests: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    repairs: int = 0

    def cost(self, price_in: float, price_out: float) -> float:
        """Dollars, from prices per million tokens."""
        return (self.prompt_tokens * price_in + self.completion_tokens * price_out) / 1e6


def extract_json(text: str) -> Any:
    """The JSON object in a reply: the whole text, a fenced block, or the outermost braces."""
    candidates = [text.strip(), *JSON_BLOCK.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    raise ValueError("no JSON object in the reply")


@dataclass
class LLM:
    client: AsyncOpenAI
    model: str
    cache_dir: Path
    concurrency: int = 8
    max_repairs: int = 2
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._gate = asyncio.Semaphore(self.concurrency)

    def _key(self, messages: list[dict[str, Any]], temperature: float) -> str:
        blob = json.dumps({"model": self.model, "messages": messages, "temperature": temperature}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    async def complete(self, messages: list[dict[str, Any]], temperature: float = 0.0) -> str:
        """One completion's text, from the cache when this exact request was made before."""
        path = self.cache_dir / f"{self._key(messages, temperature)}.json"
        if path.exists() and not fresh.get():
            self.usage.cached += 1
            return json.loads(path.read_text())["content"]
        async with self._gate:
            try:
                response = await self.client.chat.completions.create(model=self.model, messages=messages,
                                                                     temperature=temperature)
            except openai.APIError as exc:
                failure = LLMUnavailable if transient(exc) else LLMFailure
                raise failure(f"the model endpoint failed: {type(exc).__name__}: {str(exc)[:200]}") from None
        self.usage.requests += 1
        if response.usage is not None:
            self.usage.prompt_tokens += response.usage.prompt_tokens or 0
            self.usage.completion_tokens += response.usage.completion_tokens or 0
        content = response.choices[0].message.content or "" if response.choices else ""
        path.write_text(json.dumps({"content": content}))
        return content

    async def structured(self, model: type[T], template: str, temperature: float = 0.0, **fields: Any) -> T:
        """Ask with a prompt file; parse the reply into `model`; on a bad reply, show the model its error and ask
        again, at most `max_repairs` times."""
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": "Answer with one JSON object and nothing else."},
            {"role": "user", "content": prompt(template).format(**fields)},
        ]
        problem = ""
        for attempt in range(self.max_repairs + 1):
            text = await self.complete(messages, temperature)
            try:
                return model.model_validate(extract_json(text))
            except (ValueError, ValidationError) as exc:
                problem = str(exc).splitlines()[0] if isinstance(exc, ValueError) else _validation_summary(exc)
                if attempt == self.max_repairs:
                    break
                self.usage.repairs += 1
                messages = [*messages, {"role": "assistant", "content": text},
                            {"role": "user", "content": f"That reply was not usable: {problem}. Answer again with "
                                                        "one valid JSON object that matches the requested fields."}]
        raise LLMFailure(f"{template}: no valid answer after {self.max_repairs + 1} tries ({problem})")


def _validation_summary(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'object'}: {e['msg']}" for e in exc.errors()[:5])
