"""Record what EnvScaler's own RL environment classes return on the cases of envscaler_gem_cases.py.

    python -m tests.integration.envscaler_gem_record /path/to/EnvScaler [--commit SHA] [--out FILE]

Run from the checkout's root with an interpreter that has EnvScaler's requirements (openai, python-dotenv,
gem-llm). It imports EnvScaler's classes from that checkout (nothing of them is kept here), runs every case with
both of its copies (ROLL's under rl/roll/.../envscaler_env and interact_with_env/envscaler_env), the user model
played by tests/llm_server.py, and writes tests/data/envscaler_gem/transcripts.json: the drop-ins' test asserts
against it. The user model's prompt is the cases' own (USER_PROMPT), set on EnvScaler's module for the run.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration import envscaler_gem_cases as cases
from tests.llm_server import ScriptedLLM


def load(checkout: Path) -> dict[str, Any]:
    """EnvScaler's two copies of the classes, as packages: interact_with_env's, and ROLL's under another name."""
    sys.path.insert(0, str(checkout / "interact_with_env"))
    interact = importlib.import_module("envscaler_env")
    folder = checkout / "rl" / "roll" / "pipeline" / "agentic" / "env" / "envscaler_env"
    spec = importlib.util.spec_from_file_location("roll_envscaler_env", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    assert spec is not None and spec.loader is not None
    roll = importlib.util.module_from_spec(spec)
    sys.modules["roll_envscaler_env"] = roll
    spec.loader.exec_module(roll)
    for package in ("envscaler_env", "roll_envscaler_env"):
        importlib.import_module(f"{package}.rl_conv_env").user_system_prompt = cases.USER_PROMPT
    return {"interact_with_env": interact, "roll": roll}


def maker(package: Any) -> Any:
    def make(kind: str, tasks: Path, options: dict[str, Any]) -> Any:
        if kind == "nonconv":
            return package.EnvScalerNonConvRLEnv(mode="train", env_items_path=str(cases.ENVS),
                                                 task_items_path=str(tasks))
        return package.EnvScalerConvRLEnv(mode="train", user_model=cases.USER_MODEL,
                                          provider=options.get("provider", "openai"),
                                          env_items_path=str(cases.ENVS), task_items_path=str(tasks))
    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkout", type=Path)
    parser.add_argument("--commit", default="")
    parser.add_argument("--out", type=Path, default=cases.TRANSCRIPTS)
    args = parser.parse_args()
    commit = args.commit or subprocess.run(["git", "-C", str(args.checkout), "rev-parse", "HEAD"],
                                           capture_output=True, text=True, check=True).stdout.strip()
    packages = load(args.checkout)
    recorded: dict[str, Any] = {}
    with ScriptedLLM(respond=cases.responder()) as llm:
        cases.set_llm_environment(llm.base_url)
        for flavor, package in packages.items():
            for case in cases.cases():
                llm.respond = cases.responder()
                start = len(llm.requests)
                tasks = cases.CUSTOM_TASKS if case.tasks == "custom" else cases.BUNDLED_TASKS
                record = cases.run_case(maker(package), case, tasks)
                record["llm_requests"] = llm.requests[start:]
                recorded.setdefault(flavor, {})[case.name] = record
    version = importlib.metadata.version("gem-llm")
    args.out.write_text(json.dumps({"envscaler_commit": commit, "python": platform.python_version(),
                                    "gem_llm": version, "cases": recorded}, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}: {sum(len(v) for v in recorded.values())} cases of EnvScaler {commit[:12]}")


if __name__ == "__main__":
    main()
