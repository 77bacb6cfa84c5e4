"""The runtime image: base + a venv holding exactly the server's run-time
dependencies (wheels downloaded on the host, pinned by envscaler/images/runtime.lock) and
the parts of this package that the server runs, copied from the installed package.
Its tag hashes the version, the lock, those files and the base image id, so it is
built once per change, and the same whether the package is installed from a wheel
or editable from a checkout.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

import docker
import docker.errors

from envscaler import __version__
from envscaler.images.engine import EngineError, image_exists

# What the tool server imports; the CLI's host-side extras (rich, docker, jsonschema) stay out of the image.
RUNTIME_REQUIREMENTS = ["grpcio", "grpcio-health-checking", "protobuf", "pydantic", "docstring-parser"]
IMAGES_DIR = Path(__file__).resolve().parent
LOCK = IMAGES_DIR / "runtime.lock"
DOCKERFILE = IMAGES_DIR / "runtime.Dockerfile"
# The sandbox side and the protocol it speaks, as the wheel ships them, and nothing of the host side: the image holds
# what runs in it, and only a change to these files makes a new runtime image (tests/integration/test_images.py lists
# the image's files).
RUNTIME_PACKAGES: dict[str, tuple[str, ...]] = {
    "envscaler": ("__init__.py",),
    "envscaler.protocol": ("*.py",),
    "envscaler.runtime": ("*.py", "trusted/*.py", "sandbox/*.py"),
    "envscaler.v1": ("*.py", "*.pyi"),
}
WHEEL_CACHE = Path.home() / ".cache" / "envscaler-runtime" / "wheels"
VENV = "/opt/envscaler"
DIST_NAME = "envscaler_runtime"
INSTALLATION_LABEL = "envscaler.installation"


def package_files() -> dict[str, Path]:
    """The installed files the image carries, by their path in site-packages (`envscaler/spec/loader.py`).
    Found through the import system, so an editable install (package dirs spread over a checkout) and a
    wheel install of the same sources give the same names and bytes."""
    files: dict[str, Path] = {}
    for package, patterns in RUNTIME_PACKAGES.items():
        folder = Path(str(resources.files(package)))
        prefix = package.replace(".", "/")
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder).as_posix()
            if path.is_file() and "__pycache__" not in path.parts \
                    and any(fnmatch.fnmatchcase(relative, p) and relative.count("/") == p.count("/")
                            for p in patterns):
                files[f"{prefix}/{relative}"] = path
    return files


def installation() -> str:
    """Where this package is installed (a checkout's folder, or a venv's site-packages): images carry it as a
    label, so that `images prune` removes only what this installation built."""
    return str(Path(str(resources.files("envscaler"))).resolve())


def source_digest() -> str:
    """A digest of what the image carries of this package: a code change means a new runtime image."""
    digest = hashlib.sha256()
    for name, path in sorted(package_files().items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def runtime_tag(base_id: str) -> str:
    parts = [__version__, LOCK.read_text(), source_digest(), base_id, DOCKERFILE.read_text()]
    return f"envscaler-runtime:{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()[:12]}"


def _run(command: list[str], log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise EngineError(f"{' '.join(command[:4])}… failed (exit {done.returncode}); see {log}")


def base_python(client: docker.DockerClient, base: str) -> tuple[str, str]:
    """The base's python3 path and X.Y version; the venv links to it and its wheels must match."""
    out = client.containers.run(base, ["python3", "-c", "import sys; print(sys.executable, '%d.%d' % "
                                                        "sys.version_info[:2])"], remove=True, network_mode="none")
    executable, version = out.decode().split()
    host = "{}.{}".format(*sys.version_info[:2])
    if version != host:
        raise EngineError(f"base image {base} has Python {version}; wheels are fetched for this host's {host}")
    return executable, version


def stage(target: Path, python: str, version: str, log: Path) -> None:
    """Lay out /opt/envscaler as a venv, on the host, from wheels."""
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    _run([*pip, "download", "--only-binary", ":all:", "--no-deps", "-d", str(WHEEL_CACHE), "-r", str(LOCK)], log)
    pins = [line.strip() for line in LOCK.read_text().splitlines() if line.strip() and not line.startswith("#")]
    venv = target / VENV.lstrip("/")
    site = venv / "lib" / f"python{version}" / "site-packages"
    _run([*pip, "install", "--no-index", "--no-deps", "--no-compile", "--find-links", str(WHEEL_CACHE),
          "--target", str(site), *pins], log)
    shutil.rmtree(site / "bin", ignore_errors=True)  # host-built scripts point at the host's python
    for name, path in package_files().items():  # this package as installed here, not a source tree
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, site / name)
    dist_info = site / f"{DIST_NAME}-{__version__}.dist-info"  # so importlib.metadata finds the version
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: envscaler-runtime\nVersion: {__version__}\n")
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python3").symlink_to(python)
    (venv / "bin" / "python").symlink_to("python3")
    (venv / "pyvenv.cfg").write_text(f"home = {Path(python).parent}\ninclude-system-site-packages = false\n"
                                     f"version = {version}\n")


def build_runtime(client: docker.DockerClient, base: str, log: Path) -> str:
    """Build the runtime image on `base` unless it exists; returns its tag."""
    base_id = client.images.get(base).id
    tag = runtime_tag(base_id)
    if image_exists(client, tag):
        return tag
    python, version = base_python(client, base)
    with tempfile.TemporaryDirectory(prefix="envscaler-runtime-") as tmp:
        context = Path(tmp)
        stage(context, python, version, log)
        shutil.copy(DOCKERFILE, context / "Dockerfile")
        try:
            client.images.build(path=str(context), tag=tag, buildargs={"BASE": base}, rm=True,
                                            pull=False, labels={"envscaler.base": base_id,
                                                                "envscaler.version": __version__,
                                                                INSTALLATION_LABEL: installation()})
        except docker.errors.BuildError as exc:
            with log.open("a") as out:
                out.write("\n".join(json.dumps(line) for line in exc.build_log))
            raise EngineError(f"building the runtime image failed: {exc.msg}; see {log}") from None
    return tag
