"""The soak commands in docs/developing.md are not cut by the suite's 300 s timeout: each long test's own timeout
follows the duration (or count) it is asked to run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize(("variable", "value", "test", "at_least"), [
    ("ENVSCALER_LOAD_SECONDS", "300", "test_load.py::test_64_concurrent_sessions", 600),
    ("ENVSCALER_FAULT_KILLS", "200", "test_faults.py::test_containers_killed_mid_call", 1200),
])
def test_a_soak_gets_the_time_it_asks_for(variable: str, value: str, test: str, at_least: float) -> None:
    script = ("import sys, pytest\n"
              "class Timeouts:\n"
              "    def pytest_collection_modifyitems(self, items):\n"
              "        for item in items:\n"
              "            print('TIMEOUT', item.get_closest_marker('timeout').args[0])\n"
              f"sys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', "
              f"'tests/integration/{test}'], plugins=[Timeouts()]))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, variable: value})
    lines = [line for line in done.stdout.splitlines() if line.startswith("TIMEOUT ")]
    assert done.returncode == 0 and len(lines) == 1, done.stdout + done.stderr
    assert float(lines[0].split()[1]) >= at_least
