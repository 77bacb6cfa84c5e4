"""One image per environment: the runtime image plus a thin layer holding only that
environment's spec and scenarios.

The layer is written directly, not with `docker build`: a layer tar and an image
config, loaded with `docker load` in one archive for many environments. The
engine skips the parent layers it already has, so a build costs milliseconds.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from envscaler import __version__
from envscaler.images.runtime_image import INSTALLATION_LABEL, installation
from envscaler.protocol import bundle
from envscaler.protocol.addresses import SOCKET
from envscaler.protocol.identities import SERVER_UID
from envscaler.spec.models import EnvSpec, Scenario
from envscaler.spec.served import from_spec
from envscaler.spec.toolschema import served_tools

ENV_DIR = "opt/envscaler/env"
SERVED = "served"  # the bundle directory the server reads (envscaler/protocol/bundle.py)
BUNDLE_OWNER = SERVER_UID  # the server's uid: only it may read the scenarios (tasks and checks), not environment code
FILE_MODE, DIR_MODE = 0o400, 0o500
PYTHON = "/opt/envscaler/bin/python3"
LAYER_MTIME = 0  # fixed, so equal content gives an equal layer digest
# How images are laid out is part of their content: a change here rebuilds them.
BUILDER_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


@dataclass(frozen=True)
class EnvImage:
    env_id: str
    tag: str
    content_hash: str  # spec + scenarios + runtime image: what decides a rebuild
    labels: dict[str, str]
    layer: Path  # the layer tar, in a temporary file: a corpus of gigabytes is never held in memory

    @property
    def layer_bytes(self) -> int:
        return self.layer.stat().st_size

    def discard(self) -> None:
        self.layer.unlink(missing_ok=True)


def repository(env_id: str) -> str:
    """Docker repository names are lower-case [a-z0-9._-], so the readable part loses case and other
    characters (`Env_A` and `env_a` read the same); a hash of the exact env id keeps names apart."""
    name = re.sub(r"[^a-z0-9._-]+", "-", env_id.lower()).strip("._-")[:64].rstrip("._-") or "env"
    return f"envscaler-env/{name}-{hashlib.sha256(env_id.encode()).hexdigest()[:10]}"


def env_files(spec: EnvSpec, scenarios: dict[str, Scenario], tool_schemas: str = "derived"
              ) -> Iterator[tuple[str, bytes]]:
    """The environment's record in EnvScaler's layout (env.json), then the server's bundle directory, file by
    file (one scenario at a time, so nothing holds all of them encoded); key order is kept, since observations
    (str of dicts) show it."""
    yield "env.json", json.dumps({spec.env_id: spec.model_dump(mode="json")}, ensure_ascii=False).encode()
    for name, data in bundle.bundle_files(*from_spec(spec, scenarios, tool_schemas)):
        yield f"{SERVED}/{name}", data


def _dir_info(name: str, mode: int, owner: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.uid, info.gid = tarfile.DIRTYPE, mode, LAYER_MTIME, owner, owner
    return info


def layer_tar(files: Iterable[tuple[str, bytes]], digest: Any = None, out: BinaryIO | None = None) -> bytes:
    """The layer: ENV_DIR and everything under it owned by the server's uid, files 0400 and directories 0500.
    `digest`, when given, is fed every file's name and content (the image's content hash). Written to `out`
    file by file when given (then b"" is returned)."""
    buffer = out if out is not None else io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        parts = ENV_DIR.split("/")
        for depth in range(1, len(parts)):  # opt, opt/envscaler: as the runtime image has them
            tar.addfile(_dir_info("/".join(parts[:depth]), 0o755, 0))
        tar.addfile(_dir_info(ENV_DIR, DIR_MODE, BUNDLE_OWNER))
        made = {ENV_DIR}
        for name, data in files:
            path = f"{ENV_DIR}/{name}"
            parent = path.rsplit("/", 1)[0]
            while parent not in made:  # a new directory: declared (0500, the server's) before its files
                missing = parent
                while missing.rsplit("/", 1)[0] not in made:
                    missing = missing.rsplit("/", 1)[0]
                tar.addfile(_dir_info(missing, DIR_MODE, BUNDLE_OWNER))
                made.add(missing)
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), FILE_MODE, LAYER_MTIME
            info.uid = info.gid = BUNDLE_OWNER
            tar.addfile(info, io.BytesIO(data))
            if digest is not None:
                _feed(digest, name, data)
    return buffer.getvalue() if isinstance(buffer, io.BytesIO) else b""


def _digest(spec: EnvSpec, runtime_id: str, tool_schemas: str) -> Any:
    return hashlib.sha256(b"\0".join([spec.env_id.encode(), spec.spec_hash.encode(), runtime_id.encode(),
                                       BUILDER_DIGEST.encode(), tool_schemas.encode()]))


def image_tag(env_id: str, content: str) -> str:
    """The tag is the content hash, so the same env built on another runtime (another version or checkout
    sharing the engine) gets its own tag instead of retagging this one."""
    return f"{repository(env_id)}:{content[:16]}"


def content_hash(spec: EnvSpec, scenarios: dict[str, Scenario], runtime_id: str, tool_schemas: str = "derived") -> str:
    """What plan_image labels the image with, without building its layer: enough to recognise a cached image."""
    digest = _digest(spec, runtime_id, tool_schemas)
    for name, data in env_files(spec, scenarios, tool_schemas):
        _feed(digest, name, data)
    return digest.hexdigest()


def _feed(digest: Any, name: str, data: bytes) -> None:
    digest.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)


def plan_image(spec: EnvSpec, scenarios: dict[str, Scenario], runtime_id: str,
               tool_schemas: str = "derived") -> EnvImage:
    content = _digest(spec, runtime_id, tool_schemas)
    handle, name = tempfile.mkstemp(prefix="envscaler-layer-", suffix=".tar")
    with os.fdopen(handle, "wb") as out:
        layer_tar(env_files(spec, scenarios, tool_schemas), content, out)  # every file goes into the hash
    layer = Path(name)
    tools = served_tools(spec.tools, spec.env_class_code, spec.env_class_name, tool_schemas)
    labels = {
        "envscaler.env-id": spec.env_id,
        "envscaler.spec-hash": spec.spec_hash,
        "envscaler.tool-count": str(len(tools)),
        "envscaler.scenario-count": str(len(scenarios)),
        "envscaler.version": __version__,
        "envscaler.runtime-image": runtime_id,
        "envscaler.content-hash": content.hexdigest(),
        "envscaler.tool-schemas": tool_schemas,
        INSTALLATION_LABEL: installation(),
    }
    return EnvImage(env_id=spec.env_id, tag=image_tag(spec.env_id, content.hexdigest()),
                    content_hash=content.hexdigest(), labels=labels, layer=layer)


def image_config(runtime: dict[str, Any], image: EnvImage, layer_digest: str) -> dict[str, Any]:
    """The runtime image's config with the layer, the labels and the serve command added."""
    config = dict(runtime["Config"])
    config["Labels"] = {**(config.get("Labels") or {}), **image.labels}
    config["Entrypoint"] = [PYTHON, "-m", "envscaler.runtime.trusted.serve_bundle"]
    config["Cmd"] = [f"/{ENV_DIR}/{SERVED}", "--listen", f"unix:{SOCKET}"]
    return {
        "architecture": runtime["Architecture"],
        "os": runtime["Os"],
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [*runtime["RootFS"]["Layers"], layer_digest]},
        # One entry per layer: the runtime's own history stays on the runtime image.
        "history": [{"created_by": f"runtime layer {i + 1}"} for i in range(len(runtime["RootFS"]["Layers"]))]
        + [{"created_by": f"envscaler-runtime build {image.env_id}"}],
    }


