"""Headless Chromium for the tests that look at pages (Debian's chromium driven by Playwright; scripts/ensure-browser
installs it and ./dev test runs that), and where their screenshots go for a person to look at."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.conftest import ROOT

ARTIFACTS = Path(os.environ.get("ENVSCALER_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))


def chromium() -> str:
    path = os.environ.get("ENVSCALER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("no chromium: run scripts/ensure-browser (./dev test does)")
    return path


@contextlib.contextmanager
def launched() -> Iterator[Browser]:
    with sync_playwright() as p:
        # Chromium's own sandbox refuses to start as root (CI containers); the pages it loads are our own
        browser = p.chromium.launch(executable_path=chromium(), headless=True,
                                    args=["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            yield browser
        finally:
            browser.close()
