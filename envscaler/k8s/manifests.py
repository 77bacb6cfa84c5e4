"""Kubernetes objects for the environment images, as plain dicts (pure functions; writing them is cli.py's).

Two ways to run the sandboxes on a cluster:
- agent-sandbox (kubernetes-sigs/agent-sandbox): per environment a `SandboxTemplate` (the pod, hardened the way
  envscaler/containers/hardening.py hardens a container) and a `SandboxWarmPool` of ready pods, plus a deny-all
  `NetworkPolicy` that lets in only the trainers' gRPC;
- one pool per node: a `DaemonSet` running `envscaler-runtime pool` against the node's own Docker engine (what
  envscaler.ray does on a Ray cluster), behind a node-local `Service`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from envscaler.images.env_image import ENV_DIR, PYTHON, SERVED, repository
from envscaler.protocol.addresses import SOCKET_DIR
from envscaler.protocol.identities import SERVER_UID

GROUP = "extensions.agents.x-k8s.io"
API_VERSION = f"{GROUP}/v1beta1"
PORT = 50051
PART_OF = "envscaler-sandbox"
CLIENT_LABEL = {"envscaler.io/client": "true"}  # pods allowed to reach the sandboxes (trainers, rollout workers)


@dataclass(frozen=True)
class Settings:
    namespace: str = "envscaler"
    registry: str = "localhost:5000"
    runtime_class: str = "gvisor"
    warm: int = 4  # ready pods per environment in its SandboxWarmPool
    memory_mb: int = 512
    cpus: float = 1.0
    tmpfs_mb: int = 64
    pool_image: str = "localhost:5000/envscaler-pool:0.1.0"
    pool_size: int = 32  # containers per node, DaemonSet variant


def k8s_name(env_id: str, prefix: str = "envscaler") -> str:
    """A DNS-1123 label for an environment: readable part plus a hash of the exact id (ids that read the same stay
    apart), at most 63 characters."""
    readable = re.sub(r"[^a-z0-9-]+", "-", env_id.lower()).strip("-")[:40].rstrip("-") or "env"
    return f"{prefix}-{readable}-{hashlib.sha256(env_id.encode()).hexdigest()[:8]}"


def image_ref(env_id: str, spec_hash: str, settings: Settings) -> str:
    """Where the cluster pulls an environment's image from: push the local image under this name."""
    return f"{settings.registry}/{repository(env_id)}:spec-{spec_hash[:16]}"


def _quantity_cpu(cpus: float) -> str:
    return f"{round(cpus * 1000)}m"


def sandbox_pod_spec(image: str, settings: Settings) -> dict[str, Any]:
    """The environment server in one pod, fenced as tightly as Kubernetes lets a pod spec say: gVisor, read-only
    root, no capability, no privilege escalation, RuntimeDefault seccomp, a non-root uid, no service account token,
    memory and CPU limits, a small in-memory /tmp. It listens on TCP (a pod has no Unix-socket route from outside)."""
    memory = f"{settings.memory_mb}Mi"
    resources = {"cpu": _quantity_cpu(settings.cpus), "memory": memory}
    return {
        "runtimeClassName": settings.runtime_class,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostNetwork": False, "hostPID": False, "hostIPC": False,
        "restartPolicy": "Never",  # a sandbox that dies is replaced, never restarted with its state
        "securityContext": {"runAsNonRoot": True, "runAsUser": SERVER_UID, "runAsGroup": SERVER_UID,
                            "fsGroup": SERVER_UID, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "env",
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "command": [PYTHON, "-m", "envscaler.runtime.trusted.serve_bundle"],
            "args": [f"/{ENV_DIR}/{SERVED}", "--listen", f"tcp:0.0.0.0:{PORT}"],
            "ports": [{"name": "grpc", "containerPort": PORT, "protocol": "TCP"}],
            "env": [{"name": "ENVSCALER_WORKER_MEMORY_BYTES", "value": str((settings.memory_mb << 20) * 3 // 4)},
                    {"name": "ENVSCALER_CLIENT_CHECKS", "value": "0"}],
            "resources": {"limits": resources, "requests": dict(resources)},  # Guaranteed QoS
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "privileged": False, "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
            "readinessProbe": {"grpc": {"port": PORT}, "periodSeconds": 2, "failureThreshold": 3},
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "run", "mountPath": SOCKET_DIR}],
        }],
        "volumes": [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": f"{settings.tmpfs_mb}Mi"}},
                    {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}],
    }


def _labels(env_id: str) -> dict[str, str]:
    return {"app.kubernetes.io/part-of": PART_OF, "envscaler.io/env": k8s_name(env_id)}


def sandbox_template(env_id: str, image: str, settings: Settings) -> dict[str, Any]:
    name = k8s_name(env_id)
    return {
        "apiVersion": API_VERSION, "kind": "SandboxTemplate",
        "metadata": {"name": name, "namespace": settings.namespace, "labels": _labels(env_id),
                     "annotations": {"envscaler.io/env-id": env_id}},
        "spec": {
            "envVarsInjectionPolicy": "Disallowed",
            # The template's own policy (one per template): the trainers' gRPC in, nothing out.
            "networkPolicyManagement": "Managed",
            "networkPolicy": {"ingress": [{"from": [{"podSelector": {"matchLabels": dict(CLIENT_LABEL)}}],
                                           "ports": [{"protocol": "TCP", "port": PORT}]}],
                              "egress": []},
            "podTemplate": {"metadata": {"labels": _labels(env_id)}, "spec": sandbox_pod_spec(image, settings)},
        },
    }


