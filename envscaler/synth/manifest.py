"""Provenance of a synthesis run: model, prompt hashes, settings, timings, tokens, cost."""

from __future__ import annotations

import dataclasses
import time
from importlib import resources
from pathlib import Path
from typing import Any

from envscaler import __version__
from envscaler.synth.llm import LLM, prompt_hash
from envscaler.synth.skel import load_json, save_json


def prompt_hashes() -> dict[str, str]:
    folder = resources.files("envscaler.synth") / "prompts"
    return {entry.name[:-4]: prompt_hash(entry.name[:-4]) for entry in folder.iterdir() if entry.name.endswith(".txt")}


def write_manifest(out: Path, stage: str, llm: LLM, base_url: str, settings: Any, report: dict[str, Any],
                   seconds: float, price_in: float = 0.0, price_out: float = 0.0) -> dict[str, Any]:
    path = out / "manifest.json"
    manifest = load_json(path) or {"runs": []}
    usage = dataclasses.asdict(llm.usage)
    manifest["runs"].append({
        "stage": stage, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "envscaler_runtime": __version__, "model": llm.model, "base_url": base_url,
        "prompt_sha256": prompt_hashes(), "settings": dataclasses.asdict(settings), "seconds": round(seconds, 2),
        "usage": usage, "cost_usd": round(llm.usage.cost(price_in, price_out), 6), "report": report,
    })
    save_json(path, manifest)
    return manifest
