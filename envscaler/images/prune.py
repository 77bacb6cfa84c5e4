"""Remove images that this installation built and no longer uses: its runtime images of older sources, the
environment images built on them, and environment images superseded on the current runtime (each edit of an
environment or its scenarios, e.g. between two `check` runs, builds a new content-addressed image). Of an environment
of the corpus in use, what that corpus builds now is kept and its other builds go; other environments' images stay.

The engine may be shared (other checkouts, other versions, other users): an image is removed only when its
`envscaler.installation` label names this installation. Images of other installations, and images built before
that label existed, are kept and counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import docker
import docker.errors

from envscaler.images.base import base_tag
from envscaler.images.build import existing_runtime
from envscaler.images.runtime_image import INSTALLATION_LABEL, installation

UNLABELLED = "(no installation label)"


@dataclass
class PruneResult:
    removed: list[str] = field(default_factory=list)
    kept_in_use: list[str] = field(default_factory=list)
    kept_current: list[str] = field(default_factory=list)  # what this installation uses now
    kept_other: Counter[str] = field(default_factory=Counter)  # installation -> images kept as not ours
    freed_bytes: int = 0


def _name(image: docker.models.images.Image) -> str:
    return image.tags[0] if image.tags else image.short_id


def classify(client: docker.DockerClient, base: str | None = None, corpus_builds: dict[str, set[str]] | None = None,
             ) -> tuple[list[docker.models.images.Image], PruneResult]:
    """The images to remove, and a result already listing what is kept and why. `corpus_builds`: the tags the corpus
    in use builds, by env_id (envscaler.images.build.corpus_tags)."""
    current = existing_runtime(client, base)
    current_id = client.images.get(current).id if current else ""
    keep = {current_id, *(client.images.get(b).id for b in [base or base_tag()] if _exists(client, b))}
    mine = installation()
    result = PruneResult()
    stale = []
    images = client.images.list(filters={"label": "envscaler.version"})
    superseded = _superseded([i for i in images if i.labels.get("envscaler.runtime-image") == current_id
                              and i.labels.get(INSTALLATION_LABEL) == mine], corpus_builds or {})
    for image in images:
        runtime = image.labels.get("envscaler.runtime-image")
        is_runtime = any(tag.startswith("envscaler-runtime:") for tag in image.tags)
        if image.id in superseded:
            stale.append(image)
        elif image.id in keep or (runtime is not None and runtime == current_id):
            result.kept_current.append(_name(image))
        elif not (is_runtime or runtime is not None):
            continue  # neither a runtime nor an environment image
        elif image.labels.get(INSTALLATION_LABEL) != mine:
            result.kept_other[image.labels.get(INSTALLATION_LABEL) or UNLABELLED] += 1
        else:
            stale.append(image)
    return stale, result


def _superseded(on_current: list[docker.models.images.Image], corpus_builds: dict[str, set[str]]) -> set[str]:
    """Ids of environment images on the current runtime that another build of the same environment replaced: of an
    environment of the corpus in use, every image but the one that corpus builds now."""
    by_env: dict[str, list[docker.models.images.Image]] = {}
    for image in on_current:
        by_env.setdefault(image.labels.get("envscaler.env-id", ""), []).append(image)
    gone = set()
    for env_id, versions in by_env.items():
        if env_id in corpus_builds:  # another corpus's environments stay: prune knows only the corpus it is given
            gone |= {i.id for i in versions if not set(i.tags) & corpus_builds[env_id]}
    return gone


def stale_images(client: docker.DockerClient, base: str | None = None) -> list[docker.models.images.Image]:
    return classify(client, base)[0]


def _exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def prune(client: docker.DockerClient, base: str | None = None, dry_run: bool = False,
          corpus_builds: dict[str, set[str]] | None = None) -> PruneResult:
    """Env images first (they sit on the runtimes); an image a container still uses is kept."""
    stale, result = classify(client, base, corpus_builds)
    for image in sorted(stale, key=lambda i: "envscaler.runtime-image" not in i.labels):
        name = _name(image)
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
