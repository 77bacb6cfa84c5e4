"""Connecting to the Docker engine, with one clear error when there is none."""

from __future__ import annotations

import docker
import docker.errors
import requests.exceptions

LABEL_PREFIX = "envscaler"


class EngineError(RuntimeError):
    """No engine, or the engine refused: the message says what to do."""


def connect(timeout: float = 120.0) -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineError(f"no Docker engine is reachable ({_reason(exc)}); start one, or run "
                          "`envscaler-runtime engine ensure` as root to install and start dockerd (Debian)") from None
    return client


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text.split("(Caused by", 1)[0].strip() if "Caused by" in text else text[:200]


def image_exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True