def load_archive(runtime: dict[str, Any], images: list[EnvImage]) -> bytes:
    """write_archive's archive, in memory (small corpora, tests)."""
    buffer = io.BytesIO()
    write_archive(runtime, images, buffer)
    return buffer.getvalue()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as layer:
        while chunk := layer.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def write_archive(runtime: dict[str, Any], images: list[EnvImage], out: BinaryIO) -> None:
    """A `docker load` archive of many env images sharing the runtime's layers, written to `out` (layers are
    copied from their files, never held whole in memory).

    The runtime's layers are named in the manifest but not shipped: the engine
    finds them by chain id and reads only the new layer of each image.
    """
    parents = len(runtime["RootFS"]["Layers"])
    manifest = []
    with tarfile.open(fileobj=out, mode="w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for image in images:
            digest = _file_digest(image.layer)
            config = json.dumps(image_config(runtime, image, digest), sort_keys=True).encode()
            config_name = hashlib.sha256(config).hexdigest() + ".json"
            layer_name = digest.split(":")[1] + "/layer.tar"
            add(config_name, config)
            info = tarfile.TarInfo(layer_name)
            info.size = image.layer_bytes
            with image.layer.open("rb") as layer:
                tar.addfile(info, layer)
            manifest.append({"Config": config_name, "RepoTags": [image.tag],
                             "Layers": ["present/layer.tar"] * parents + [layer_name]})
        add("manifest.json", json.dumps(manifest).encode())
