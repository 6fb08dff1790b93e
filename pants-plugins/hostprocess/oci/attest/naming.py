"""Names the SBOMs and the provenance share: element ids, package URLs, times, the tool.

One place, so that the SPDX and CycloneDX documents of an image call each element by the
same id, and every name is a function of the inventory alone (no clock, no random uuid).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Optional

from hostprocess.oci.attest.inventory import BaseInfo, Download, FileInfo, Inventory, LayerInfo
from hostprocess.oci.attest.inventory import PackagedArtifact as Artifact

TOOL_NAME = "pants-backend-hostprocess"
PROJECT_URL = "https://github.com/hostprocess/pants-backend-hostprocess"

IMAGE_ID = "Image"
BASE_ID = "Base"

_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")
_READABLE_LENGTH = 48


def iso_time(epoch: int) -> str:
    """SOURCE_DATE_EPOCH (or 0) as ISO 8601 UTC to the second, the form both SBOMs accept."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def document_uuid(kind: str, image_digest: str) -> uuid.UUID:
    """A name-based uuid: one image's document of one kind is always called the same."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{PROJECT_URL}/{kind}/{image_digest}")


def file_id(layer_index: int, layer: LayerInfo, file: FileInfo) -> str:
    """Readable, but unique through a hash: paths may differ only in characters ids refuse."""
    return _element_id("File", file.path, str(layer_index), layer.digest, file.path)


def download_id(download: Download) -> str:
    name = download.url.rstrip("/").rsplit("/", 1)[-1]
    return _element_id("Download", name, download.url, download.sha256, download.target)


def artifact_id(artifact: Artifact) -> str:
    return _element_id("Artifact", artifact.path, artifact.target, artifact.path, artifact.sha256)


def _element_id(kind: str, readable: str, *identity: str) -> str:
    token = _UNSAFE.sub("-", readable).strip("-.")[:_READABLE_LENGTH] or "x"
    digest = hashlib.sha256("\0".join(identity).encode("utf-8")).hexdigest()[:16]
    return f"{kind}-{token}-{digest}"


def check_unique(ids: Iterable[str]) -> None:
    """Refuse a duplicate id (a hash collision, or one element listed twice)."""
    seen: set[str] = set()
    for element_id in ids:
        if element_id in seen:
            raise ValueError(f"two elements of the inventory share the id {element_id}")
        seen.add(element_id)


def oci_purl(repository: str, digest: str, arch: Optional[str] = None) -> str:
    """purl-spec's `pkg:oci`: the last path segment names it, the full repository locates it."""
    name = repository.rstrip("/").rsplit("/", 1)[-1].lower()
    qualifiers = {"repository_url": repository}
    if arch:
        qualifiers["arch"] = arch
    query = "&".join(f"{key}={qualifiers[key]}" for key in sorted(qualifiers))
    return f"pkg:oci/{name}@{digest.replace(':', '%3A')}?{query}"


def base_repository(base: BaseInfo) -> Optional[str]:
    """An external base's repository: its reference without the digest or tag."""
    if base.kind != "external" or not base.reference:
        return None
    repository = base.reference.split("@", 1)[0]
    slash = repository.rfind("/")
    colon = repository.rfind(":")
    return repository[:colon] if colon > slash else repository


def base_purl(base: BaseInfo) -> Optional[str]:
    repository = base_repository(base)
    return oci_purl(repository, base.digest) if repository else None


def base_name(base: BaseInfo) -> str:
    if base.kind == "builtin":
        return "hostprocess built-in base layer"
    if base.kind == "external":
        return base_repository(base) or base.digest
    return base.address or base.digest


def base_description(base: BaseInfo) -> str:
    if base.kind == "builtin":
        return (
            "The plugin's built-in HostProcess base layer, compatible with Microsoft's "
            "windows-host-process-containers-base-image, identified by its layer digest."
        )
    if base.kind == "external":
        return f"The base image {base.reference}, identified by its manifest digest."
    return f"The base image built by the hostprocess_image target {base.address}."


def hex_of(digest: str) -> str:
    """The hex part of `sha256:<hex>`."""
    return digest.split(":", 1)[1]


def origins(inventory: Inventory, file: FileInfo) -> list[str]:
    """Ids of the downloads and packaged artifacts a file came from."""
    downloads = [download_id(d) for d in downloads_of(inventory, file)]
    return downloads + [artifact_id(a) for a in inventory.packages if file.target == a.target]


def downloads_of(inventory: Inventory, file: FileInfo) -> list[Download]:
    """The downloads a file came from: its target fetched them, or its source is one."""
    return [
        d
        for d in inventory.downloads
        if file.target == d.target or (file.source is not None and file.source == d.path)
    ]


def base_layer_files(inventory: Inventory) -> list[tuple[int, LayerInfo, FileInfo]]:
    """The files of the built-in base layer (known by its digest); none for other bases."""
    if inventory.base.kind != "builtin":
        return []
    return [entry for entry in inventory.files() if entry[1].digest == inventory.base.digest]


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """Sorted keys, fixed indentation, UTF-8: the same document is always the same bytes."""
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
    return (text + "\n").encode("utf-8")
