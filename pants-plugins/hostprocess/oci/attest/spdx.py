"""The image's SPDX 2.3 JSON SBOM: every file of every layer, and what each came from.

Windows scanners cannot read Windows layers, so this document is what they see of the image:
the image as the described package (by manifest digest), its base, each file with its `C:\\`
path, checksums and the Pants target and source behind it, and each download and packaged
artifact as a package of its own. Licences are NOASSERTION: the plugin does not know them.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

from hostprocess.oci.attest import naming
from hostprocess.oci.attest.inventory import (
    Download,
    FileInfo,
    Inventory,
    LayerInfo,
    PackagedArtifact,
)

NOASSERTION = "NOASSERTION"
DOCUMENT_ID = "SPDXRef-DOCUMENT"

# SPDX 2.3 primaryPackagePurpose of a packaged artifact, by its Pants target type.
_ARTIFACT_PURPOSES = {"pex_binary": "APPLICATION", "archive": "ARCHIVE"}


DOWNLOAD_SCHEMES = frozenset({"http", "https", "ftp", "sftp"})


def spdx_document(inventory: Inventory, tool_version: str) -> bytes:
    """The SBOM as canonical JSON bytes: a function of the inventory and the plugin version."""
    image = inventory.image
    files = inventory.files()
    packages = [_image_package(inventory), _base_package(inventory)]
    packages += [_download_package(d) for d in inventory.downloads]
    packages += [_artifact_package(a) for a in inventory.packages]
    file_elements = [_file(i, layer, f) for i, layer, f in files]
    naming.check_unique(e["SPDXID"] for e in packages + file_elements)
    document = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": DOCUMENT_ID,
        "name": f"{image.repository}@{image.digest}",
        "documentNamespace": (
            f"{naming.PROJECT_URL}/spdx/{naming.document_uuid('spdx', image.digest)}"
        ),
        "creationInfo": {
            "created": naming.iso_time(image.created),
            "creators": [f"Tool: {naming.TOOL_NAME}-{tool_version}"],
        },
        "packages": packages,
        "files": file_elements,
        "relationships": _relationships(inventory),
    }
    return naming.canonical_json(document)


def spdx_id(element_id: str) -> str:
    return f"SPDXRef-{element_id}"


def _image_package(inventory: Inventory) -> dict[str, Any]:
    image = inventory.image
    tags = ", ".join(image.tags) or "none"
    package = {
        "SPDXID": spdx_id(naming.IMAGE_ID),
        "name": image.name,
        "versionInfo": image.digest,
        "downloadLocation": NOASSERTION,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [_sha256(naming.hex_of(image.digest))],
        "externalRefs": [
            _purl(naming.oci_purl(image.repository, image.digest, image.architecture))
        ],
        "comment": (
            f"The image of the hostprocess_image target {image.address}: {image.repository} "
            f"(tags: {tags}), windows/{image.architecture}, manifest {image.media_type} "
            f"of {image.size} bytes."
        ),
    }
    return {**package, **_analyzed([f for _, _, f in inventory.files()]), **_no_licence()}


def _base_package(inventory: Inventory) -> dict[str, Any]:
    base = inventory.base
    package: dict[str, Any] = {
        "SPDXID": spdx_id(naming.BASE_ID),
        "name": naming.base_name(base),
        "versionInfo": base.digest,
        "downloadLocation": NOASSERTION,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [_sha256(naming.hex_of(base.digest))],
        "comment": naming.base_description(base),
    }
    purl = naming.base_purl(base)
    if purl:
        package["externalRefs"] = [_purl(purl)]
    files = [f for _, _, f in naming.base_layer_files(inventory)]
    return {**package, **_analyzed(files), **_no_licence()}


def _download_package(download: Download) -> dict[str, Any]:
    return {
        "SPDXID": spdx_id(naming.download_id(download)),
        "name": download.url.rstrip("/").rsplit("/", 1)[-1] or download.url,
        "downloadLocation": _download_location(download.url),
        "filesAnalyzed": False,
        "primaryPackagePurpose": "FILE",
        "checksums": [_sha256(download.sha256)],
        "comment": f"Downloaded from {download.url} for {download.target} as {download.path}.",
        **_no_licence(),
    }


def _download_location(url: str) -> str:
    """The URL where SPDX 2.3 allows one (http, https, ftp, sftp); otherwise (a `file://`
    source, say) NOASSERTION, and the URL is in the package's comment."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    return url if scheme in DOWNLOAD_SCHEMES else NOASSERTION


