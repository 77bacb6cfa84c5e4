"""Kubernetes manifests for the environment images (agent-sandbox CRDs, or one pool per node as a DaemonSet)."""
