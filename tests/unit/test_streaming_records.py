"""Scenario files are read one record at a time (envscaler/spec/loader.py iter_records): the same records as a
whole-file parse, at any chunk size, with clear errors; validate streams too, and its peak memory stays far below the
file's parsed size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.bigcorpus import write_corpus
from envscaler.spec import loader
from envscaler.spec.loader import SpecError, iter_records, read_records


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_records_are_those_of_a_whole_parse_at_any_chunk_size(tmp_path: Path, chunk: int,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    records = [{"a": 1, "s": "x\\n]\"," * 3, "n": [1.5, -2e10, None, True]}, 12345, "tail", [], {}, 0.25]
    path = tmp_path / "s.json"
    path.write_text("  \n[\n" + ",\n ".join(json.dumps(r, indent=1) for r in records) + "\n]\n ")
    monkeypatch.setattr(loader, "CHUNK", chunk)
    got = list(iter_records(path))
    assert [r.data for r in got] == records
    assert [r.location for r in got] == [f"s.json[{i}]" for i in range(len(records))]


@pytest.mark.parametrize(("text", "message"), [
    ('[{"a": 1},\n{"b": }]', r"s\.json\[1\]: invalid JSON: Expecting value at line 2"),
    ('[{"a": 1} {"b": 2}]', r"s\.json\[1\]: invalid JSON: expected ',' or ']' between records"),
    ('[{"a": 1},', r"s\.json\[1\]: invalid JSON: the list is not closed"),
    ('[{"a": 1}] x', r"s\.json\[1\]: invalid JSON: extra data after the list"),
])
def test_a_broken_list_names_its_record_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        read_records(path)


def test_a_keyed_file_and_jsonl_still_read(tmp_path: Path) -> None:
    (tmp_path / "e.json").write_text(json.dumps({"env_1": {"x": 1}}))
    assert [(r.location, r.key) for r in read_records(tmp_path / "e.json")] == [("e.json[env_1]", "env_1")]
    (tmp_path / "s.jsonl").write_text('{"a": 1}\n\n{"b": 2}\n')
    assert [r.location for r in read_records(tmp_path / "s.jsonl")] == ["s.jsonl:1", "s.jsonl:3"]


def test_validate_streams_a_large_scenario_file(tmp_path: Path) -> None:
    envs, scenarios = write_corpus(tmp_path, 24, 2 << 20)  # ~48 MiB: ~250 MiB once parsed whole
    probe = ("import sys\nfrom pathlib import Path\nfrom envscaler.spec.validate import validate_files\n"
             "report = validate_files(Path(sys.argv[1]), Path(sys.argv[2]))\n"
             "assert sum(r.kind == 'scenario' for r in report.records) == 24\n"
             # VmHWM: this process's own peak (ru_maxrss would carry the forking pytest's over exec)
             "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')))")
    done = subprocess.run([sys.executable, "-c", probe, str(envs), str(scenarios)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    peak_mib = int(done.stdout.split()[-1]) / 1024
    assert peak_mib < 200, f"validate peaked at {peak_mib:.0f} MiB on a {scenarios.stat().st_size >> 20} MiB file"
