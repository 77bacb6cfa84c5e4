"""`envscaler-runtime k8s manifests`: the generated objects validated against the published schemas — the
Kubernetes OpenAPI models of the official `kubernetes` client for core objects, agent-sandbox's CRD schemas
(tests/data/agent-sandbox) for its resources — and checked for the hardening they must carry. No cluster here:
this is validation on paper."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from envscaler.cli import main
from envscaler.k8s.manifests import Settings, all_manifests, k8s_name

kubernetes = pytest.importorskip("kubernetes")
from kubernetes.client import ApiClient  # noqa: E402

CRDS = Path(__file__).resolve().parent.parent / "data" / "agent-sandbox"
MODELS = {"Namespace": "V1Namespace", "NetworkPolicy": "V1NetworkPolicy", "DaemonSet": "V1DaemonSet",
          "Service": "V1Service"}


def crd_schema(kind: str) -> dict[str, Any]:
    return json.loads((CRDS / f"{kind.lower()}.v1beta1.json").read_text())["openAPIV3Schema"]


def pruned(instance: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the API server would silently drop (structural pruning): not in a schema that lists properties and
    does not preserve unknown fields."""
    if isinstance(instance, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        dropped = []
        for key, value in instance.items():
            if props is not None and key in props:
                dropped += pruned(value, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                dropped += pruned(value, extra, f"{path}.{key}")
            elif props is not None and not schema.get("x-kubernetes-preserve-unknown-fields") and not (
                    path == "" and key == "metadata") and path != ".metadata":
                dropped.append(f"{path}.{key}")
        return dropped
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        return [d for i, item in enumerate(instance) for d in pruned(item, schema["items"], f"{path}[{i}]")]
    return []


def crd_problems(obj: dict[str, Any]) -> list[str]:
    schema = crd_schema(obj["kind"])
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(obj)]
    return errors + [f"{p}: not in the schema (would be pruned)" for p in pruned(obj, schema)]


def round_trip(data: dict[str, Any], model: str) -> dict[str, Any]:
    """Through the kubernetes client's OpenAPI model and back: unknown or mistyped fields do not survive."""
    client = ApiClient()
    return client.sanitize_for_serialization(client._ApiClient__deserialize(data, model))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("k8s")
    assert main(["k8s", "manifests", "--out", str(out), "--registry", "registry.test/team"]) == 0
    return {p.name: list(yaml.safe_load_all(p.read_text())) for p in sorted(out.glob("*.yaml"))}


def test_one_template_and_one_warm_pool_per_environment(generated: dict[str, list[dict[str, Any]]],
                                                        corpus: Any) -> None:
    objects = generated["agent-sandbox.yaml"]
    templates = {o["metadata"]["annotations"]["envscaler.io/env-id"]: o for o in objects
                 if o["kind"] == "SandboxTemplate"}
    pools = [o for o in objects if o["kind"] == "SandboxWarmPool"]
    assert set(templates) == set(corpus.envs)
    assert sorted(p["spec"]["sandboxTemplateRef"]["name"] for p in pools) == \
        sorted(t["metadata"]["name"] for t in templates.values())
    for env_id, template in templates.items():
        image = template["spec"]["podTemplate"]["spec"]["containers"][0]["image"]
        assert image.startswith("registry.test/team/envscaler-env/")
        assert image.endswith(corpus.envs[env_id].spec_hash[:16])


def test_agent_sandbox_objects_validate_against_the_vendored_crd_schemas(
        generated: dict[str, list[dict[str, Any]]]) -> None:
    crs = [o for o in generated["agent-sandbox.yaml"] if o["apiVersion"].startswith("extensions.agents.x-k8s.io/")]
    assert {o["kind"] for o in crs} == {"SandboxTemplate", "SandboxWarmPool"}
    for obj in crs:
        assert crd_problems(obj) == [], obj["metadata"]["name"]


def test_the_pod_template_is_a_valid_kubernetes_pod_template(generated: dict[str, list[dict[str, Any]]]) -> None:
    for obj in generated["agent-sandbox.yaml"]:
        if obj["kind"] == "SandboxTemplate":
            pod = obj["spec"]["podTemplate"]
            assert round_trip(pod, "V1PodTemplateSpec") == pod


def test_core_objects_validate_against_the_kubernetes_openapi_models(
        generated: dict[str, list[dict[str, Any]]]) -> None:
    core = [o for objs in generated.values() for o in objs if o["kind"] in MODELS]
    assert {o["kind"] for o in core} == set(MODELS)
    for obj in core:
        assert round_trip(obj, MODELS[obj["kind"]]) == obj, obj["kind"]


def test_sandbox_pods_carry_the_hardening(generated: dict[str, list[dict[str, Any]]]) -> None:
    objects = generated["agent-sandbox.yaml"]
    policy = next(o for o in objects if o["kind"] == "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"] and policy["spec"]["egress"] == []
    namespace = next(o for o in objects if o["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for template in (o for o in objects if o["kind"] == "SandboxTemplate"):
        pod = template["spec"]["podTemplate"]
        spec = pod["spec"]
        assert spec["runtimeClassName"] == "gvisor" and spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["securityContext"]["runAsNonRoot"] is True
        (container,) = spec["containers"]
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]} and context["privileged"] is False
        assert container["resources"]["limits"] == {"cpu": "1000m", "memory": "512Mi"}
        # the namespace's deny-all policy selects these pods
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        assert template["spec"]["networkPolicy"]["egress"] == []


def test_the_daemonset_runs_one_pool_per_node_on_the_nodes_engine(
        generated: dict[str, list[dict[str, Any]]]) -> None:
    objects = {o["kind"]: o for o in generated["pool-daemonset.yaml"]}
    pod = objects["DaemonSet"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][:2] == ["envscaler-runtime", "pool"] and "runsc" in container["command"]
    assert {"name": "docker", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}} in pod["volumes"]
    assert objects["Service"]["spec"]["internalTrafficPolicy"] == "Local"
    assert objects["Namespace"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_the_checks_catch_a_misspelled_or_mistyped_field() -> None:
    """The validation above can fail: a typo is pruned by the CRD and dropped by the client's model."""
    objects = all_manifests({"env_1": "ab" * 32}, Settings())["agent-sandbox.yaml"]
    template = next(o for o in objects if o["kind"] == "SandboxTemplate")
    warm = next(o for o in objects if o["kind"] == "SandboxWarmPool")
    template["spec"]["podTemplate"]["spec"]["runtimeClass"] = "gvisor"
    assert crd_problems(template) == [".spec.podTemplate.spec.runtimeClass: not in the schema (would be pruned)"]
    assert round_trip(template["spec"]["podTemplate"], "V1PodTemplateSpec") != template["spec"]["podTemplate"]
    warm["spec"]["replicas"] = "four"
    assert any("replicas" in p for p in crd_problems(warm))
    del warm["spec"]["sandboxTemplateRef"]
    assert any("sandboxTemplateRef" in p for p in crd_problems(warm))


def test_names_are_dns_labels_and_keep_ids_apart() -> None:
    names = {k8s_name(e) for e in ["Env_A", "env_a", "env-a", "x" * 200]}
    assert len(names) == 4
    assert all(len(n) <= 63 and n.replace("-", "").isalnum() and n == n.lower() for n in names)


def test_bad_arguments_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["k8s", "manifests", "--out", str(tmp_path), "--only", "no_such_env"]) == 2
    assert "no_such_env" in capsys.readouterr().err
    assert main(["k8s", "manifests", "--out", str(tmp_path), "--warm", "-1"]) == 2
    assert "--warm" in capsys.readouterr().err
