"""Awkward state and awkward results through a real server: the episode runs on the Python objects, what
cannot be encoded is said in band, and nothing that escapes environment code ends the worker silently."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envscaler.client import EnvClient
from envscaler.spec import EnvSpec, Scenario
from envscaler.spec.models import CheckSpec
from tests.conftest import serve_env

CODE = '''
import threading


class Dir:
    def __init__(self, name, parent=None):
        self.name = name
        self.parent = parent
        self.children = {}


class Unprintable:
    def __repr__(self):
        raise ValueError("no str for you")


class BadMessage(Exception):
    def __str__(self):
        raise RuntimeError("nor for you")


class Env:
    def __init__(self, config=None):
        self.root = Dir("/")
        self.cwd = self.root
        if config and config.get("with_lock"):
            self.guard = threading.Lock()

    def mkdir(self, name: str) -> dict:
        child = Dir(name, self.cwd)
        self.cwd.children[name] = child
        return {"success": True, "message": f"made {name}"}

    def cd(self, name: str) -> dict:
        self.cwd = self.cwd.parent if name == ".." else self.cwd.children[name]
        return {"success": True, "data": self.cwd.name}

    def pwd_node(self) -> dict:
        return {"success": True, "data": self.cwd}

    def nest(self, levels: int) -> dict:
        chain = {}
        node = chain
        for _ in range(levels):
            node["next"] = {}
            node = node["next"]
        self.chain = chain
        return {"success": True}

    def unnest(self) -> dict:
        del self.chain
        return {"success": True}

    def add_lock(self) -> dict:
        self.lock = threading.Lock()
        return {"success": True}

    def unprintable(self) -> dict:
        return {"success": True, "data": Unprintable()}

    def surrogate(self) -> str:
        return "half \\ud800 a pair"

    def raise_surrogate(self) -> dict:
        raise ValueError("bad \\udc80 text")

    def interrupt(self) -> dict:
        raise KeyboardInterrupt

    def sigint_later(self) -> dict:
        import os, signal
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
        os.kill(os.getpid(), signal.SIGINT)
        return {"success": True}

    def bad_message(self) -> dict:
        raise BadMessage()

    def long_message(self) -> dict:
        raise ValueError("x" * 10_000_000)
'''

CYCLE_CHECKS = [
    CheckSpec(check_item="a docs dir whose parent is the root",
              check_func="def check_func(final_state):\n"
                         "    docs = final_state['root'].children['docs']\n"
                         "    return docs.parent is final_state['root'] and final_state['cwd'] is docs"),
    CheckSpec(check_item="initial_state is the Python state at reset",
              check_func="def check_func(final_state):\n"
                         "    return initial_state['root'].children == {} and initial_state['cwd'] is "
                         "initial_state['root']"),
]


@pytest.fixture
def client(sock_dir: Path) -> Iterator[EnvClient]:
    spec = EnvSpec(env_id="env_awk", env_class_name="Env", env_class_code=CODE)
    scenarios = {"tree": Scenario(env_id="env_awk", task_id="tree", init_config={}, checklist_with_func=CYCLE_CHECKS)}
    with serve_env(spec, scenarios, sock_dir) as running, EnvClient(running.address) as env:
        yield env


def test_a_cyclic_state_resets_encodes_and_passes_its_checks(client: EnvClient) -> None:
    reset = client.reset("tree")
    assert not reset.state_error_kind
    assert reset.state == {"cwd": {"__type__": "Dir", "children": {}, "name": "/", "parent": None},
                           "root": {"$ref": "/cwd"}}  # one object in two places: the second is a pointer
    assert client.call("mkdir", {"name": "docs"}).ok
    assert client.call("cd", {"name": "docs"}).result == {"success": True, "data": "docs"}
    node = client.call("pwd_node", {})  # a result holding a back-reference
    assert node.result["data"]["parent"]["children"]["docs"] == {"$ref": "/data"}
    state = client.state()
    assert state.state["cwd"]["parent"]["children"]["docs"] == {"$ref": "/cwd"}
    assert state.state["root"] == {"$ref": "/cwd/parent"}
    assert client.evaluate().reward == 1.0


def test_a_state_too_deep_to_encode_is_reported_in_band_and_the_episode_goes_on(client: EnvClient) -> None:
    client.reset("tree")
    assert client.call("nest", {"levels": 1000}).ok  # the call itself never depends on the state's encoding
    state = client.state()
    assert state.state is None and state.sha256 == ""
    assert state.error_kind == "UNSERIALIZABLE_STATE" and "deeper than 200 levels" in state.error_message
    assert client.call("mkdir", {"name": "docs"}).ok
    assert client.evaluate().passed == 1  # checks read the Python state
    assert client.call("unnest", {}).ok
    assert client.state().sha256


def test_a_state_that_cannot_be_deep_copied_still_runs(client: EnvClient) -> None:
    client.reset("tree")
    assert client.call("add_lock", {}).ok
    assert client.call("mkdir", {"name": "docs"}).ok
    assert client.call("cd", {"name": "docs"}).ok
    assert client.state().state["lock"]["__type__"] == "lock"
    # EnvScaler's own deepcopy of such a state raises; here the checks see it copied around the lock.
    assert client.evaluate().reward == 1.0
    assert client.call("cd", {"name": ".."}).ok


def test_results_that_do_not_travel_are_typed_errors(client: EnvClient) -> None:
    client.reset("tree")
    unprintable = client.call("unprintable", {})
    assert unprintable.error_kind == "UNSERIALIZABLE_RESULT"
    assert "str() of the result of 'unprintable' raised ValueError: no str for you" in unprintable.error_message
    surrogate = client.call("surrogate", {})
    assert surrogate.ok and surrogate.result == "half \ud800 a pair"
    assert surrogate.observation == "half \\ud800 a pair"  # JSON's escape: the text stays valid UTF-8
    raised = client.call("raise_surrogate", {})
    assert raised.error_kind == "TOOL_EXCEPTION" and "bad \\udc80 text" in raised.error_message
    interrupted = client.call("interrupt", {})
    assert (interrupted.error_kind, interrupted.error_message) == ("TOOL_EXCEPTION",
                                                                   "tool 'interrupt' raised KeyboardInterrupt")
    bad = client.call("bad_message", {})
    assert bad.error_kind == "TOOL_EXCEPTION" and "BadMessage (its message cannot be shown" in bad.error_message
    long = client.call("long_message", {})
    assert long.error_kind == "TOOL_EXCEPTION" and len(long.error_message) <= 4000
    assert not any(r.episode_broken for r in (unprintable, surrogate, raised, interrupted, bad, long))
    assert client.call("sigint_later", {}).ok  # a SIGINT now and one between requests end nothing
    time.sleep(0.2)
    assert client.call("mkdir", {"name": "still-alive"}).ok


def test_reset_succeeds_and_says_so_when_the_initial_state_has_no_json(client: EnvClient) -> None:
    deep: dict = {}
    for _ in range(300):
        deep = {"next": deep}
    reset = client.reset(init_config={"chain": deep})
    assert reset.state is None and reset.state_sha256 == ""
    assert reset.state_error_kind == "UNSERIALIZABLE_STATE" and "deeper than 200 levels" in reset.state_error_message
    assert client.call("mkdir", {"name": "docs"}).ok
    evaluation = client.evaluate(scenario="tree")
    assert evaluation.checks[1].outcome == "PASS"  # initial_state is the Python state all the same


def test_reset_says_when_the_initial_state_cannot_be_deep_copied(client: EnvClient) -> None:
    reset = client.reset(init_config={"with_lock": True})
    assert reset.state is not None and reset.state["guard"]["__type__"] == "lock"  # it still has JSON
    assert reset.state_error_kind == "UNSERIALIZABLE_STATE"
    assert "deepcopy of the state raised TypeError: cannot pickle '_thread.lock' object" in reset.state_error_message
    assert client.call("mkdir", {"name": "docs"}).ok and client.call("cd", {"name": "docs"}).ok
    assert client.evaluate(scenario="tree").reward == 1.0  # initial_state was copied around the lock
