"""Many episodes in parallel over a pool, written as JSONL as they finish.

Resumable: episodes already in the output file are skipped, and a half-written
last line (a run killed mid-write) is dropped before appending. Infrastructure
failures (the LLM endpoint or the pool failing, not the agent) are not results:
they go to `<out>.errors.jsonl`, never to the trajectories, so the next run redoes them.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
from openai import AsyncOpenAI

from envscaler.client.errors import EnvClientError
from envscaler.client.pool_client import AsyncPool, AsyncPoolSession
from envscaler.rollout.agent import AgentOptions, run_episode
from envscaler.rollout.trajectory import INFRASTRUCTURE, TaskInfo, TrajectoryRecord, error_counts
from envscaler.spec.models import Scenario

Key = tuple[str, str, int]


class PreflightError(Exception):
    """The endpoint or the pool cannot serve this run; one line says why."""


@dataclass
class Summary:
    episodes: int = 0
    skipped: int = 0
    rewards: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    llm_seconds: float = 0.0
    env_seconds: float = 0.0
    infrastructure_failures: int = 0  # episodes not written to the trajectories (see errors_path)
    errors_path: Path | None = None
    interrupted: bool = False
    aborted: str = ""  # why the run stopped early, when it did
    groups: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, record: TrajectoryRecord) -> None:
        self.errors.update(error_counts(record.error_kind, (step.error_kind for step in record.trajectory)))
        self.llm_seconds += record.timings.llm_seconds
        self.env_seconds += record.timings.env_seconds
        if record.error_kind in INFRASTRUCTURE:
            self.infrastructure_failures += 1
            return
        self.episodes += 1
        self.rewards.append(record.total_reward)
        self.groups[(record.task_info.env_id, record.task_info.task_id)].append(record.total_reward)

    @property
    def mean_reward(self) -> float:
        return statistics.fmean(self.rewards) if self.rewards else 0.0

    @property
    def success_rate(self) -> float:
        return sum(r == 1.0 for r in self.rewards) / len(self.rewards) if self.rewards else 0.0

    def group_stats(self) -> dict[str, float]:
        """Over this run's scenarios: mean of per-scenario means and variances, pass@1 and pass@k (k = samples)."""
        groups = [g for g in self.groups.values() if g]
        if not groups:
            return {}
        return {"scenarios": len(groups), "k": max(map(len, groups)),
                "mean": statistics.fmean(statistics.fmean(g) for g in groups),
                "variance": statistics.fmean(statistics.pvariance(g) for g in groups),
                "pass@1": statistics.fmean(sum(r == 1.0 for r in g) / len(g) for g in groups),
                "pass@k": statistics.fmean(any(r == 1.0 for r in g) for g in groups)}


def errors_path(out: Path) -> Path:
    return out.with_name(out.name + ".errors.jsonl")


def read_records(out: Path, repair: bool = False) -> list[dict]:
    """The records of a JSONL file, without a torn last line; `repair` also cuts it from the file, so that
    appending stays valid JSONL."""
    if not out.exists():
        return []
    data = out.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        if repair:
            out.write_bytes(data)
    rows = []
    for line in data.decode().splitlines():
        try:
            row = json.loads(line)
            named = isinstance(row["task_info"]["env_id"], str) and isinstance(row["task_info"]["task_id"], str)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
        if named:  # a record must name its episode
            rows.append(row)
    return rows


def record_key(row: dict) -> Key:
    info = row["task_info"]
    return info["env_id"], info["task_id"], int(row.get("sample_index", 0))


def finished_keys(out: Path, retry_errors: bool = False) -> set[Key]:
    """Episodes already written. With retry_errors, records that ended in an error (or in an infrastructure
    failure an older version wrote) are removed from the file, so they run again."""
    rows = read_records(out, repair=True)
    if retry_errors:
        kept = [r for r in rows if not r.get("error_kind")]
        if len(kept) != len(rows):
            out.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        rows = kept
    return {record_key(r) for r in rows if r.get("error_kind") not in INFRASTRUCTURE}


def failed_record(scenario: Scenario, options: AgentOptions, kind: str, message: str,
                  sample_index: int = 0) -> TrajectoryRecord:
    return TrajectoryRecord(task_info=TaskInfo(env_id=scenario.env_id, task_id=scenario.task_id, task=scenario.task),
                            tools=[], messages=[], truncated=True, error_kind=kind, final_info={"error": message},
                            mode=options.mode, model=options.model, sample_index=sample_index)


