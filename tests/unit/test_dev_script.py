"""`./dev run` runs in the caller's directory: relative paths given by the user are theirs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import ROOT


def test_dev_run_keeps_the_callers_directory(tmp_path: Path) -> None:
    for name in ("env_metadata.json", "scenarios.json"):
        shutil.copy(ROOT / "envscaler" / "examples" / name, tmp_path / f"my-{name}")
    done = subprocess.run([str(ROOT / "dev"), "run", "validate", "--envs", "my-env_metadata.json", "--scenarios",
                           "my-scenarios.json", "--json"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "my-env_metadata.json" not in done.stderr  # found, not "cannot read"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-env_metadata.json", "my-scenarios.json"]
