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
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envscaler import __version__
from envscaler.images.runtime_image import INSTALLATION_LABEL, installation
from envscaler.runtime import served
from envscaler.spec.models import EnvSpec, Scenario
from envscaler.spec.toolschema import served_tools

ENV_DIR = "opt/envscaler/env"
SOCKET_DIR = "/run/envscaler"
SOCKET = f"{SOCKET_DIR}/env.sock"
SERVED = "served.json"
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
    layer: bytes


def repository(env_id: str) -> str:
    """Docker repository names are lower-case [a-z0-9._-], so the readable part loses case and other
    characters (`Env_A` and `env_a` read the same); a hash of the exact env id keeps names apart."""
    name = re.sub(r"[^a-z0-9._-]+", "-", env_id.lower()).strip("._-")[:64].rstrip("._-") or "env"
    return f"envscaler-env/{name}-{hashlib.sha256(env_id.encode()).hexdigest()[:10]}"


def env_files(spec: EnvSpec, scenarios: dict[str, Scenario], tool_schemas: str = "derived") -> dict[str, bytes]:
    """The environment in EnvScaler's own layout; key order is kept, since observations (str of dicts) show it."""
    record = {spec.env_id: spec.model_dump(mode="json")}
    scenario_list = [s.model_dump(mode="json") for s in scenarios.values()]
    return {
        "env.json": json.dumps(record, ensure_ascii=False).encode(),
        "scenarios.json": json.dumps(scenario_list, ensure_ascii=False).encode(),
        SERVED: served.bundle(*served.from_spec(spec, scenarios, tool_schemas)),  # what the server reads
    }


def layer_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        parts = ENV_DIR.split("/")
        for depth in range(1, len(parts) + 1):
            directory = tarfile.TarInfo("/".join(parts[:depth]))
            directory.type, directory.mode, directory.mtime = tarfile.DIRTYPE, 0o755, LAYER_MTIME
            tar.addfile(directory)
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(f"{ENV_DIR}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o444, LAYER_MTIME
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def plan_image(spec: EnvSpec, scenarios: dict[str, Scenario], runtime_id: str,
               tool_schemas: str = "derived") -> EnvImage:
    files = env_files(spec, scenarios, tool_schemas)
    content = hashlib.sha256(b"\0".join([spec.env_id.encode(), spec.spec_hash.encode(), files["scenarios.json"],
                                          runtime_id.encode(), BUILDER_DIGEST.encode(), tool_schemas.encode()]))
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
    # The tag is the content hash, so the same env built on another runtime (another version or checkout
    # sharing the engine) gets its own tag instead of retagging this one.
    return EnvImage(env_id=spec.env_id, tag=f"{repository(spec.env_id)}:{content.hexdigest()[:16]}",
                    content_hash=content.hexdigest(), labels=labels, layer=layer_tar(files))


def image_config(runtime: dict[str, Any], image: EnvImage, layer_digest: str) -> dict[str, Any]:
    """The runtime image's config with the layer, the labels and the serve command added."""
    config = dict(runtime["Config"])
    config["Labels"] = {**(config.get("Labels") or {}), **image.labels}
    config["Entrypoint"] = [PYTHON, "-m", "envscaler.runtime.serve_bundle"]
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
    """A `docker load` archive of many env images sharing the runtime's layers.

    The runtime's layers are named in the manifest but not shipped: the engine
    finds them by chain id and reads only the new layer of each image.
    """
    parents = len(runtime["RootFS"]["Layers"])
    buffer = io.BytesIO()
    manifest = []
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for image in images:
            digest = "sha256:" + hashlib.sha256(image.layer).hexdigest()
            config = json.dumps(image_config(runtime, image, digest), sort_keys=True).encode()
            config_name = hashlib.sha256(config).hexdigest() + ".json"
            layer_name = digest.split(":")[1] + "/layer.tar"
            add(config_name, config)
            add(layer_name, image.layer)
            manifest.append({"Config": config_name, "RepoTags": [image.tag],
                             "Layers": ["present/layer.tar"] * parents + [layer_name]})
        add("manifest.json", json.dumps(manifest).encode())
    return buffer.getvalue()
