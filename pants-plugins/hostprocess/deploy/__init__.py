"""Kubernetes manifests for HostProcess images: pure Python, no Pants imports."""