def _artifact_package(artifact: PackagedArtifact) -> dict[str, Any]:
    return {
        "SPDXID": spdx_id(naming.artifact_id(artifact)),
        "name": artifact.path,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "primaryPackagePurpose": _ARTIFACT_PURPOSES.get(artifact.kind, "OTHER"),
        "checksums": [_sha256(artifact.sha256)],
        "comment": f"Packaged by Pants from the {artifact.kind} target {artifact.target}.",
        **_no_licence(),
    }


def _file(layer_index: int, layer: LayerInfo, file: FileInfo) -> dict[str, Any]:
    return {
        "SPDXID": spdx_id(naming.file_id(layer_index, layer, file)),
        "fileName": "./" + file.path,
        "checksums": [
            {"algorithm": "SHA1", "checksumValue": file.sha1},
            _sha256(file.sha256),
        ],
        "licenseConcluded": NOASSERTION,
        "copyrightText": NOASSERTION,
        "comment": file_comment(layer, file),
    }


def file_comment(layer: LayerInfo, file: FileInfo) -> str:
    """Where the file lands on the node and where it came from, in one sentence."""
    origin = (
        f"from the Pants target {file.target or '(none)'}, source {file.source or '(none)'}"
        if file.target or file.source
        else "not from a Pants target"
    )
    return (
        f"{file.windows_path} ({file.size} bytes) in layer {layer.digest} ({layer.label}), "
        f"{origin}."
    )


def _relationships(inventory: Inventory) -> list[dict[str, str]]:
    image = spdx_id(naming.IMAGE_ID)
    base = spdx_id(naming.BASE_ID)
    relations = [(DOCUMENT_ID, "DESCRIBES", image), (image, "DESCENDANT_OF", base)]
    for i, layer, f in naming.base_layer_files(inventory):
        relations.append((base, "CONTAINS", spdx_id(naming.file_id(i, layer, f))))
    for d in inventory.downloads:
        relations.append((spdx_id(naming.download_id(d)), "BUILD_DEPENDENCY_OF", image))
    for a in inventory.packages:
        relations.append((image, "CONTAINS", spdx_id(naming.artifact_id(a))))
    for i, layer, f in inventory.files():
        file = spdx_id(naming.file_id(i, layer, f))
        relations.append((image, "CONTAINS", file))
        relations += [(file, "GENERATED_FROM", spdx_id(o)) for o in naming.origins(inventory, f)]
    return [
        {"spdxElementId": a, "relationshipType": kind, "relatedSpdxElement": b}
        for a, kind, b in relations
    ]


def _analyzed(files: Sequence[FileInfo]) -> dict[str, Any]:
    """A package that contains files must say so, with SPDX's verification code over them."""
    if not files:
        return {"filesAnalyzed": False}
    return {
        "filesAnalyzed": True,
        "packageVerificationCode": {"packageVerificationCodeValue": verification_code(files)},
    }


def verification_code(files: Sequence[FileInfo]) -> str:
    """SPDX 2.3 §7.9: SHA-1 over the files' SHA-1s, sorted and concatenated."""
    return hashlib.sha1("".join(sorted(f.sha1 for f in files)).encode("ascii")).hexdigest()


def _no_licence() -> dict[str, str]:
    return {
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
    }


def _sha256(hex_digest: str) -> dict[str, str]:
    return {"algorithm": "SHA256", "checksumValue": hex_digest}


def _purl(locator: str) -> dict[str, str]:
    return {
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": locator,
    }
