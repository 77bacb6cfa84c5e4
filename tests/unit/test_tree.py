"""The tree is what Python imports: no symbolic links anywhere in the checkout (they hid the import graph from tools
that read files), and every package under envscaler/ is a real folder that the wheel ships."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_checkout_tracks_no_symbolic_links() -> None:
    listing = subprocess.run(["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    links = [line.split("\t", 1)[1] for line in listing.splitlines() if line.startswith("120000")]
    assert links == []


def test_every_package_is_a_real_folder_under_envscaler() -> None:
    for init in (ROOT / "envscaler").rglob("__init__.py"):
        assert not any(part.is_symlink() for part in [init, *init.parents] if ROOT in part.parents), init
