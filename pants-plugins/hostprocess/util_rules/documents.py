"""An image's SBOMs and build provenance: one cached tool process per image.

The rules know the image (its digest, base and layers), where each file came from and the
settings that shaped it; each layer's process already listed its files with their
checksums. The `documents` command joins the two and writes the documents, so the same
inputs give the same bytes, cached like layers, and per-file lists never pass through
Pants' memory.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, cast

import pants.version
from pants.backend.python.subsystems.setup import PythonSetup
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestContents,
    DigestEntries,
    FileContent,
    FileEntry,
    MergeDigests,
    PathGlobs,
)
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, MultiGet, Rule, collect_rules, rule
from pants.util.logging import LogLevel
from pants.util.resources import read_resource

import hostprocess
from hostprocess.oci.attest.media_types import DOCUMENT_KINDS, DocumentKind
from hostprocess.oci.commands import DocumentsCommand
from hostprocess.oci.image import Image
from hostprocess.subsystem import HostProcessSubsystem
from hostprocess.subsystems.image_tool import ImageToolSubsystem
from hostprocess.util_rules.image import BuiltImage, HostProcessImageFieldSet, source_date_epoch
from hostprocess.util_rules.tool import ToolRequest

REQUEST_JSON = "request.json"
PLUGIN_NAME = "pants-backend-hostprocess"


@dataclass(frozen=True)
class ImageDocumentsRequest:
    field_set: HostProcessImageFieldSet
    built: BuiltImage
    name: str  # the stem of the files: `<name>.spdx.json`, ...
    repository: str


@dataclass(frozen=True)
class ImageDocument:
    kind: DocumentKind
    path: str  # at the root of `ImageDocuments.digest`
    digest: str  # sha256:<hex> of the file
    size: int


@dataclass(frozen=True)
class ImageDocuments:
    digest: Digest  # the documents, named `<name>.<kind's suffix>`
    documents: tuple[ImageDocument, ...]

    def summary(self) -> dict[str, Any]:
        """What `<name>.image.json` says of each document."""
        return {
            doc.kind.name: {
                "path": doc.path,
                "digest": doc.digest,
                "size": doc.size,
                "media_type": doc.kind.media_type,
            }
            for doc in self.documents
        }


def wanted_kinds(field_set: HostProcessImageFieldSet, subsystem: HostProcessSubsystem) -> list[str]:
    """The documents this image gets: its SBOM formats, then provenance, as configured."""
    kinds = list(subsystem.sbom_formats_for(field_set.sbom_formats.value))
    provenance = field_set.provenance.value
    if subsystem.provenance if provenance is None else provenance:
        kinds.append("provenance")
    return kinds


def external_parameters(field_set: HostProcessImageFieldSet) -> dict[str, Any]:
    """The fields that shaped the image, as the BUILD file sets them (the provenance adds
    the target's address and SOURCE_DATE_EPOCH beside them)."""
    fields = {
        field.alias: field.value
        for field in (
            field_set.dockerfile,
            field_set.build_args,
            field_set.dockerfile_layers,
            field_set.base,
            field_set.layers,
            field_set.entrypoint,
            field_set.cmd,
            field_set.env,
            field_set.working_dir,
            field_set.user,
            field_set.labels,
            field_set.annotations,
            field_set.architecture,
            field_set.media_types,
        )
        if field.value not in (None, "", (), {})
    }
    return cast("dict[str, Any]", json.loads(json.dumps(fields, default=_plain)))


def _plain(value: object) -> object:
    """Field values as JSON: FrozenDicts as objects, tuples as lists."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"not JSON: {value!r}")


async def _tool_lockfile(image_tool: ImageToolSubsystem, python: PythonSetup) -> dict[str, str]:
    """The lockfile pinning the image tool's requirements, by its content's digest."""
    if image_tool.install_from_resolve:
        path = python.resolves[image_tool.install_from_resolve]
        contents = await Get(DigestContents, PathGlobs([path]))
        content = contents[0].content if contents else b""
        name = path
    else:
        package, name = image_tool.default_lockfile_resource or ("", "")
        content = read_resource(package, name) or b""
        name = f"{package.replace('.', '/')}/{name}"
    return {"name": name, "sha256": hashlib.sha256(content).hexdigest()}


def _image_json(request: ImageDocumentsRequest, created: int) -> dict[str, Any]:
    image: Image = request.built.image
    field_set = request.field_set
    return {
        "address": field_set.address.spec,
        "name": request.name,
        "digest": image.digest,
        "media_type": image.manifest_descriptor.media_type,
        "size": image.manifest_descriptor.size,
        "repository": request.repository,
        "tags": list(field_set.image_tags.value or ()),
        "architecture": field_set.architecture.value,
        "created": created,
    }


def _base_json(built: BuiltImage) -> dict[str, str]:
    base = built.base
    record = {"kind": base.kind, "digest": base.digest}
    if base.kind == "external":
        record["reference"] = base.reference
    elif base.kind == "image":
        record["address"] = base.reference
    return record


@rule(desc="Write a HostProcess image's SBOMs and provenance", level=LogLevel.DEBUG)
async def image_documents(
    request: ImageDocumentsRequest,
    subsystem: HostProcessSubsystem,
    image_tool: ImageToolSubsystem,
    python: PythonSetup,
) -> ImageDocuments:
    field_set, built = request.field_set, request.built
    kinds = wanted_kinds(field_set, subsystem)
    if not kinds:
        return ImageDocuments(await Get(Digest, CreateDigest([])), ())
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(["SOURCE_DATE_EPOCH"]))
    created = source_date_epoch(env)
    image_layers = {layer.digest: layer for layer in built.image.layers}
    records = [r for r in built.records if r.digest in image_layers]
    layers = []
    for index, record in enumerate(records):
        layer = image_layers[record.digest]
        folder = f"layers/{index}"
        layers.append(
            {
                "digest": layer.digest,
                "diff_id": layer.diff_id,
                "size": layer.size,
                "media_type": built.image.media_types.layer(layer.compression),
                "label": record.label,
                "files_json": f"{folder}/files.json",
                "origins_json": f"{folder}/origins.json",
            }
        )
    merged = await MultiGet(
        Get(Digest, MergeDigests([record.files, record.origins])) for record in records
    )
    placed = await MultiGet(
        Get(Digest, AddPrefix(digest, f"layers/{index}")) for index, digest in enumerate(merged)
    )
    lockfile = await _tool_lockfile(image_tool, python)
    document_request = {
        "tool": {"name": PLUGIN_NAME, "version": hostprocess.__version__},
        "image": _image_json(request, created),
        "base": _base_json(built),
        "layers": layers,
        "provenance": {
            "external_parameters": external_parameters(field_set),
            "internal_parameters": {
                "plugin_version": hostprocess.__version__,
                "pants_version": pants.version.VERSION,
                "compression": subsystem.compression.value,
                "compression_level": subsystem.compression_level,
            },
            "lockfiles": [lockfile],
        },
    }
    content = (json.dumps(document_request, sort_keys=True, indent=1) + "\n").encode()
    request_digest = await Get(Digest, CreateDigest([FileContent(REQUEST_JSON, content)]))
    sandbox = await Get(Digest, MergeDigests([request_digest, *placed]))
    names = {kind: f"{request.name}{DOCUMENT_KINDS[kind].suffix}" for kind in kinds}
    command = DocumentsCommand(
        request=REQUEST_JSON,
        spdx=names.get("spdx"),
        cyclonedx=names.get("cyclonedx"),
        provenance=names.get("provenance"),
    )
    result = await Get(
        ProcessResult,
        ToolRequest(command, sandbox, f"Writing the SBOM and provenance of {field_set.address}"),
    )
    entries = await Get(DigestEntries, Digest, result.output_digest)
    by_path = {e.path: e for e in entries if isinstance(e, FileEntry)}
    documents = tuple(
        ImageDocument(
            DOCUMENT_KINDS[kind],
            names[kind],
            f"sha256:{by_path[names[kind]].file_digest.fingerprint}",
            by_path[names[kind]].file_digest.serialized_bytes_length,
        )
        for kind in kinds
    )
    return ImageDocuments(result.output_digest, documents)


def rules() -> Iterable[Rule]:
    return collect_rules()
