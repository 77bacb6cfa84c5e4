"""The base image: a minimal Debian bookworm root with Python 3 and an unprivileged
user, bootstrapped from the host's apt mirror (no registry), or any image given by
`--base` for hosts that can pull.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import docker
import docker.errors

from envscaler.images.engine import EngineError, image_exists
from envscaler.protocol.identities import SERVER_UID

SUITE = "bookworm"
PACKAGES = ("python3",)
HOST_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
# Docs, man pages and locales are never read in a sandbox.
EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")
USER_HOOK = (f'chroot "$1" useradd --uid {SERVER_UID} --user-group --no-create-home --home-dir /nonexistent '
             f'--shell /usr/sbin/nologin envscaler')
CLEAN_HOOK = 'rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*'


def recipe() -> list[str]:
    """The mmdebstrap arguments that define the base (before suite, target and mirror)."""
    args = ["--variant=minbase", f"--include={','.join(PACKAGES)}", f"--customize-hook={USER_HOOK}",
            f"--customize-hook={CLEAN_HOOK}"]
    args += [f"--dpkgopt=path-exclude={pattern}" for pattern in EXCLUDES]
    return args


def base_tag() -> str:
    digest = hashlib.sha256("\n".join([SUITE, *recipe()]).encode()).hexdigest()
    return f"envscaler-base:{digest[:12]}"


def host_mirror() -> list[str]:
    """The host's own apt sources, so the bootstrap uses whatever mirror the host is configured for."""
    return [str(path) for path in HOST_SOURCES if path.exists()][:1]


def bootstrap_base(client: docker.DockerClient, log: Path) -> str:
    """Build the base image unless one of the same recipe exists; returns its tag."""
    tag = base_tag()
    if image_exists(client, tag):
        return tag
    if shutil.which("mmdebstrap") is None:
        raise EngineError("mmdebstrap is not installed (apt-get install -y mmdebstrap), or pass --base IMAGE")
    repository, version = tag.split(":")
    with tempfile.TemporaryDirectory(prefix="envscaler-base-") as tmp, log.open("wb") as log_file:
        rootfs = Path(tmp) / "rootfs.tar"
        command = ["mmdebstrap", *recipe(), SUITE, str(rootfs), *host_mirror()]
        done = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            raise EngineError(f"mmdebstrap failed (exit {done.returncode}); see {log}")
        client.api.import_image_from_file(str(rootfs), repository=repository, tag=version)
    return tag


def ensure_base(client: docker.DockerClient, base: str | None, log: Path) -> str:
    """`base` (pulled when missing) or the bootstrapped Debian base."""
    if base is None:
        return bootstrap_base(client, log)
    if not image_exists(client, base):
        try:
            client.images.pull(base)
        except docker.errors.APIError as exc:
            raise EngineError(f"cannot pull base image {base!r}: {exc.explanation or exc}") from None
    return base
