"""Peak memory and time of the corpus tools on a large scenario file, before and after streaming.

    .venv/bin/python -m bench.corpus_memory [--scenarios 64 --state-mb 3]   # ~193 MiB, as in issue 19

"Before" runs envscaler/spec/loader.py and envscaler/spec/validate.py as they were at the merge base
with main (read from git), "after" the current ones; each in a fresh process,
whose peak RSS (VmHWM) is reported. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.bigcorpus import write_corpus
from bench.machine import machine

ROOT = Path(__file__).resolve().parent.parent
OLD = """
import subprocess, sys, types
base = subprocess.run(["git", "merge-base", "HEAD", "main"], capture_output=True, text=True, check=True,
                      cwd=sys.argv[3]).stdout.strip()
def old(name, path):
    source = subprocess.run(["git", "show", f"{base}:{path}"], capture_output=True, text=True, check=True,
                            cwd=sys.argv[3]).stdout
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(source, f"old {path}", "exec"), module.__dict__)
    return module
import envscaler.spec
loader = old("envscaler.spec.loader", "envscaler/spec/loader.py")
validate = old("envscaler.spec.validate", "envscaler/spec/validate.py")
"""
NEW = "import envscaler.spec.loader as loader, envscaler.spec.validate as validate\n"
TASKS = {
    "load (build, replay, serve)": "corpus = loader.load_corpus(Path(sys.argv[1]), Path(sys.argv[2]))\n",
    "validate": "report = validate.validate_files(Path(sys.argv[1]), Path(sys.argv[2]))\n",
}
# VmHWM: the process's own peak RSS (ru_maxrss would carry this parent's over exec).
MEASURE = ("import sys, time\nfrom pathlib import Path\nstarted = time.perf_counter()\n{setup}{task}"
           "print(time.perf_counter() - started, "
           "next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')))\n")


def run(setup: str, task: str, envs: Path, scenarios: Path) -> tuple[float, float]:
    done = subprocess.run([sys.executable, "-c", MEASURE.format(setup=setup, task=task), str(envs), str(scenarios),
                           str(ROOT)], capture_output=True, text=True, check=True)
    seconds, kib = done.stdout.split()[-2:]
    return float(seconds), int(kib) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.corpus_memory", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=64)
    parser.add_argument("--state-mb", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        envs, scenarios = write_corpus(Path(tmp), args.scenarios, int(args.state_mb * (1 << 20)))
        size = scenarios.stat().st_size / 2**20
        lines = [f"Scenario file: {args.scenarios} scenarios, {size:.0f} MiB. Machine: {machine()}.", "",
                 "| tool | before: peak MiB | before: s | after: peak MiB | after: s |", "|---|---:|---:|---:|---:|"]
        for name, task in TASKS.items():
            before = run(OLD, task, envs, scenarios)
            after = run(NEW, task, envs, scenarios)
            lines.append(f"| {name} | {before[1]:.0f} | {before[0]:.1f} | {after[1]:.0f} | {after[0]:.1f} |")
            print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
