"""Read EnvScaler's files as published: env metadata (a dict keyed by env_id, or a
list) and scenarios (a JSON list, or JSONL). Every problem names its record and field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from envscaler.spec.models import EnvSpec, Record, Scenario, misspelt_fields

Severity = Literal["error", "warning"]
M = TypeVar("M", bound=Record)


class SpecError(ValueError):
    """A spec file or record that cannot be used; the message names where."""


@dataclass(frozen=True)
class Problem:
    record: str
    field: str
    message: str
    severity: Severity = "error"
    line: int = 0  # in env_class_code (or the environment's source), when the problem has one

    def __str__(self) -> str:
        where = f"{self.record}: {self.field}" if self.field else self.record
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class RawRecord:
    location: str  # e.g. "191_env_metadata.json[env_3]" or "rl.jsonl:12"
    key: str | None  # the dict key in the keyed layout
    data: Any


def bundled_envs_path() -> Path:
    return Path(str(resources.files("envscaler.examples") / "env_metadata.json"))


def bundled_scenarios_path() -> Path:
    return Path(str(resources.files("envscaler.examples") / "scenarios.json"))


CHUNK = 16 << 20  # most records fit in one read: each is decoded once


def read_records(path: Path) -> list[RawRecord]:
    """Raw records of a .json (dict keyed by id, or list) or .jsonl file."""
    return list(iter_records(path))


def iter_records(path: Path) -> Iterator[RawRecord]:
    """Raw records of a .json (dict keyed by id, or list) or .jsonl file, one at a time: a list or JSONL file of
    hundreds of megabytes is never held whole, as text or parsed."""
    name = path.name
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        try:
            if path.suffix == ".jsonl":
                yield from _jsonl_records(handle, name)
                return
            head = handle.read(CHUNK)
            while head.isspace() and (data := handle.read(CHUNK)):  # up to the first character that says which
                head += data
            start = len(head) - len(head.lstrip())
            if head[start:start + 1] == "[":
                yield from _array_records(handle, head, start + 1, name)
                return
            text = head + handle.read()
        except UnicodeDecodeError as exc:
            raise SpecError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{name}: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise SpecError(f"{name}: JSON nests too deeply") from None
    if isinstance(data, dict):
        for key, value in data.items():
            yield RawRecord(f"{name}[{key}]", str(key), value)
        return
    raise SpecError(f"{name}: expected a JSON object keyed by id or a list of records, got {type(data).__name__}")


def _jsonl_records(handle: Any, name: str) -> Iterator[RawRecord]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            yield RawRecord(f"{name}:{number}", None, json.loads(line))
        except json.JSONDecodeError as exc:
            raise SpecError(f"{name}:{number}: invalid JSON: {exc.msg} at column {exc.colno}") from None
        except RecursionError:
            raise SpecError(f"{name}:{number}: JSON nests too deeply") from None


def _array_records(handle: Any, buffer: str, pos: int, name: str) -> Iterator[RawRecord]:
    """The elements of a top-level JSON array, decoded one by one from a growing buffer."""
    decoder = json.JSONDecoder()
    index, line, eof = 0, 1, False  # line: where the buffer starts, for error messages

    def more() -> bool:
        nonlocal buffer, eof
        if eof:
            return False
        data = handle.read(max(CHUNK, len(buffer)))  # doubling: a large record is re-scanned a few times at most
        eof = not data
        buffer += data
        return not eof

    def skip() -> None:
        nonlocal pos
        while True:
            while pos < len(buffer) and buffer[pos] in " \t\r\n":
                pos += 1
            if pos < len(buffer) or not more():
                return

    def invalid(message: str, at: int) -> SpecError:
        return SpecError(f"{name}[{index}]: invalid JSON: {message} at line {line + buffer.count(chr(10), 0, at)}")

    while True:
        skip()
        if pos >= len(buffer):
            raise invalid("the list is not closed with ']'", pos)
        if buffer[pos] == "]":
            pos += 1
            skip()
            if pos < len(buffer):
                raise invalid("extra data after the list", pos)
            return
        if index:
            if buffer[pos] != ",":
                raise invalid("expected ',' or ']' between records", pos)
            pos += 1
            skip()
            if pos >= len(buffer):
                raise invalid("the list is not closed with ']'", pos)
        while True:
            try:
                value, end = decoder.raw_decode(buffer, pos)
            except json.JSONDecodeError as exc:
                if more():
                    continue
                raise invalid(exc.msg, exc.pos) from None
            except RecursionError:
                raise SpecError(f"{name}: JSON nests too deeply (record {index})") from None
            if end < len(buffer) or not more():  # a number at the buffer's end may go on in the next read
                break
        yield RawRecord(f"{name}[{index}]", None, value)
        line += buffer.count("\n", 0, end)
        buffer, pos, index = buffer[end:], 0, index + 1


def _field_path(loc: Iterable[Any]) -> str:
    return ".".join(f"[{part}]" if isinstance(part, int) else str(part) for part in loc).replace(".[", "[")


def parse_record(model: type[M], record: RawRecord, defaults: dict[str, Any]) -> tuple[M | None, list[Problem]]:
    if not isinstance(record.data, dict):
        return None, [Problem(record.location, "", f"expected a JSON object, got {type(record.data).__name__}")]
    data = {**defaults, **record.data}
    # A misspelt field is the cause of what would follow (a scenario without checks, an empty init_config): the
    # record is refused and the misspelling named, not the symptom (a "Field required" for the field it meant).
    findings = misspelt_fields(model, data)
    problems = [Problem(record.location, f.path, f.message, f.severity) for f in findings]
    meant = {f.meant for f in findings if f.meant}
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        return None, problems + [Problem(record.location, path, err["msg"]) for err in exc.errors()
                                 if (path := _field_path(err["loc"])) not in meant]
    return (None, problems) if any(p.severity == "error" for p in problems) else (parsed, problems)


def parse_envs(records: Iterable[RawRecord]) -> tuple[list[tuple[RawRecord, EnvSpec]], list[Problem]]:
    envs: list[tuple[RawRecord, EnvSpec]] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for record in records:
        defaults = {"env_id": record.key} if record.key is not None else {}
        spec, found = parse_record(EnvSpec, record, defaults)
        problems += found
        if spec is None:
            continue
        if record.key is not None and spec.env_id != record.key:
            problems.append(Problem(record.location, "env_id", f"{spec.env_id!r} differs from its key {record.key!r}"))
        if spec.env_id in seen:
            problems.append(Problem(record.location, "env_id", f"duplicate env_id {spec.env_id!r}; first one kept"))
            continue
        seen.add(spec.env_id)
        envs.append((record, spec))
    return envs, problems


def parse_scenarios(records: Iterable[RawRecord]) -> tuple[list[tuple[RawRecord, Scenario]], list[Problem]]:
    """Scenarios are keyed by (env_id, task_id). EnvScaler's task ids are timestamps
    and can collide: a duplicate is kept under `<task_id>~N` and reported. The records
    returned carry their location, not their raw data (the scenario holds it)."""
    scenarios: list[tuple[RawRecord, Scenario]] = []
    problems: list[Problem] = []
    for record, scenario, found in iter_scenarios(records):
        problems += found
        if scenario is not None:
            scenarios.append((record, scenario))
    return scenarios, problems


def iter_scenarios(records: Iterable[RawRecord]) -> Iterator[tuple[RawRecord, Scenario | None, list[Problem]]]:
    """parse_scenarios one record at a time: (the record without its data, its scenario or None, its problems)."""
    seen: set[tuple[str, str]] = set()
    for record in records:
        scenario, problems = parse_record(Scenario, record, {})
        light = RawRecord(record.location, record.key, None)
        if scenario is None:
            yield light, None, problems
            continue
        task_id, n = scenario.task_id, 1
        while (scenario.env_id, task_id) in seen:
            n += 1
            task_id = f"{scenario.task_id}~{n}"
        if n > 1:
            problems.append(Problem(record.location, "task_id", f"duplicate task_id {scenario.task_id!r} for "
                                    f"{scenario.env_id}; kept as {task_id!r}", "warning"))
            scenario = scenario.model_copy(update={"task_id": task_id})
        seen.add((scenario.env_id, task_id))
        yield light, scenario, problems


@dataclass
class Corpus:
    envs: dict[str, EnvSpec] = field(default_factory=dict)
    scenarios: dict[str, dict[str, Scenario]] = field(default_factory=dict)  # env_id -> task_id -> scenario
    problems: list[Problem] = field(default_factory=list)

    def env(self, env_id: str) -> EnvSpec:
        try:
            return self.envs[env_id]
        except KeyError:
            known = ", ".join(sorted(self.envs)[:10]) or "none"
            raise SpecError(f"unknown env_id {env_id!r} (known: {known})") from None

    def scenarios_of(self, env_id: str) -> dict[str, Scenario]:
        return self.scenarios.get(env_id, {})

    def scenario(self, env_id: str, task_id: str) -> Scenario:
        try:
            return self.scenarios_of(env_id)[task_id]
        except KeyError:
            known = ", ".join(sorted(self.scenarios_of(env_id))[:10]) or "none"
            raise SpecError(f"unknown scenario {task_id!r} for {env_id} (known: {known})") from None


def as_path(value: str | os.PathLike[str] | None, what: str) -> Path | None:
    """A corpus path given as text or a Path; anything else is a TypeError naming the argument."""
    if value is None or isinstance(value, Path):
        return value
    if isinstance(value, str | os.PathLike):
        return Path(value)
    raise TypeError(f"{what}: expected a path (str or pathlib.Path), got {type(value).__name__}")


def load_corpus(envs: str | os.PathLike[str] | None = None, scenarios: str | os.PathLike[str] | None = None, *,
                strict: bool = True, only: str | None = None) -> Corpus:
    """Load env metadata and scenarios; the bundled examples when a path is None.

    strict: raise SpecError listing every error. Otherwise bad records are left
    out and listed in `Corpus.problems`. only: keep the scenarios of this one
    environment (the others are read and dropped, record by record).
    """
    envs, scenarios = as_path(envs, "envs"), as_path(scenarios, "scenarios")
    env_records = read_records(envs or bundled_envs_path())
    scen_path = scenarios if scenarios is not None else (bundled_scenarios_path() if envs is None else None)
    scen_records = iter_records(scen_path) if scen_path is not None else iter(())
    parsed_envs, problems = parse_envs(env_records)
    if only is not None:
        scen_records = (r for r in scen_records if not isinstance(r.data, dict) or r.data.get("env_id") == only)
    parsed_scens, scen_problems = parse_scenarios(scen_records)
    problems += scen_problems
    corpus = Corpus(envs={spec.env_id: spec for _, spec in parsed_envs})
    for record, scenario in parsed_scens:
        if scenario.env_id not in corpus.envs:
            problems.append(Problem(record.location, "env_id", f"unknown env_id {scenario.env_id!r}"))
            continue
        corpus.scenarios.setdefault(scenario.env_id, {})[scenario.task_id] = scenario
    corpus.problems = problems
    errors = [p for p in problems if p.severity == "error"]
    if strict and errors:
        raise SpecError("\n".join(str(p) for p in errors))
    return corpus
