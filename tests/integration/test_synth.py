"""Synthesis end to end against a scripted OpenAI-compatible server: from a few
tasks to an environment that `build` compiles and the pool serves, with scenarios
whose checks hold. Each failure path is exercised: malformed JSON from the LLM, a
method that does not parse, a method that loops forever, a check that raises, a
checklist already true at the start, a task that is not stateful."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from envscaler.pool.runner import LocalPool, PoolOptions
from envscaler.spec import load_corpus
from tests.llm_server import ScriptedLLM

pytestmark = pytest.mark.integration

CLASS_CODE = '''from typing import Dict, TypedDict


class Spot(TypedDict):
    spot_id: str
    level: int
    plate: str


class ParkingGarage:
    def __init__(self, init_config=None):
        self.spots: Dict[str, Spot] = {}
'''

METHODS = {
    "list_free_spots": '''def list_free_spots(self, level: int = 0) -> dict:
    """List the free spots.

    Args:
        level: Only this level; 0 for every level.
    """
    free = [s for s in self.spots.values() if not s["plate"] and level in (0, s["level"])]
    return {"success": True, "data": free}''',
    "park": '''def park(self, spot_id: str, plate: str) -> dict:
    """Park a car in a free spot.

    Args:
        spot_id: The spot.
        plate: The car's licence plate.
    """
    spot = self.spots.get(spot_id)
    if spot is None:
        return {"success": False, "error": f"no spot {spot_id}"}
    if spot["plate"]:
        return {"success": False, "error": f"{spot_id} is taken"}
    spot["plate"] = plate
    return {"success": True, "message": f"{plate} parked in {spot_id}"}''',
    "leave": '''def leave(self, plate: str) -> dict:
    """Free the spot a car occupies.

    Args:
        plate: The car's licence plate.
    """
    for spot in self.spots.values():
        if spot["plate"] == plate:
            spot["plate"] = ""
            return {"success": True, "message": f"{plate} left {spot['spot_id']}"}
    return {"success": False, "error": f"{plate} is not parked here"}''',
    "find_car": '''def find_car(self, plate: str) -> dict:
    """Find where a car is parked.

    Args:
        plate: The car's licence plate.
    """
    for spot in self.spots.values():
        if spot["plate"] == plate:
            return {"success": True, "data": spot}
    return {"success": False, "error": f"{plate} is not parked here"}''',
    "broken_syntax": "def broken_syntax(self:\n    return {}",
    "slow_report": "def slow_report(self) -> dict:\n    while True:\n        pass",
}
OPERATIONS = [{"operation_name": name, "operation_description": name.replace("_", " "),
               "operation_type": "query" if name in ("list_free_spots", "find_car", "slow_report") else "state_change"}
              for name in METHODS]
CALLER_PLAN = [("list_free_spots", {}), ("park", {"spot_id": "A2", "plate": "T-1"}), ("find_car", {"plate": "T-1"}),
               ("leave", {"plate": "T-1"}), ("park", {"spot_id": "A1", "plate": "T-2"}), ("slow_report", {}),
               ("find_car", {"plate": "NOPE"}), ("list_free_spots", {"level": 2})]
TASKS = [
    "Please park my car with plate KX-101 in a free spot on level 1 and tell me which one it went to.",
    "I want to reserve a parking space for my van and later move it to the second level of the garage.",
    "What is the capital of France?",
]
WORDS = ("The driver of the car with plate {plate} arrives at the garage this morning and wants it parked in "
         "spot {spot}, which should be free right now. Please park it there, confirm which level that spot is on, "
         "and make sure no other car is moved or removed while you do it, since the garage is busy today and "
         "every other customer expects their car to stay where it is.")


def config(variation: int) -> dict[str, Any]:
    spots = {"A1": {"spot_id": "A1", "level": 1, "plate": ""}, "A2": {"spot_id": "A2", "level": 1, "plate": "OLD-7"},
             "B1": {"spot_id": "B1", "level": 2, "plate": ""}}
    if variation == 1:
        spots["C1"] = {"spot_id": "C1", "level": 3, "plate": ""}
    if variation == 2:
        spots["A1"]["plate"] = "GO-2"  # the car of scenario 2 is already there: its check is true at the start
    return {"spots": spots}


def reply(payload: dict[str, Any]) -> dict[str, Any]:
    return {"content": json.dumps(payload)}


def respond(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Answer each synthesis prompt as a well-behaved (mostly) LLM would."""
    text = messages[-1]["content"]
    first = messages[1]["content"] if len(messages) > 1 else ""
    if "Decide whether the user request" in text:
        return reply({"stateful": "capital" not in text, "reason": "scripted"})
    if "Infer the software environment" in text:
        return reply({"environment_summary": "Parking garage", "environment_introduction": "A multi-level garage "
                      "with numbered spots. It tracks which car is parked where. Attendants park and release cars.",
                      "usefulness": 8, "modelability": 9})
    if "Design the state of this environment" in first:
        if len(messages) == 2:
            return {"content": "Sure! Here is the state: {spots: [unquoted"}  # malformed: repaired on retry
        return reply({"state_space_definition": [{"entity": "Spot", "attributes": "spot_id, level, plate",
                                                  "description": "a parking spot"}],
                      "constraints_rules": ["A spot holds at most one car."]})
    if "Write the Python class definition" in text:
        return reply({"env_class_name": "ParkingGarage", "code": CLASS_CODE})
    if "List the operations" in text:
        return reply({"operation_list": OPERATIONS})
    if "Write one method" in text:
        name = re.search(r"Operation: (\w+) \(", text).group(1)
        return reply({"code": METHODS[name]})
    if "Write an initial state" in text:
        match = re.search(r"Variation (\d+)", text)
        return reply({"init_config": config(int(match.group(1)) - 1 if match else 0)})
    if "You test an environment's tools" in text:
        calls = json.loads(re.search(r"called least so far: (\{.*?\})\.", text).group(1))
        tool, arguments = CALLER_PLAN[sum(calls.values()) % len(CALLER_PLAN)]
        return reply({"tool": tool, "arguments": arguments, "case": "positive"})
    if "Judge whether this tool behaved" in text:
        return reply({"verdict": "Pass", "reason": "scripted"})
    if "Write a realistic user task" in text:
        variation = 2 if '"GO-2"' in text else (1 if '"C1"' in text else 0)
        plate, spot = [("RUN-0", "A1"), ("BAD-1", "B1"), ("GO-2", "A1")][variation]
        index = {"A1": 0, "B1": 1}[spot]
        return reply({"task": WORDS.format(plate=plate, spot=spot) + f" (ticket {variation}-{index})"})
    if "Write a checklist" in text:
        plate, spot = re.search(r"plate (\S+) arrives .* spot (\w+),", text).groups()
        return reply({"checklist": [f"Has {plate} been parked in {spot}?", "Has A2 kept its car?"]})
    if "Write check_func" in text:
        item = re.search(r"Item: (.*)\n", text).group(1)
        if item.startswith("Has A2"):
            return reply({"check_func": "def check_func(final_state):\n"
                                        "    return final_state['spots']['A2']['plate'] == 'OLD-7'\n"})
        plate, spot = re.search(r"Has (\S+) been parked in (\w+)", item).groups()
        if plate == "BAD-1":  # raises on the initial state
            return reply({"check_func": "def check_func(final_state):\n"
                                        "    return final_state['garage'][0] == 'x'\n"})
        return reply({"check_func": f"def check_func(final_state):\n"
                                    f"    return final_state['spots']['{spot}']['plate'] == '{plate}'\n"})
    return None