def warm_pool(env_id: str, settings: Settings) -> dict[str, Any]:
    name = k8s_name(env_id)
    return {
        "apiVersion": API_VERSION, "kind": "SandboxWarmPool",
        "metadata": {"name": name, "namespace": settings.namespace, "labels": _labels(env_id)},
        "spec": {"replicas": settings.warm, "sandboxTemplateRef": {"name": name},
                 "updateStrategy": {"type": "Recreate"}},  # a new image replaces the warm pods at once
    }


def deny_all(settings: Settings) -> dict[str, Any]:
    """Whatever the controller does with the templates' own policies: every sandbox pod of the namespace takes
    only the trainers' gRPC and sends nothing (no DNS, no metadata server, no internet)."""
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "envscaler-sandboxes-deny-all", "namespace": settings.namespace},
        "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": PART_OF}},
                 "policyTypes": ["Ingress", "Egress"],
                 "ingress": [{"from": [{"podSelector": {"matchLabels": dict(CLIENT_LABEL)}}],
                              "ports": [{"protocol": "TCP", "port": PORT}]}],
                 "egress": []},
    }


def namespace(name: str, level: str) -> dict[str, Any]:
    """A namespace whose Pod Security admission level is enforced: `restricted` for the sandboxes (their pods must
    pass it), `privileged` for the pools (they hold the node's Docker socket)."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": level}}}


def pool_namespace(settings: Settings) -> str:
    return f"{settings.namespace}-pools"


POOL_STATE = "/var/lib/envscaler"  # host path, mounted at the same path: the engine resolves bind mounts on the host


def pool_daemonset(env_ids: list[str], settings: Settings) -> dict[str, Any]:
    """One pool per node on the node's Docker engine, which runs the sandboxes with the full Docker hardening
    (privilege split, pids limit, 10 ms CFS period; --runtime runsc for gVisor). The pool is trusted code with the
    engine's socket (root on the node): it must run on nodes given to it alone."""
    labels = {"app.kubernetes.io/name": "envscaler-pool", "app.kubernetes.io/part-of": "envscaler"}
    only = ["--only", *env_ids] if env_ids else []
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "envscaler-pool", "namespace": pool_namespace(settings), "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"envscaler.io/sandbox-node": "true"},
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 120,  # the pool drains and removes its containers
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "pool",
                        "image": settings.pool_image,
                        "command": ["envscaler-runtime", "pool", "--listen", f"tcp:0.0.0.0:{PORT}",
                                    "--metrics-listen", "0.0.0.0:9464", "--size", str(settings.pool_size),
                                    "--runtime", "runsc", "--memory-mb", str(settings.memory_mb),
                                    "--cpus", str(settings.cpus), *only],
                        "ports": [{"name": "grpc", "containerPort": PORT, "protocol": "TCP"},
                                  {"name": "metrics", "containerPort": 9464, "protocol": "TCP"}],
                        "env": [{"name": "TMPDIR", "value": f"{POOL_STATE}/tmp"},
                                {"name": "ENVSCALER_POOL_LOCKS", "value": f"{POOL_STATE}/locks"}],
                        "readinessProbe": {"grpc": {"port": PORT, "service": "envscaler.v1.PoolService"},
                                           "periodSeconds": 5},
                        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                                      "limits": {"memory": "2Gi"}},
                        # root with only what launch.py uses: chown and a tmpfs mount per socket directory
                        "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": False,
                                            "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"],
                                                             "add": ["CHOWN", "FOWNER", "SYS_ADMIN"]}},
                        "volumeMounts": [{"name": "docker", "mountPath": "/var/run/docker.sock"},
                                         {"name": "state", "mountPath": POOL_STATE}],
                    }],
                    "volumes": [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}},
                                {"name": "state", "hostPath": {"path": POOL_STATE, "type": "DirectoryOrCreate"}}],
                },
            },
        },
    }


def pool_service(settings: Settings) -> dict[str, Any]:
    """Each trainer pod reaches the pool of its own node (internalTrafficPolicy Local): no cross-node hop."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "envscaler-pool", "namespace": pool_namespace(settings)},
        "spec": {"selector": {"app.kubernetes.io/name": "envscaler-pool"}, "internalTrafficPolicy": "Local",
                 "ports": [{"name": "grpc", "port": PORT, "targetPort": "grpc", "protocol": "TCP"}]},
    }


def all_manifests(envs: dict[str, str], settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """{file name: objects} for `envs` ({env_id: spec_hash}): the agent-sandbox set, and the DaemonSet set."""
    sandbox = [namespace(settings.namespace, "restricted"), deny_all(settings)]
    for env_id, spec_hash in sorted(envs.items()):
        image = image_ref(env_id, spec_hash, settings)
        sandbox += [sandbox_template(env_id, image, settings), warm_pool(env_id, settings)]
    return {"agent-sandbox.yaml": sandbox,
            "pool-daemonset.yaml": [namespace(pool_namespace(settings), "privileged"),
                                    pool_daemonset(sorted(envs), settings), pool_service(settings)]}
