"""A user's own test of their own environment, written with envscaler.testing's pytest plugin (three lines of
set-up), run by pytest in a subprocess against real hardened containers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import docker
import pytest

from envscaler.containers.launch import OWNER_LABEL
from envscaler.pool.liveness import reap_dead_pools
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

TODO_ENV = '''
class TodoList:
    """A to-do list."""

    def __init__(self, config):
        self.todos = list(config.get("todos", []))

    def add_todo(self, title: str) -> dict:
        """Add a to-do item.

        Args:
            title: what to do
        """
        self.todos.append({"title": title, "done": False})
        return {"success": True, "count": len(self.todos)}

    def complete(self, title: str) -> dict:
        """Mark a to-do item done.

        Args:
            title: the item's title
        """
        for todo in self.todos:
            if todo["title"] == title:
                todo["done"] = True
                return {"success": True}
        return {"success": False, "error": f"no to-do {title!r}"}
'''

USER_TEST = '''
import pytest
pytestmark = pytest.mark.envscaler(envs="corpus/envs.json", scenarios="corpus/scenarios.json", env_id="env_todo")


@pytest.mark.envscaler(scenario="buy-milk")
def test_buying_milk_is_done(env_session):
    assert env_session.call("add_todo", {"title": "milk"}).ok
    assert env_session.call("complete", {"title": "milk"}).ok
    assert env_session.evaluate().reward == 1.0


@pytest.mark.envscaler(scenario="buy-milk")
def test_an_unfinished_list_fails(env_session):
    env_session.call("add_todo", {"title": "milk"})
    assert env_session.evaluate().reward == 0.0


def test_the_pool_lists_the_environment(envscaler_pool):
    assert [e.env_id for e in envscaler_pool.pool.list_envs().envs] == ["env_todo"]
'''


def readme_examples() -> list[str]:
    """The Python blocks of the README's section on testing your own environments, verbatim."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Testing your own environments", 1)[1].split("\n## ", 1)[0]
    return [block.split("\n```", 1)[0] for block in section.split("```python\n")[1:]]


def write_project(root: Path) -> None:
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "envs.json").write_text(json.dumps({"env_todo": {
        "env_id": "env_todo", "env_class_name": "TodoList", "env_class_code": TODO_ENV,
        "environment_summary": "a to-do list"}}))
    check = "def check_func(final_state):\n    return any(t['title'] == 'milk' and t['done'] " \
            "for t in final_state['todos'])\n"
    (corpus / "scenarios.json").write_text(json.dumps([{
        "env_id": "env_todo", "env_class_name": "TodoList", "task_id": "buy-milk", "init_config": {"todos": []},
        "task": "Add milk to the list and mark it done.",
        "checklist_with_func": [{"check_item": "milk is done", "check_func": check}]}]))
    (root / "test_my_env.py").write_text(textwrap.dedent(USER_TEST))
    (root / "test_readme.py").write_text(readme_examples()[0])


def test_a_user_test_passes_against_hardened_containers(tmp_path: Path, engine: docker.DockerClient,
                                                        runtime_image: str) -> None:
    write_project(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "TESTCONTAINERS_"))}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "4 passed" in done.stdout  # ours and the README's, verbatim
    leftovers = [c.name for c in engine.containers.list(ignore_removed=True, all=True, filters={"label": OWNER_LABEL})
                 if c.attrs["Config"]["Image"].startswith("envscaler-env/env_todo")]
    assert leftovers == []  # the session's pool removed its containers



def test_the_readme_container_example_runs_verbatim(tmp_path: Path, runtime_image: str) -> None:
    script = readme_examples()[1] + "\nprint('reset', env.episode_id != '')\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESTCONTAINERS_")}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          check=False, env=env)
    assert done.returncode == 0 and "reset True" in done.stdout, done.stderr[-3000:]


def test_a_crashed_test_process_leaves_nothing_for_long(engine: docker.DockerClient, runtime_image: str) -> None:
    """SIGKILL-like death (no atexit): its container carries a pool label whose lock died with it, so the next pool
    or test session (reap_dead_pools) removes it."""
    script = ("import os\nfrom envscaler.testing import EnvScalerContainer\n"
              "container = EnvScalerContainer('env_1').start()\n"
              "print(container.get_wrapped_container().id, flush=True)\nos._exit(9)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 9, done.stderr[-3000:]
    container_id = done.stdout.strip()
    assert engine.containers.get(container_id).status == "running"  # left behind by the crash
    reap_dead_pools(engine)
    assert [c for c in engine.containers.list(ignore_removed=True, all=True) if c.id == container_id] == []