def synth(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "envscaler.cli", "synth", *args], capture_output=True, text=True,
                          timeout=600, check=False)


@pytest.fixture(scope="module")
def synthesized(engine: docker.DockerClient, runtime_image: str,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ScriptedLLM]]:
    out = tmp_path_factory.mktemp("synth")
    tasks = out / "tasks.json"
    tasks.write_text(json.dumps([{"task": t} for t in TASKS]))
    with ScriptedLLM(respond=respond) as llm:
        common = ["--out", str(out), "--model", "scripted", "--base-url", llm.base_url, "--sandbox", "container"]
        skel = synth("skel", "--tasks", str(tasks), "--rounds", "8", *common)
        assert skel.returncode == 0, skel.stderr
        scen = synth("scen", "--envs", str(out / "env_metadata.json"), "--per-env", "3", *common)
        assert scen.returncode == 0, scen.stderr
        yield out, llm


def env_id(out: Path) -> str:
    return f"env_{out.name}_1"  # the run's prefix, from the output folder: never the bundled env_1


def test_skelbuilder_output_and_its_failure_paths(synthesized: tuple[Path, ScriptedLLM]) -> None:
    out, _ = synthesized
    topics = json.loads((out / "stage1_topics.json").read_text())
    assert [t["kept"] for t in topics] == [True, False, False]
    assert topics[1]["reason"].startswith("duplicate of") and topics[2]["reason"].startswith("not stateful")
    corpus = load_corpus(out / "env_metadata.json", None)
    assert list(corpus.envs) == [env_id(out)] and env_id(out) != "env_1"
    spec = corpus.env(env_id(out))
    names = [t["function"]["name"] for t in spec.tools]
    assert names == ["list_free_spots", "park", "leave", "find_car"]  # broken_syntax and slow_report are gone
    code = json.loads((out / "stage2" / "parking_garage.json").read_text())
    assert "does not parse" in code["dropped_methods"]["broken_syntax"]
    quality = json.loads((out / "stage3" / "parking_garage.json").read_text())
    assert quality["dropped_tools"] == ["slow_report"] and quality["score"] == 0.875
    assert any(v["tool"] == "slow_report" and "DEADLINE_EXCEEDED" in v["reason"] for v in quality["verdicts"])
    assert quality["sandbox"].startswith("hardened container")
    manifest = json.loads((out / "manifest.json").read_text())
    skel_run = manifest["runs"][0]
    assert skel_run["usage"]["repairs"] >= 1 and skel_run["usage"]["prompt_tokens"] > 0
    assert set(skel_run["prompt_sha256"]) >= {"judge_stateful", "method", "checker_agent"}


