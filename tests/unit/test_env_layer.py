"""The environment layer: the bundle belongs to the server's uid (files 0400, directories 0500), so environment
code (another uid) cannot read tasks or checks; its content hash follows every scenario."""

from __future__ import annotations

import json
import tarfile

from envscaler.images.env_image import BUNDLE_OWNER, ENV_DIR, SERVED, content_hash, plan_image
from envscaler.spec import Corpus


def test_every_bundle_file_is_the_servers_and_read_only(corpus: Corpus) -> None:
    image = plan_image(corpus.env("env_4"), corpus.scenarios_of("env_4"), "sha256:runtime")
    try:
        with tarfile.open(image.layer) as tar:
            members = tar.getmembers()
            index = json.loads(tar.extractfile(f"{ENV_DIR}/{SERVED}/index.json").read())  # type: ignore[union-attr]
    finally:
        image.discard()
    mine = [m for m in members if m.name == ENV_DIR or m.name.startswith(ENV_DIR + "/")]
    assert index == list(corpus.scenarios_of("env_4"))
    assert len([m for m in mine if m.name.endswith(".init.json")]) == len(index)  # one file per scenario
    for member in mine:
        assert (member.uid, member.gid) == (BUNDLE_OWNER, BUNDLE_OWNER), member.name
        assert member.mode == (0o500 if member.isdir() else 0o400), (member.name, oct(member.mode))
    assert {m.name for m in members} - {m.name for m in mine} == {"opt", "opt/envscaler"}
    assert not image.layer.exists()


def test_the_content_hash_changes_with_any_scenario(corpus: Corpus) -> None:
    spec, scenarios = corpus.env("env_4"), corpus.scenarios_of("env_4")
    before = content_hash(spec, scenarios, "sha256:runtime")
    image = plan_image(spec, scenarios, "sha256:runtime")
    image.discard()
    assert image.content_hash == before  # what a cached build compares, without writing a layer
    last = list(scenarios)[-1]
    changed = {**scenarios, last: scenarios[last].model_copy(update={"init_config": {
        **scenarios[last].init_config, "extra": 1}})}
    assert content_hash(spec, changed, "sha256:runtime") != before
    checks = [c.model_copy(update={"check_func": c.check_func + "\n"}) for c in scenarios[last].checklist_with_func]
    changed = {**scenarios, last: scenarios[last].model_copy(update={"checklist_with_func": checks})}
    assert content_hash(spec, changed, "sha256:runtime") != before
