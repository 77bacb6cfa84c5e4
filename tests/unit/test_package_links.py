"""The links that let static tools see `envscaler.*` (envscaler/<part> -> ../<folder>) match the wheel's mapping in
pyproject.toml, one for one."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_mapped_folder_is_linked_into_the_package_and_nothing_else() -> None:
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    expected = {name.split(".", 1)[1]: folder for name, folder in mapping.items() if name != "envscaler"}
    links = {p.name: p for p in (ROOT / "envscaler").iterdir() if p.is_symlink()}
    assert set(links) == set(expected)
    for name, link in links.items():
        assert link.resolve() == (ROOT / expected[name]).resolve(), name
