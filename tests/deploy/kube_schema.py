"""Manifests checked against the Kubernetes OpenAPI schemas by kubernetes-validate.

kubernetes-validate (pinned in python-default) bundles the JSON schemas of Kubernetes
1.25-1.37, generated from each release's OpenAPI spec. Strict mode refuses unknown fields,
so a misspelt key fails as the API server's field validation would.
"""
from __future__ import annotations

from typing import Any, Mapping

import kubernetes_validate
import kubernetes_validate.utils
import yaml

# Recent releases that HostProcess (stable since 1.26) and the pod `os` field (1.25) run on.
KUBERNETES_VERSIONS = ("1.30.0", "1.33.0", "1.37.0")


def schema_problems(manifest: Mapping[str, Any]) -> list[str]:
    """One line per Kubernetes version whose schema refuses `manifest`."""
    problems = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(dict(manifest), version, strict=True)
        except kubernetes_validate.utils.ValidationError as e:
            where = ".".join(str(p) for p in e.absolute_path)
            problems.append(f"Kubernetes {version}: {where}: {e.message}")
    return problems


def assert_valid_yaml(text: bytes) -> dict[str, Any]:
    """The one document of `text`, after checking it against every version's schema."""
    [manifest] = list(yaml.safe_load_all(text))
    problems = schema_problems(manifest)
    assert not problems, "\n".join(problems)
    return manifest
