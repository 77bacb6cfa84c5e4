"""Assemble the fidelity corpus, in EnvScaler's own formats, from tests/fidelity/sources (as
scripts/build-examples does for examples/): env_metadata.json, scenarios.json, solutions/*.jsonl.

    python -m tests.fidelity.build            write them
    python -m tests.fidelity.build --check    exit 1 when they are stale (a test runs this)
"""

from __future__ import annotations

import copy
import json
import runpy
import sys
import textwrap
from pathlib import Path
from typing import Any

from envscaler.synth.assemble import env_record

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources"


def build() -> dict[Path, str]:
    envs: dict[str, Any] = {}
    scenarios: list[dict[str, Any]] = []
    outputs: dict[Path, str] = {}
    for source in sorted(SOURCES.glob("*_scenarios.py")):
        spec = runpy.run_path(str(source))
        meta, base = spec["META"], spec["BASE"]
        code = (SOURCES / source.name.replace("_scenarios.py", "_env.py")).read_text()
        class_name = meta["env_class_name"]
        envs[meta["env_id"]] = env_record(code, class_name, meta)
        for scenario in spec["SCENARIOS"]:
            checks = [{"check_item": item, "check_func": textwrap.dedent(func).strip() + "\n"}
                      for item, func in scenario["checks"]]
            scenarios.append({
                "env_id": meta["env_id"], "env_class_name": class_name, "task_id": scenario["task_id"],
                "init_config": copy.deepcopy(scenario.get("init_config", base)), "task": scenario["task"],
                "checklist": [c["check_item"] for c in checks], "checklist_with_func": checks,
            })
            calls = [json.dumps({"name": name, "arguments": args}) for name, args in scenario["solution"]]
            outputs[HERE / "solutions" / f"{meta['env_id']}__{scenario['task_id']}.jsonl"] = "\n".join(calls) + "\n"
    outputs[HERE / "env_metadata.json"] = json.dumps(envs, indent=2, ensure_ascii=False) + "\n"
    outputs[HERE / "scenarios.json"] = json.dumps(scenarios, indent=2, ensure_ascii=False) + "\n"
    return outputs


def stale() -> list[str]:
    outputs = build()
    found = [p.name for p, text in outputs.items() if not p.exists() or p.read_text() != text]
    return found + [p.name for p in set((HERE / "solutions").glob("*.jsonl")) - set(outputs)]


def main() -> None:
    if "--check" in sys.argv:
        if problems := stale():
            sys.exit(f"the fidelity corpus is stale, run python -m tests.fidelity.build: {', '.join(problems)}")
        return
    (HERE / "solutions").mkdir(exist_ok=True)
    for path, text in build().items():
        path.write_text(text)


if __name__ == "__main__":
    main()