async def preflight(pool: AsyncPool, scenarios: list[Scenario], options: AgentOptions, llm: AsyncOpenAI,
                    user_llm: AsyncOpenAI | None = None, warn: Callable[[str], None] = lambda _: None) -> None:
    """The endpoint's model list (one cheap GET, no completion) and the pool's list of what it serves, before any
    episode runs. An endpoint that answers at all but has no model list (404, 501) passes: only one that cannot
    be reached, or refuses the key, fails here."""
    probes = [("agent", llm, options.model)]
    if user_llm is not None:
        probes.append(("user simulator", user_llm, options.user_model))
    for role, client, model in probes:
        where = f"the {role} LLM endpoint {client.base_url}"
        try:
            listed = [m.id for m in (await client.with_options(max_retries=1, timeout=15.0).models.list()).data]
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise PreflightError(f"{where} refuses the API key: {str(exc)[:200]}") from None
        except openai.APIStatusError:
            continue  # it answered: reachable, whatever it thinks of /models
        except openai.APIError as exc:
            raise PreflightError(f"{where} does not answer: {type(exc).__name__}: {str(exc)[:200]}") from None
        if listed and model not in listed:
            warn(f"{where} does not list model {model!r} (it lists {', '.join(listed[:5])}"
                 f"{' …' if len(listed) > 5 else ''}); going on, as some gateways list only part of what they serve")
    try:
        served = {e.env_id: set(e.scenario_ids) for e in (await pool.list_envs()).envs}
    except EnvClientError as exc:
        raise PreflightError(f"the pool does not answer: {exc}") from None
    missing_envs = sorted({s.env_id for s in scenarios} - set(served))
    if missing_envs:
        raise PreflightError(f"the pool does not serve {len(missing_envs)} environment(s) of the corpus: "
                             f"{', '.join(missing_envs[:10])}{' …' if len(missing_envs) > 10 else ''}")
    missing = sorted(f"{s.env_id}/{s.task_id}" for s in scenarios if s.task_id not in served[s.env_id])
    if missing:
        raise PreflightError(f"the pool does not know {len(missing)} scenario(s) of the corpus (another corpus "
                             f"version?): {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")


async def _acquire(pool: AsyncPool, env_id: str, wait: float, grace: float = 3.0) -> AsyncPoolSession:
    """A lease; when the run is cancelled while the pool is granting one, the grant is awaited for a moment and
    released, so that no lease is left to its TTL."""
    acquiring = asyncio.ensure_future(pool.acquire(env_id, wait=wait))
    try:
        return await asyncio.shield(acquiring)
    except asyncio.CancelledError:
        done, _ = await asyncio.wait([acquiring], timeout=grace)
        if not done:
            acquiring.cancel()  # still queued at the pool: cancelling the call withdraws it
        elif not acquiring.cancelled() and acquiring.exception() is None:
            await _release(acquiring.result())
        raise


async def _release(session: AsyncPoolSession, grace: float = 5.0) -> None:
    """Give the lease back even when the run is being cancelled (again): the Release call is not abandoned."""
    releasing = asyncio.ensure_future(session.release())
    try:
        await asyncio.shield(releasing)
    except asyncio.CancelledError:
        await asyncio.wait([releasing], timeout=grace)
        raise
    except EnvClientError:
        pass  # the pool already took it back (lost lease, dead container)


async def run_rollouts(pool_address: str | Any, scenarios: list[Scenario], options: AgentOptions, llm: AsyncOpenAI,
                       out: Path, concurrency: int, user_llm: AsyncOpenAI | None = None,
                       progress: Callable[[TrajectoryRecord], None] = lambda _: None,
                       acquire_wait: float = 600.0, samples: int = 1, retry_errors: bool = False,
                       check_first: bool = True, max_consecutive_failures: int = 16) -> Summary:
    """Runs every (scenario, sample) not yet in `out`, through the pool at `pool_address` or through an object of
    AsyncPool's shape given instead (an async context manager, e.g. envscaler.ray's `RayPool.aio`). Cancelling the
    calling task stops the run: episodes in flight are dropped (not written) and their leases released before
    this returns."""
    summary = Summary(errors_path=errors_path(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    done = finished_keys(out, retry_errors)
    todo = [(s, i) for s in scenarios for i in range(samples) if (s.env_id, s.task_id, i) not in done]
    summary.skipped = len(scenarios) * samples - len(todo)
    gate = asyncio.Semaphore(concurrency)
    write_lock = asyncio.Lock()
    failures_in_a_row = 0
    stop = asyncio.Event()

    async def one(pool: AsyncPool, scenario: Scenario, sample: int) -> None:
        nonlocal failures_in_a_row
        async with gate:
            if stop.is_set():
                return
            try:
                session = await _acquire(pool, scenario.env_id, acquire_wait)
                try:
                    record = await run_episode(llm, session, scenario, options, user_llm)
                finally:
                    await _release(session)
            except EnvClientError as exc:
                record = failed_record(scenario, options, "env_error", str(exc))
            record.sample_index = sample
            infrastructure = record.error_kind in INFRASTRUCTURE
            async with write_lock:
                with (summary.errors_path if infrastructure else out).open("a", encoding="utf-8") as f:
                    f.write(record.model_dump_json() + "\n")
            summary.add(record)
            progress(record)
            failures_in_a_row = failures_in_a_row + 1 if infrastructure else 0
            if failures_in_a_row >= max_consecutive_failures and not stop.is_set():
                summary.aborted = (f"{failures_in_a_row} episodes in a row failed for infrastructure reasons "
                                   f"(last: {record.error_kind}: {record.final_info.get('error', '')[:200]})")
                stop.set()

    errors_file = summary.errors_path
    assert errors_file is not None
    errors_file.unlink(missing_ok=True)  # it lists this run's failures only
    opened = AsyncPool(pool_address, timeout=max(60.0, options.episode_timeout)) \
        if isinstance(pool_address, str) else pool_address
    async with opened as pool:
        if check_first and todo:
            await preflight(pool, list({(s.env_id, s.task_id): s for s, _ in todo}.values()), options, llm,
                            user_llm)
        tasks = [asyncio.ensure_future(one(pool, scenario, sample)) for scenario, sample in todo]
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            summary.interrupted = True
        finally:
            # gather stops at the first cancelled episode; wait for all, so that every session releases its
            # lease before the pool's channel closes
            for task in tasks:
                if not task.done() and not task.cancelling():  # a second cancel would cut a release short
                    task.cancel()
            if tasks:
                await asyncio.wait(tasks)
    return summary
