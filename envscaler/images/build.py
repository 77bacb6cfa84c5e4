"""`envscaler-runtime build`: one image per environment, content-addressed.

An unchanged environment (same spec, scenarios and runtime image) is `cached`; a
bad spec fails alone with the validator's message.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import docker
import docker.errors

from envscaler.images.base import ensure_base
from envscaler.images.env_image import EnvImage, content_hash, image_tag, plan_image, write_archive
from envscaler.images.runtime_image import build_runtime
from envscaler.spec.loader import Corpus
from envscaler.spec.validate import validate_env, validate_scenario

Status = Literal["built", "cached", "failed"]
BATCH = 16


@dataclass
class BuildResult:
    env_id: str
    tag: str
    status: Status
    layer_bytes: int = 0
    seconds: float = 0.0
    message: str = ""


def ensure_runtime(client: docker.DockerClient, base: str | None, log: Path) -> str:
    """Base and runtime images, each built only when missing; returns the runtime tag."""
    return build_runtime(client, ensure_base(client, base, log), log)


def static_errors(corpus: Corpus, env_id: str) -> list[str]:
    spec = corpus.envs[env_id]
    problems = validate_env(env_id, spec)
    for task_id, scenario in corpus.scenarios_of(env_id).items():
        problems += validate_scenario(task_id, scenario, corpus.envs)
    return [str(p) for p in problems if p.severity == "error"]


def _existing_hash(client: docker.DockerClient, tag: str) -> str | None:
    try:
        return client.images.get(tag).labels.get("envscaler.content-hash")
    except docker.errors.ImageNotFound:
        return None


def _batches(items: list[EnvImage], size: int) -> Iterable[list[EnvImage]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def build_envs(client: docker.DockerClient, corpus: Corpus, runtime_tag: str, only: list[str] | None = None,
               jobs: int = 4, progress: Callable[[int], None] = lambda _: None,
               tool_schemas: str = "derived") -> list[BuildResult]:
    """Build the env images; `progress(n)` is called as n more environments finish."""
    runtime = client.images.get(runtime_tag).attrs
    env_ids = [e for e in corpus.envs if not only or e in only]
    results: dict[str, BuildResult] = {}
    for problem in corpus.problems:  # records that did not even load
        if problem.severity == "error" and problem.record not in results:
            results[problem.record] = BuildResult(problem.record, "", "failed", message=str(problem))

    def plan(env_id: str) -> EnvImage | BuildResult:
        started = time.perf_counter()
        spec, scenarios = corpus.envs[env_id], corpus.scenarios_of(env_id)
        try:
            errors = static_errors(corpus, env_id)
            digest = None if errors else content_hash(spec, scenarios, runtime["Id"], tool_schemas)
        except (ValueError, RecursionError) as exc:  # SchemaError, SpecError, JSON that nests too deeply: this env only
            errors = [f"{env_id}: " + ("nests too deeply" if isinstance(exc, RecursionError) else
                                       "holds a string that is not valid Unicode (a lone surrogate)"
                                       if isinstance(exc, UnicodeEncodeError) else str(exc))]
            digest = None
        if digest is None:
            return BuildResult(env_id, "", "failed", seconds=time.perf_counter() - started, message="; ".join(errors))
        tag = image_tag(env_id, digest)
        if _existing_hash(client, tag) == digest:  # recognised from its hash: no layer written
            return BuildResult(env_id, tag, "cached", 0, time.perf_counter() - started)
        return plan_image(spec, scenarios, runtime["Id"], tool_schemas)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        planned = list(pool.map(plan, env_ids))
    to_load = [p for p in planned if isinstance(p, EnvImage)]
    for item in planned:
        if isinstance(item, BuildResult):
            results[item.env_id] = item
            progress(1)
    try:
        for batch in _batches(to_load, BATCH):
            started = time.perf_counter()
            with tempfile.TemporaryFile() as archive:  # streamed to the engine from disk
                write_archive(runtime, batch, archive)
                archive.seek(0)
                client.images.load(archive)
            each = (time.perf_counter() - started) / len(batch)
            for image in batch:
                results[image.env_id] = BuildResult(image.env_id, image.tag, "built", image.layer_bytes, each)
            progress(len(batch))
    finally:
        for image in to_load:
            image.discard()
    order = {env_id: i for i, env_id in enumerate(env_ids)}
    return sorted(results.values(), key=lambda r: order.get(r.env_id, -1))


def existing_runtime(client: docker.DockerClient, base: str | None = None) -> str | None:
    """The runtime image for this project and base, if it was built; never builds."""
    from envscaler.images.base import base_tag
    from envscaler.images.engine import image_exists
    from envscaler.images.runtime_image import runtime_tag

    base_ref = base or base_tag()
    if not image_exists(client, base_ref):
        return None
    tag = runtime_tag(client.images.get(base_ref).id)
    return tag if image_exists(client, tag) else None


def corpus_tags(corpus: Corpus, runtime_id: str) -> dict[str, set[str]]:
    """The tags `build_envs` gives each environment of `corpus` on that runtime (either tool-schema mode), without
    building: what `images prune` keeps of a corpus."""
    tags: dict[str, set[str]] = {}
    for env_id, spec in corpus.envs.items():
        try:
            if static_errors(corpus, env_id):
                continue
            tags[env_id] = {image_tag(env_id, content_hash(spec, corpus.scenarios_of(env_id), runtime_id, mode))
                            for mode in ("derived", "record")}
        except (ValueError, RecursionError):  # build_envs reports it; nothing of it to keep
            continue
    return tags


def env_image(client: docker.DockerClient, corpus: Corpus, env_id: str, runtime_tag: str) -> str:
    """The image of one environment, built if needed; raises ValueError with the validator's message."""
    (result,) = build_envs(client, corpus, runtime_tag, only=[env_id], jobs=1)
    if result.status == "failed":
        raise ValueError(f"{env_id}: {result.message}")
    return result.tag
