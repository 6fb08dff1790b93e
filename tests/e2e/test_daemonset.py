"""`examples/node-agent:node-agent-daemonset` end to end: real `./pants package` and `publish`.

One checkout, five runs: package and publish as the repository is (the image's `example`
registry in pants.toml is `skip_push`: the manifest pins it, nothing is pushed), package with
that alias pointed at a real registry on loopback (the manifest validates against the
Kubernetes schemas and pins the digest in the image's own `image.json` and layout index),
publish there (the summary names the manifest and the digest; skopeo finds that digest under
the pinned reference), and a package after a one-script change (a new digest, pinned).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.kube_schema import assert_valid_yaml
from e2e.checkout import Checkout, copy_repo, load_json

pytest.register_assert_rewrite("oci.registry_servers")
from oci.registry_servers import RegistryServer, skopeo_output  # noqa: E402

pytest_plugins = ["oci.registry_servers"]

TARGET = "examples/node-agent:node-agent-daemonset"
IMAGE = "examples/node-agent:node-agent"
MANIFEST = "examples.node-agent/node-agent-daemonset.yaml"


def pinned_image(checkout: Checkout) -> str:
    manifest = assert_valid_yaml((checkout.dist / MANIFEST).read_bytes())
    [container] = manifest["spec"]["template"]["spec"]["containers"]
    return container["image"]


def built_digest(checkout: Checkout) -> str:
    """The node-agent image's digest, from its summary and its OCI layout's index."""
    digest = load_json(checkout.dist / "examples.node-agent/node-agent.image.json")["digest"]
    index = load_json(checkout.dist / "examples.node-agent/node-agent/index.json")
    assert {m["digest"] for m in index["manifests"]} == {digest}
    return digest


def test_node_agent_daemonset_package_and_publish(
    tmp_path: Path, anonymous_registry: RegistryServer
) -> None:
    checkout = copy_repo(tmp_path / "repo")
    checkout.pants("package", TARGET, IMAGE)
    example = f"registry.example.com/examples/node-agent@{built_digest(checkout)}"
    assert pinned_image(checkout) == example
    skipped = checkout.pants("publish", TARGET).stdout
    assert f"- dist/{MANIFEST} skipped (`skip_push` is set for the `example` registry" in skipped
    assert "published" not in skipped, skipped

    host = anonymous_registry.host
    # Merged into pants.toml's registries (`+`): the `example` alias, now at the loopback.
    registries = f"--hostprocess-registries=+{{'example': {{'address': '{host}'}}}}"
    packaged = checkout.pants(registries, "package", TARGET, IMAGE)
    digest = built_digest(checkout)
    reference = f"{host}/examples/node-agent@{digest}"
    assert pinned_image(checkout) == reference
    assert f"Pins {reference}" in packaged.stdout

    (checkout.dist / MANIFEST).unlink()
    published = checkout.pants(registries, "publish", TARGET)
    lines = published.stdout.splitlines()
    image_line = f"✓ {host}/examples/node-agent:latest published to {host} as {digest}."
    manifest_line = f"✓ dist/{MANIFEST} published to dist/ as a manifest pinning {reference}."
    assert image_line in lines and manifest_line in lines, published.stdout
    assert lines.index(image_line) < lines.index(manifest_line)
    assert pinned_image(checkout) == reference
    assert json.loads(skopeo_output(reference))["Digest"] == digest

    script = checkout.root / "examples/node-agent/start-agent.ps1"
    script.write_bytes(script.read_bytes() + b'Write-NodeLog "ready"\r\n')
    checkout.pants(registries, "package", TARGET, IMAGE)
    new_digest = built_digest(checkout)
    assert new_digest != digest
    assert pinned_image(checkout) == f"{host}/examples/node-agent@{new_digest}"
