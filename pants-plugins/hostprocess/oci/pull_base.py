"""Fetch an image pinned by digest, verified blob by blob: an external base, or an image
that a `hostprocess_image_test` tests.

The result is a directory holding the manifest and config bytes and every layer blob
under `blobs/sha256/`, which the Pants rules cache by the pinned digest: once pulled, an
image never touches the network again. A base must be Windows for the image's architecture;
an image under test is pulled whatever its platform, so that its test reports what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hostprocess.oci.commands import CONFIG_FILE, MANIFEST_FILE
from hostprocess.oci.image import (
    BaseImageError,
    check_windows_platform,
    image_from_manifest,
    manifest_family,
)
from hostprocess.oci.layout import blob_path
from hostprocess.oci.reference import Reference
from hostprocess.oci.registry import RegistryClient
from hostprocess.oci.types import INDEX_MEDIA_TYPES


@dataclass(frozen=True)
class PulledImage:
    reference: str
    layers: int
    bytes: int


def pull_base(
    client: RegistryClient, reference: Reference, architecture: str | None, out: Path
) -> PulledImage:
    """Write `reference`'s manifest, config and layers under `out`. With an `architecture`
    (a base), the image must be Windows for it; without (an image under test), any platform
    is pulled. An index is refused either way: the caller pins one of its manifests."""
    if not reference.digest:
        raise BaseImageError(f"{reference} is not pinned by digest")
    manifest = client.pull_manifest(reference.repository, reference.digest)
    parsed = json.loads(manifest)
    media_type = parsed.get("mediaType")
    if media_type in INDEX_MEDIA_TYPES or (media_type is None and "manifests" in parsed):
        raise BaseImageError(_index_message(reference, manifest, for_base=architecture is not None))
    if manifest_family(parsed) is None:
        raise BaseImageError(f"{reference} is a {media_type!r}, not an image manifest")
    out.mkdir(parents=True, exist_ok=True)
    (out / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    config_path = out / CONFIG_FILE
    config_descriptor = parsed["config"]
    client.pull_blob(
        reference.repository, config_descriptor["digest"], config_descriptor["size"], config_path
    )
    config = config_path.read_bytes()
    if architecture is not None:
        _check_platform(reference, json.loads(config), architecture)
    image = image_from_manifest(manifest, config)
    for layer in image.layers:
        client.pull_blob(
            reference.repository, layer.digest, layer.size, out / blob_path(layer.digest)
        )
    (out / MANIFEST_FILE).write_bytes(manifest)
    return PulledImage(str(reference), len(image.layers), sum(layer.size for layer in image.layers))


def _check_platform(reference: Reference, config: dict, architecture: str) -> None:
    def explain(key: str, found: Any) -> str:
        if key == "os":
            return (
                f"{reference} is a {found!r} image: a HostProcess image can only be built on a "
                f"Windows image"
            )
        return f"{reference} is for {found!r}, but the image is for {architecture!r}"

    check_windows_platform(config, architecture, explain)


def _index_message(reference: Reference, index: bytes, *, for_base: bool) -> str:
    """Name the image manifests inside an index, so the user can pin the right one."""
    entries = []
    for entry in json.loads(index).get("manifests", []):
        platform = entry.get("platform", {})
        described = "/".join(
            filter(
                None, (platform.get("os"), platform.get("architecture"), platform.get("os.version"))
            )
        )
        entries.append(
            f"  {reference.registry}/{reference.repository}@{entry.get('digest')} ({described or 'no platform'})"
        )
    fix = (
        "pin the digest of the Windows image manifest for your architecture instead"
        if for_base
        else "test one manifest by its digest instead, one of"
    )
    return (
        f"{reference} is an image index (a manifest list), not a single image: {fix}:\n"
        + "\n".join(entries or ["  (the index lists no manifests)"])
    )
