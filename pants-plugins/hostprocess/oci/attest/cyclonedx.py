"""The image's CycloneDX 1.6 JSON SBOM: the SPDX document's content, for CycloneDX tooling.

The image is `metadata.component` (type container); its base, every file of every layer,
each download and each packaged artifact are components, with the same ids (`bom-ref`) as
the SPDX document's elements. Plugin-specific facts (a file's `C:\\` path, layer, Pants
target and source) are `hostprocess:` properties, as CycloneDX asks of extensions.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from hostprocess.oci.attest import naming
from hostprocess.oci.attest.inventory import (
    Download,
    FileInfo,
    Inventory,
    LayerInfo,
    PackagedArtifact,
)

SPEC_VERSION = "1.6"

# Component type of a packaged artifact, by its Pants target type.
_ARTIFACT_TYPES = {"pex_binary": "application"}


def cyclonedx_document(inventory: Inventory, tool_version: str) -> bytes:
    """The SBOM as canonical JSON bytes: a function of the inventory and the plugin version."""
    image = inventory.image
    components = [_base(inventory)]
    components += [_file(i, layer, f) for i, layer, f in inventory.files()]
    components += [_download(d) for d in inventory.downloads]
    components += [_artifact(a) for a in inventory.packages]
    naming.check_unique([naming.IMAGE_ID] + [c["bom-ref"] for c in components])
    document = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{naming.document_uuid('cyclonedx', image.digest)}",
        "version": 1,
        "metadata": {
            "timestamp": naming.iso_time(image.created),
            "tools": {
                "components": [
                    {"type": "application", "name": naming.TOOL_NAME, "version": tool_version}
                ]
            },
            "component": _image(inventory),
        },
        "components": components,
        "dependencies": _dependencies(inventory),
    }
    return naming.canonical_json(document)


def _image(inventory: Inventory) -> dict[str, Any]:
    image = inventory.image
    properties = [
        ("hostprocess:target", image.address),
        ("hostprocess:repository", image.repository),
        ("hostprocess:architecture", image.architecture),
        ("hostprocess:media_type", image.media_type),
        ("hostprocess:size", str(image.size)),
    ] + [("hostprocess:tag", tag) for tag in image.tags]
    return {
        "type": "container",
        "bom-ref": naming.IMAGE_ID,
        "name": image.name,
        "version": image.digest,
        "hashes": [_sha256(naming.hex_of(image.digest))],
        "purl": naming.oci_purl(image.repository, image.digest, image.architecture),
        "properties": _properties(properties),
    }


def _base(inventory: Inventory) -> dict[str, Any]:
    base = inventory.base
    component: dict[str, Any] = {
        "type": "container",
        "bom-ref": naming.BASE_ID,
        "name": naming.base_name(base),
        "version": base.digest,
        "description": naming.base_description(base),
        "hashes": [_sha256(naming.hex_of(base.digest))],
        "properties": _properties([("hostprocess:base_kind", base.kind)]),
    }
    purl = naming.base_purl(base)
    if purl:
        component["purl"] = purl
    return component


def _file(layer_index: int, layer: LayerInfo, file: FileInfo) -> dict[str, Any]:
    properties = [
        ("hostprocess:windows_path", file.windows_path),
        ("hostprocess:size", str(file.size)),
        ("hostprocess:layer_digest", layer.digest),
        ("hostprocess:layer", layer.label),
        ("hostprocess:target", file.target),
        ("hostprocess:source", file.source),
    ]
    return {
        "type": "file",
        "bom-ref": naming.file_id(layer_index, layer, file),
        "name": file.path,
        "hashes": [{"alg": "SHA-1", "content": file.sha1}, _sha256(file.sha256)],
        "properties": _properties(properties),
    }


def _download(download: Download) -> dict[str, Any]:
    return {
        "type": "file",
        "bom-ref": naming.download_id(download),
        "name": download.url.rstrip("/").rsplit("/", 1)[-1] or download.url,
        "hashes": [_sha256(download.sha256)],
        "externalReferences": [
            {"type": "distribution", "url": download.url, "hashes": [_sha256(download.sha256)]}
        ],
        "properties": _properties(
            [("hostprocess:target", download.target), ("hostprocess:path", download.path)]
        ),
    }


def _artifact(artifact: PackagedArtifact) -> dict[str, Any]:
    return {
        "type": _ARTIFACT_TYPES.get(artifact.kind, "file"),
        "bom-ref": naming.artifact_id(artifact),
        "name": artifact.path,
        "hashes": [_sha256(artifact.sha256)],
        "properties": _properties(
            [("hostprocess:target", artifact.target), ("hostprocess:package_kind", artifact.kind)]
        ),
    }


def _dependencies(inventory: Inventory) -> list[dict[str, Any]]:
    """The image on its base, downloads and artifacts; a file on what it was made from."""
    image_needs = [naming.BASE_ID]
    image_needs += [naming.download_id(d) for d in inventory.downloads]
    image_needs += [naming.artifact_id(a) for a in inventory.packages]
    entries = [{"ref": naming.IMAGE_ID, "dependsOn": image_needs}]
    for i, layer, f in inventory.files():
        made_from = naming.origins(inventory, f)
        if made_from:
            entries.append({"ref": naming.file_id(i, layer, f), "dependsOn": made_from})
    return entries


def _properties(pairs: Sequence[tuple[str, Optional[str]]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in pairs if value is not None]


def _sha256(hex_digest: str) -> dict[str, str]:
    return {"alg": "SHA-256", "content": hex_digest}
