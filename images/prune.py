"""Remove images that the current project no longer uses: runtime images of older
sources, and environment images built on them. Every source change builds a new
runtime image, so without this they pile up."""

from __future__ import annotations

from dataclasses import dataclass, field

import docker
import docker.errors

from envscaler.images.base import base_tag
from envscaler.images.build import existing_runtime


@dataclass
class PruneResult:
    removed: list[str] = field(default_factory=list)
    kept_in_use: list[str] = field(default_factory=list)
    freed_bytes: int = 0


def stale_images(client: docker.DockerClient, base: str | None = None) -> list[docker.models.images.Image]:
    current = existing_runtime(client, base)
    current_id = client.images.get(current).id if current else ""
    keep = {current_id, *(client.images.get(b).id for b in [base or base_tag()] if _exists(client, b))}
    stale = []
    for image in client.images.list(filters={"label": "envscaler.version"}):
        if image.id in keep:
            continue
        runtime = image.labels.get("envscaler.runtime-image")
        is_runtime = any(tag.startswith("envscaler-runtime:") for tag in image.tags)
        if is_runtime or (runtime is not None and runtime != current_id):
            stale.append(image)
    return stale


def _exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def prune(client: docker.DockerClient, base: str | None = None, dry_run: bool = False) -> PruneResult:
    """Env images first (they sit on the runtimes); an image a container still uses is kept."""
    result = PruneResult()
    images = sorted(stale_images(client, base), key=lambda i: "envscaler.runtime-image" not in i.labels)
    for image in images:
        name = image.tags[0] if image.tags else image.short_id
        if dry_run:
            result.removed.append(name)
            continue
        try:
            client.images.remove(image.id, force=False, noprune=False)
        except docker.errors.APIError:
            result.kept_in_use.append(name)
            continue
        result.removed.append(name)
        result.freed_bytes += image.attrs.get("Size", 0)
    return result
