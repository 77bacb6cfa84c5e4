"""`envscaler-runtime build`: content-addressed, thin, and a bad spec fails alone."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import docker
import pytest

from envscaler import __version__
from envscaler.cli import main
from envscaler.images.build import build_envs
from envscaler.images.env_image import repository
from envscaler.spec import load_corpus
from envscaler.spec.loader import bundled_envs_path, bundled_scenarios_path

pytestmark = pytest.mark.integration


def test_second_build_is_all_cached(engine: docker.DockerClient, runtime_image: str,
                                    example_images: dict[str, str]) -> None:
    again = build_envs(engine, load_corpus(), runtime_image)
    assert {r.status for r in again} == {"cached"}
    assert {r.env_id: r.tag for r in again} == example_images


def test_env_layer_is_thin_and_labelled(engine: docker.DockerClient, runtime_image: str,
                                        example_images: dict[str, str]) -> None:
    runtime = engine.images.get(runtime_image)
    corpus = load_corpus()
    for env_id, tag in example_images.items():
        image = engine.images.get(tag)
        own_layer = image.attrs["Size"] - runtime.attrs["Size"]
        assert 0 < own_layer < 100_000, (env_id, own_layer)
        assert image.history()[0]["Size"] == own_layer
        assert image.attrs["RootFS"]["Layers"][:-1] == runtime.attrs["RootFS"]["Layers"]
        spec = corpus.env(env_id)
        assert tag == f"{repository(env_id)}:{image.labels['envscaler.content-hash'][:16]}"
        assert tag.startswith(f"envscaler-env/{env_id}-")
        assert image.labels["envscaler.env-id"] == env_id
        assert image.labels["envscaler.spec-hash"] == spec.spec_hash
        assert image.labels["envscaler.tool-count"] == str(len(spec.tools or []))
        assert image.labels["envscaler.version"] == __version__
        assert image.attrs["Config"]["User"] == "10001:10001"


def test_changed_scenarios_rebuild_under_a_new_content_tag(engine: docker.DockerClient, runtime_image: str,
                                                           example_images: dict[str, str], tmp_path: Path) -> None:
    scenarios = json.loads(bundled_scenarios_path().read_text())
    for scenario in scenarios:
        if scenario["env_id"] == "env_3":
            scenario["task"] += " Please be quick."
    changed = tmp_path / "scenarios.json"
    changed.write_text(json.dumps(scenarios))
    corpus = load_corpus(bundled_envs_path(), changed)
    (result,) = build_envs(engine, corpus, runtime_image, only=["env_3"])
    assert result.status == "built" and result.tag != example_images["env_3"]
    assert result.tag.split(":")[0] == example_images["env_3"].split(":")[0]
    (restored,) = build_envs(engine, load_corpus(), runtime_image, only=["env_3"])
    # back to the original content: its own tag, which was never overwritten
    assert restored.status == "cached" and restored.tag == example_images["env_3"]
    engine.images.remove(result.tag)


def test_a_bad_spec_fails_alone(engine: docker.DockerClient, runtime_image: str, example_images: dict[str, str],
                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    envs = json.loads(bundled_envs_path().read_text())
    broken = dict(envs["env_2"], env_id="env_9", env_class_code="class ClinicScheduler(:\n")
    envs["env_9"] = broken
    path = tmp_path / "envs.json"
    path.write_text(json.dumps(envs))
    code = main(["build", "--envs", str(path), "--scenarios", str(bundled_scenarios_path())])
    out = capsys.readouterr().out
    assert code == 1
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    assert "failed" in rows["env_9"] and "does not parse" in out
    assert all("cached" in rows[f"env_{i}"] for i in range(1, 9))


def test_prune_removes_images_of_older_sources_only(engine: docker.DockerClient, runtime_image: str,
                                                    example_images: dict[str, str]) -> None:
    from envscaler.images.build import corpus_tags
    from envscaler.images.env_image import load_archive, plan_image
    from envscaler.images.prune import UNLABELLED, prune, stale_images
    from envscaler.images.runtime_image import INSTALLATION_LABEL

    corpus = load_corpus()
    runtime = engine.images.get(runtime_image).attrs
    stale = plan_image(corpus.env("env_1"), corpus.scenarios_of("env_1"), "sha256:" + "0" * 64)
    stale = type(stale)(env_id=stale.env_id, tag="envscaler-env/env_1:stale0000000", content_hash=stale.content_hash,
                        labels=stale.labels, layer=stale.layer)
    # The same, built by another installation sharing the engine, and by a version before the label existed.
    other = type(stale)(env_id=stale.env_id, tag="envscaler-env/env_1:other0000000", content_hash=stale.content_hash,
                        labels={**stale.labels, INSTALLATION_LABEL: "/elsewhere/envscaler"}, layer=stale.layer)
    unlabelled = type(stale)(env_id=stale.env_id, tag="envscaler-env/env_1:unlab000000", labels={
        k: v for k, v in stale.labels.items() if k != INSTALLATION_LABEL}, content_hash=stale.content_hash,
        layer=stale.layer)
    engine.images.load(load_archive(runtime, [stale, other]))
    bare = {**runtime, "Config": {**runtime["Config"], "Labels": {  # env images inherit the runtime's labels
        k: v for k, v in (runtime["Config"].get("Labels") or {}).items() if k != INSTALLATION_LABEL}}}
    engine.images.load(load_archive(bare, [unlabelled]))
    stale.discard()  # the layer's temporary file
    assert len({engine.images.get(i.tag).id for i in (stale, other, unlabelled)}) == 3
    current = corpus_tags(corpus, runtime["Id"])
    try:
        assert "envscaler-env/env_1:stale0000000" in {t for i in stale_images(engine) for t in i.tags}
        dry = prune(engine, dry_run=True, corpus_builds=current)
        assert "envscaler-env/env_1:stale0000000" in dry.removed
        assert dry.kept_other["/elsewhere/envscaler"] >= 1 and dry.kept_other[UNLABELLED] >= 1
        result = prune(engine, corpus_builds=current)
        assert "envscaler-env/env_1:stale0000000" in result.removed
        assert not {"envscaler-env/env_1:other0000000", "envscaler-env/env_1:unlab000000"} & set(result.removed)
        for tag in [runtime_image, *example_images.values(), other.tag, unlabelled.tag]:
            engine.images.get(tag)  # what the current sources use, and what is not ours, is kept
    finally:
        for tag in (other.tag, unlabelled.tag):
            engine.images.remove(tag)


def test_prune_removes_what_an_edit_superseded(engine: docker.DockerClient, runtime_image: str,
                                              example_images: dict[str, str], tmp_path: Path) -> None:
    """Each edit of an environment's scenarios (a `check` iteration) builds a new image on the same runtime: prune,
    through the real CLI, removes the superseded one and keeps what the corpus it is given builds now; an environment
    the corpus lacks keeps its images."""
    envs = json.loads(bundled_envs_path().read_text())
    scenarios = [dict(s, env_id="env_draft") for s in json.loads(bundled_scenarios_path().read_text())
                 if s["env_id"] == "env_2"]
    (tmp_path / "envs.json").write_text(json.dumps({"env_draft": dict(envs["env_2"], env_id="env_draft")}))
    built = []
    for edit in ("first draft", "second draft"):
        for scenario in scenarios:
            scenario["task"] += f" ({edit}, {tmp_path.name})"
        (tmp_path / "scenarios.json").write_text(json.dumps(scenarios))
        (result,) = build_envs(engine, load_corpus(tmp_path / "envs.json", tmp_path / "scenarios.json"), runtime_image)
        assert result.status == "built", result.message
        built.append(result.tag)
    corpus = ["--envs", str(tmp_path / "envs.json"), "--scenarios", str(tmp_path / "scenarios.json")]
    try:
        assert main(["images", "prune", "--dry-run", *corpus]) == 0
        engine.images.get(built[0])  # a dry run removes nothing
        assert main(["images", "prune", *corpus]) == 0
        with pytest.raises(docker.errors.ImageNotFound):
            engine.images.get(built[0])  # the first draft: superseded
        engine.images.get(built[1])  # what the corpus builds now
        assert main(["images", "prune"]) == 0  # the bundled corpus, which has no env_draft: it is left alone
        for tag in [built[1], *example_images.values()]:
            engine.images.get(tag)
    finally:
        for tag in built:
            with contextlib.suppress(docker.errors.ImageNotFound):
                engine.images.remove(tag)


def test_the_runtime_image_holds_only_the_sandbox_side_and_the_protocol(engine: docker.DockerClient,
                                                                         runtime_image: str) -> None:
    """Listed from the image itself: of this package, only envscaler/__init__.py, the sandbox side (runtime/) and
    what it speaks (protocol/, the generated v1 messages): no pool, client, spec, CLI or examples."""
    from envscaler.images.runtime_image import VENV, package_files

    listing = engine.containers.run(
        runtime_image, ["-c", "import envscaler, pathlib; root = pathlib.Path(envscaler.__file__).parent; "
                              "print('\\n'.join(sorted(p.relative_to(root.parent).as_posix() for p in root.rglob('*') "
                              "if p.is_file() and '__pycache__' not in p.parts)))"],
        entrypoint=[f"{VENV}/bin/python3"], remove=True, network_mode="none", user="10001").decode().split()
    assert {name.split("/")[1] for name in listing if name.count("/") > 1} == {"protocol", "runtime", "v1"}
    assert [name for name in listing if name.count("/") == 1] == ["envscaler/__init__.py"]
    assert set(listing) == set(package_files())
    modules = engine.containers.run(
        runtime_image, ["-c", "import importlib.util as u; print([m for m in ('envscaler.cli', 'envscaler.pool', "
                              "'envscaler.client', 'envscaler.spec', 'envscaler.examples') if u.find_spec(m)])"],
        entrypoint=[f"{VENV}/bin/python3"], remove=True, network_mode="none", user="10001").decode().strip()
    assert modules == "[]"
