"""`assemble`: a Python class to EnvScaler metadata (parsed, never run); user mistakes are one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import SOLUTIONS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "envscaler" / "examples"
SOURCES = EXAMPLES / "sources"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "envscaler.cli", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_a_bundled_source_assembles_to_the_bundled_records(tmp_path: Path) -> None:
    done = run_cli("assemble", str(SOURCES / "bank_env.py"), "--scenarios", str(SOURCES / "bank_scenarios.py"),
                   "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    bundled = json.loads((EXAMPLES / "env_metadata.json").read_text())["env_4"]
    assert json.loads((tmp_path / "env_metadata.json").read_text()) == {"env_4": bundled}
    scenarios = [s for s in json.loads((EXAMPLES / "scenarios.json").read_text()) if s["env_id"] == "env_4"]
    assert json.loads((tmp_path / "scenarios.json").read_text()) == scenarios
    for path in (tmp_path / "solutions").iterdir():
        assert path.read_text() == (SOLUTIONS / path.name).read_text()
    # a second environment joins the same files; assembling one again replaces its records
    again = run_cli("assemble", str(SOURCES / "library_env.py"), "--scenarios", str(SOURCES / "library_scenarios.py"),
                    "--out", str(tmp_path))
    assert again.returncode == 0 and run_cli("assemble", str(SOURCES / "bank_env.py"), "--scenarios",
                                             str(SOURCES / "bank_scenarios.py"), "--out", str(tmp_path)).returncode == 0
    assert set(json.loads((tmp_path / "env_metadata.json").read_text())) == {"env_1", "env_4"}
    assert len(json.loads((tmp_path / "scenarios.json").read_text())) == 6


def test_mistakes_are_one_line(tmp_path: Path) -> None:
    two = tmp_path / "two_env.py"
    two.write_text("class A:\n    def a(self) -> dict:\n        return {}\n\nclass B:\n    def b(self) -> dict:\n"
                   "        return {}\n")
    cases = [
        (("assemble", str(two), "--out", str(tmp_path)), "say which class with --class (2 classes have public "
                                                         "methods: A, B)"),
        (("assemble", str(two), "--class", "C", "--out", str(tmp_path)), "no class 'C' (classes: A, B)"),
        (("assemble", str(tmp_path / "missing.py"), "--out", str(tmp_path)), "cannot read"),
        (("assemble", str(two), "--class", "A", "--scenarios", str(two), "--out", str(tmp_path)), "no SCENARIOS list"),
    ]
    for args, message in cases:
        done = run_cli(*args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    (tmp_path / "broken_env.py").write_text("class A(:\n")
    broken = run_cli("assemble", str(tmp_path / "broken_env.py"), "--out", str(tmp_path))
    assert broken.returncode == 2 and "does not parse" in broken.stderr and "Traceback" not in broken.stderr
    assert not (tmp_path / "env_metadata.json").exists()  # nothing written by a failed assembly
