"""The envscaler pytest plugin is loaded for every pytest run of this virtualenv: it must cost nothing unused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_without_docker_the_plugin_costs_nothing(tmp_path: Path) -> None:
    """A test that uses no envscaler fixture runs even when no engine is reachable."""
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_plain.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout + done.stderr
    assert "envscaler" in subprocess.run([sys.executable, "-m", "pytest", "--markers"], cwd=tmp_path,
                                         capture_output=True, text=True, timeout=60, check=False).stdout


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    """Every pytest run of an environment with envscaler-runtime installed loads the plugin: it must not need
    testcontainers, Docker or gRPC until a fixture is used."""
    script = ("import sys, envscaler.testing.plugin\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'testcontainers', 'grpc')))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