def test_scengenerator_keeps_only_checked_scenarios(synthesized: tuple[Path, ScriptedLLM]) -> None:
    out, _ = synthesized
    scenarios = json.loads((out / "scenarios.json").read_text())
    assert len(scenarios) == 1 and scenarios[0]["env_id"] == env_id(out)
    reasons = sorted(r["reason"] for r in json.loads((out / "rejections.json").read_text())[env_id(out)])
    assert reasons[0].startswith("a check fails to run on the initial state") and "KeyError" in reasons[0]
    assert reasons[1] == "the initial state already satisfies every check"


def test_rerunning_is_free(synthesized: tuple[Path, ScriptedLLM]) -> None:
    out, llm = synthesized
    before = len(llm.requests)
    common = ["--out", str(out), "--model", "scripted", "--base-url", llm.base_url, "--sandbox", "container"]
    assert synth("skel", "--tasks", str(out / "tasks.json"), "--rounds", "8", *common).returncode == 0
    assert synth("scen", "--envs", str(out / "env_metadata.json"), "--per-env", "3", *common).returncode == 0
    assert len(llm.requests) == before


def test_the_synthesized_environment_builds_and_is_served(synthesized: tuple[Path, ScriptedLLM]) -> None:
    out, _ = synthesized
    envs, scenarios = out / "env_metadata.json", out / "scenarios.json"
    build = subprocess.run([sys.executable, "-m", "envscaler.cli", "build", "--envs", str(envs), "--scenarios",
                            str(scenarios)], capture_output=True, text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    scenario = json.loads(scenarios.read_text())[0]
    with LocalPool(envs=envs, scenarios=scenarios, options=PoolOptions(size=1, acquire_wait=60)) as local, \
            local.pool.session(env_id(out), scenario["task_id"]) as session:
        assert session.evaluate().reward < 1.0
        assert session.call("list_free_spots", {"level": 1}).ok
        assert session.call("park", {"spot_id": "A1", "plate": "RUN-0"}).ok
        assert session.evaluate().reward == 1.0


def test_an_endpoint_that_fails_is_not_cached_as_rejections_and_the_rerun_retries(engine: docker.DockerClient,
                                                                                    runtime_image: str,
                                                                                    tmp_path: Path) -> None:
    out = tmp_path / "garage"
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps(TASKS))
    down = {"on": True}

    def flaky(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
        text = messages[-1]["content"] if messages else ""
        if down["on"] and "Decide whether the user request" in text:  # every stage-1 judgement fails
            return {"status": 503}
        return respond(messages)

    with ScriptedLLM(respond=flaky) as llm:
        common = ["--out", str(out), "--model", "scripted", "--base-url", llm.base_url, "--sandbox", "process",
                  "--llm-retries", "0", "--rounds", "8", "--tasks", str(tasks)]
        first = synth("skel", *common)
        assert first.returncode == 1 and "run the same command again" in first.stderr, first.stderr
        assert "Traceback" not in first.stderr
        topics = json.loads((out / "stage1_topics.json").read_text())
        assert all(t["transient"] and not t["kept"] for t in topics)
        assert json.loads((out / "env_metadata.json").read_text()) == {}
        down["on"] = False
        before = len(llm.requests)
        second = subprocess.run([sys.executable, "-m", "envscaler.cli", "synth", "skel", *common],
                                capture_output=True, text=True, timeout=600, check=False,
                                env={**os.environ, "COLUMNS": "300"})
        assert second.returncode == 0, second.stderr
        assert len(llm.requests) > before  # asked again, not read back as a rejection
    assert list(json.loads((out / "env_metadata.json").read_text())) == ["env_garage_1"]
    # stage-1 rejections are in the report with their reasons
    assert "not stateful" in second.stdout and "duplicate of" in second.stdout, second.stdout


def test_retry_failed_asks_again_for_rejected_drafts_and_keeps_the_accepted(
        synthesized: tuple[Path, ScriptedLLM], tmp_path: Path) -> None:
    source, _ = synthesized
    out = tmp_path / "scen"
    fixed = {"on": False}

    def learning(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
        text = messages[-1]["content"] if messages else ""
        if fixed["on"] and "Write check_func" in text and "BAD-1" in text:  # the model does better this time
            return reply({"check_func": "def check_func(final_state):\n"
                                        "    return final_state['spots']['B1']['plate'] == 'BAD-1'\n"})
        return respond(messages)

    with ScriptedLLM(respond=learning) as llm:
        common = ["scen", "--envs", str(source / "env_metadata.json"), "--per-env", "3", "--out", str(out),
                  "--model", "scripted", "--base-url", llm.base_url, "--sandbox", "process"]
        assert synth(*common).returncode == 0
        assert len(json.loads((out / "scenarios.json").read_text())) == 1
        fixed["on"] = True
        before = len(llm.requests)
        assert synth(*common).returncode == 0 and len(llm.requests) == before  # rejections are kept as they are
        accepted = json.loads((out / "scenarios.json").read_text())
        retried = synth(*common, "--retry-failed")
        assert retried.returncode == 0, retried.stderr
        assert len(llm.requests) > before
    scenarios = json.loads((out / "scenarios.json").read_text())
    assert scenarios[0] == accepted[0] and len(scenarios) == 2 and "BAD-1" in scenarios[1]["task"]
    rejections = json.loads((out / "rejections.json").read_text())[env_id(source)]
    assert [r["reason"] for r in rejections] == ["the initial state already satisfies every check"]
