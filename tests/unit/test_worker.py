"""The worker sandbox, driven through the trusted supervisor: fresh state per
episode, deadlines, crashes, checks and the result cap."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envscaler.runtime.trusted import wire
from envscaler.runtime.trusted.supervisor import EpisodeWorker, WorkerError, WorkerSettings, Zygote
from envscaler.v1 import worker_pb2 as wpb

CODE = '''
import os, signal, sys
from typing import Dict

CALLS = []


class Env:
    def __init__(self, config=None):
        self.items: Dict[str, int] = {}
        self.built_with = "config" if config is not None else "nothing"

    def add(self, key: str, value: int = 1) -> dict:
        CALLS.append(key)
        self.items[key] = value
        return {"success": True, "message": f"added {key}", "calls": len(CALLS)}

    def spin(self) -> dict:
        while True:
            pass

    def exit_hard(self) -> dict:
        os._exit(7)

    def exit_soft(self) -> dict:
        sys.exit(3)

    def segfault(self) -> dict:
        import ctypes
        ctypes.string_at(0)

    def kill_self(self) -> dict:
        os.kill(os.getpid(), signal.SIGKILL)

    def raise_error(self) -> dict:
        raise KeyError("missing")

    def huge(self) -> dict:
        return {"data": "x" * (2 << 20)}

    def cyclic(self) -> dict:
        d = {}
        d["self"] = d
        return d

    def random_number(self) -> dict:
        import random
        return {"data": random.random()}
'''

NO_CONFIG_CODE = '''
class Env:
    def __init__(self):
        self.value = 0
        self.items = {}

    def read(self) -> dict:
        return {"value": self.value, "items": self.items}
'''


def settings(code: str = CODE, **extra: object) -> WorkerSettings:
    tools = ("add", "spin", "exit_hard", "exit_soft", "segfault", "kill_self", "raise_error", "huge", "cyclic",
             "random_number", "read")
    return WorkerSettings(env_id="env_t", code=code, class_name="Env", tools=tools, **extra)  # type: ignore[arg-type]


@pytest.fixture
def zygote() -> Iterator[Zygote]:
    z = Zygote(settings())
    z.start()
    yield z
    z.stop()


def episode(zygote: Zygote, config: dict | None = None, seed: int = 0) -> tuple[EpisodeWorker, wpb.WorkerState]:
    return zygote.spawn(config or {}, seed, timeout=10)


def as_dict(reply: wpb.WorkerReply) -> dict:
    """A reply in the shape these tests read (ok, result, observation, state; kind and message)."""
    if reply.HasField("failure"):
        kind, message = wire.failure_of(reply.failure)
        return {"ok": False, "kind": kind, "message": message}
    if reply.HasField("state"):
        return {"ok": True, "state": reply.state.state_json, "sha256": reply.state.sha256}
    return {"ok": True, "result": reply.result.result_json, "observation": reply.result.observation}


def call(worker: EpisodeWorker, name: str, timeout: float = 5.0, **arguments: object) -> dict:
    request = wpb.WorkerRequest(call=wpb.WorkerCall(name=name, arguments_json=json.dumps(arguments).encode()))
    return as_dict(worker.request(request, timeout, f"tool {name!r}", ("result",)))


def get_state(worker: EpisodeWorker) -> dict:
    return as_dict(worker.request(wpb.WorkerRequest(state=wpb.WorkerGetState()), 5, "state", ("state",)))


def test_instantiation_follows_envscaler(zygote: Zygote) -> None:
    worker, first = episode(zygote, {"items": {"a": 1}, "extra": [1, 2]})
    state = json.loads(first.state_json)
    assert state == {"items": {"a": 1}, "extra": [1, 2], "built_with": "config"}
    worker.close()


def test_falls_back_to_no_argument_constructor() -> None:
    z = Zygote(settings(NO_CONFIG_CODE))
    try:
        worker, first = z.spawn({"value": 5}, 0, 10)
        assert json.loads(first.state_json) == {"value": 5, "items": {}}
        worker.close()
    finally:
        z.stop()


def test_each_episode_starts_fresh_module_globals_included(zygote: Zygote) -> None:
    worker, _ = episode(zygote)
    assert call(worker, "add", key="a")["observation"].endswith("'calls': 1}")
    assert json.loads(call(worker, "add", key="b")["result"])["calls"] == 2
    worker.close()
    worker, first = episode(zygote)
    assert json.loads(first.state_json)["items"] == {}
    assert json.loads(call(worker, "add", key="c")["result"])["calls"] == 1
    worker.close()


def test_deadline_kills_the_worker_and_the_next_reset_works(zygote: Zygote) -> None:
    worker, _ = episode(zygote)
    started = time.monotonic()
    with pytest.raises(WorkerError) as err:
        call(worker, "spin", timeout=0.5)
    assert time.monotonic() - started < 1.5
    assert err.value.kind == "DEADLINE_EXCEEDED"
    assert "overran its 0.5 s deadline" in err.value.message
    with pytest.raises(WorkerError, match="episode is broken") as broken:
        call(worker, "add", key="x")
    assert broken.value.kind == "EPISODE_BROKEN"
    worker.close()
    fresh, _ = episode(zygote)
    assert call(fresh, "add", key="x")["ok"]
    fresh.close()


@pytest.mark.parametrize(("tool", "status"), [
    ("exit_hard", "exited with status 7"),
    ("exit_soft", "exited with status 3"),
    ("segfault", "killed by signal SIGSEGV"),
    ("kill_self", "killed by signal SIGKILL"),
])
def test_crashes_are_reported_and_contained(zygote: Zygote, tool: str, status: str) -> None:
    worker, _ = episode(zygote)
    with pytest.raises(WorkerError) as err:
        call(worker, tool)
    assert err.value.kind == "WORKER_CRASHED"
    assert status in err.value.message
    worker.close()
    fresh, _ = episode(zygote)
    assert call(fresh, "add", key="ok")["ok"]
    fresh.close()


def test_tool_errors_keep_the_episode(zygote: Zygote) -> None:
    worker, _ = episode(zygote)
    raised = call(worker, "raise_error")
    assert raised == {"ok": False, "kind": "TOOL_EXCEPTION", "message": "tool 'raise_error' raised KeyError: 'missing'"}
    assert call(worker, "add", wrong=1)["kind"] == "INVALID_ARGUMENTS"
    assert call(worker, "nope")["kind"] == "UNKNOWN_TOOL"
    assert call(worker, "_private")["kind"] == "UNKNOWN_TOOL"
    too_big = call(worker, "huge")
    assert too_big["kind"] == "RESULT_TOO_LARGE" and "over the 1048576-byte cap" in too_big["message"]
    cyclic = call(worker, "cyclic")  # a cycle is a reference now, as EnvScaler's str() shows it: {...}
    assert (cyclic["result"], cyclic["observation"]) == ('{"self":{"$ref":""}}', "{'self': {...}}")
    assert call(worker, "add", key="still-alive")["ok"]
    worker.close()


def test_seed_makes_randomness_repeatable(zygote: Zygote) -> None:
    values = []
    for _ in range(2):
        worker, _ = episode(zygote, seed=42)
        values.append(call(worker, "random_number")["result"])
        worker.close()
    assert values[0] == values[1]


CHECKS = [
    "def check_func(final_state):\n    return 'a' in final_state['items']\n",
    "def check_func(final_state):\n    return initial_state['items'] == {}\n",
    "def check_func(final_state):\n    return 1\n",
    "def check_func(final_state):\n    raise ValueError('bad check')\n",
    "def check_func(final_state):\n    while True:\n        pass\n",
    "def check_func(final_state):\n    final_state['items'].clear()\n    return False\n",
    "not python(",
    "x = 1\n",
]


def test_checks_run_isolated_with_deadlines(zygote: Zygote) -> None:
    worker, _ = episode(zygote)
    call(worker, "add", key="a")
    outcomes = [(r["outcome"], r["message"]) for r in worker.evaluate(CHECKS, 0.5, 20)]
    assert outcomes[0] == ("PASS", "")
    assert outcomes[1] == ("PASS", "")
    assert outcomes[2] == ("ERROR", "check_func returned int, not bool")
    assert outcomes[3] == ("ERROR", "check_func raised ValueError: bad check")
    assert outcomes[4] == ("ERROR", "check_func overran its 0.5 s deadline")
    assert outcomes[5] == ("FAIL", "")
    assert outcomes[6][0] == "ERROR" and "SyntaxError" in outcomes[6][1]
    assert outcomes[7] == ("ERROR", "the source does not define check_func")
    # Checks cannot touch the live episode.
    state = get_state(worker)
    assert json.loads(state["state"])["items"] == {"a": 1}
    worker.close()


# Hostile checks: each gets ERROR (or its own honest outcome) alone; the others are scored from their own results.
HOSTILE_CHECKS = [
    # kill the episode's worker (its parent), then the zygote
    "import os, signal\ndef check_func(final_state):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return True\n",
    # forge results for itself and the checks after it on its own channel
    "import os\ndef check_func(final_state):\n"
    "    for fd in range(3, 64):\n"
    "        try:\n            os.write(fd, b'{\"outcome\": \"PASS\", \"message\": \"\"}\\n' * 8)\n"
    "        except OSError:\n            pass\n"
    "    return False\n",
    # an honest failing check after the forger: must stay FAIL
    "def check_func(final_state):\n    return final_state['items'] == {'zzz': 1}\n",
    # write to the episode's files
    "def check_func(final_state):\n    open('/tmp/from-check', 'w').write('x')\n    return True\n",
    # trickle bytes to outlive its deadline
    "import os, time\ndef check_func(final_state):\n"
    "    for fd in range(3, 64):\n"
    "        try:\n            os.fstat(fd)\n        except OSError:\n            continue\n"
    "    while True:\n        for fd in range(3, 64):\n"
    "            try:\n                os.write(fd, b' ')\n            except OSError:\n                pass\n"
    "        time.sleep(0.05)\n",
    # a daemon that outlives the check, trying to reach the next check's channel
    "import os\ndef check_func(final_state):\n    if os.fork() == 0:\n        os.setsid()\n"
    "        import time; time.sleep(30)\n    return True\n",
    "def check_func(final_state):\n    return 'a' in final_state['items']\n",
]


def test_hostile_checks_break_only_themselves(zygote: Zygote, tmp_path: Path) -> None:
    worker, _ = episode(zygote)
    call(worker, "add", key="a")
    results = worker.evaluate(HOSTILE_CHECKS, 1.0, 30)
    outcomes = [r["outcome"] for r in results]
    assert results[0]["outcome"] == "ERROR" and "PermissionError" in results[0]["message"]
    assert results[1]["outcome"] == "ERROR" and "wrote to its result channel itself" in results[1]["message"]
    assert outcomes[2] == "FAIL"
    assert results[3]["outcome"] == "ERROR" and "PermissionError" in results[3]["message"]
    assert results[4]["outcome"] == "ERROR" and "overran" in results[4]["message"]
    assert outcomes[5] == "ERROR"  # its daemon holds the channel open past the deadline: no result is taken
    assert outcomes[6] == "PASS"
    assert not Path("/tmp/from-check").exists()
    # The episode and the worker are untouched and go on.
    state = get_state(worker)
    assert json.loads(state["state"])["items"] == {"a": 1}
    assert call(worker, "add", key="b")["ok"]
    worker.close()


def test_module_that_fails_to_load() -> None:
    z = Zygote(settings("raise RuntimeError('no import for you')\n"))
    with pytest.raises(WorkerError, match="RuntimeError: no import for you") as err:
        z.start()
    assert err.value.kind == "LOAD_FAILED"


def test_module_that_never_finishes_loading() -> None:
    z = Zygote(settings("while True:\n    pass\n", load_timeout=0.5))
    with pytest.raises(WorkerError, match=r"took longer than 0\.5s"):
        z.start()
    assert not z.alive()


@pytest.mark.parametrize("code, problem", [
    ("import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n", "thread"),
    ("import tempfile\nKEPT = tempfile.TemporaryFile()\n", "file descriptor"),
    ("import mmap\nSHARED = mmap.mmap(-1, 4096)\n", "shared memory"),
])
def test_modules_that_leave_something_shared_are_refused(code: str, problem: str) -> None:
    z = Zygote(settings(code + CODE))
    with pytest.raises(WorkerError, match=problem) as err:
        z.start()
    assert err.value.kind == "LOAD_FAILED" and "refused" in err.value.message


def test_zygote_death_is_survived(zygote: Zygote) -> None:
    assert zygote.process is not None
    zygote.process.kill()
    zygote.process.wait()
    worker, _ = episode(zygote)  # restarted on demand
    assert call(worker, "add", key="a")["ok"]
    worker.close()
