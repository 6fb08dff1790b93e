"""`pants package` for `hostprocess_image`: the built image's files in dist/.

The image is built by `hostprocess.util_rules.image`; this goal writes its layout, the
archives asked for in `output_formats`, its SBOMs and provenance
(`hostprocess.util_rules.documents`) and the `<name>.image.json` summary.
"""

from __future__ import annotations

import json
import os
from typing import Iterable

from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, PackageFieldSet
from pants.engine.fs import AddPrefix, CreateDigest, Digest, FileContent, MergeDigests
from pants.engine.rules import Get, MultiGet, Rule, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from hostprocess.oci.image import Image
from hostprocess.subsystem import HostProcessSubsystem
from hostprocess.util_rules.archive import ArchiveRequest
from hostprocess.util_rules.documents import ImageDocuments, ImageDocumentsRequest
from hostprocess.util_rules.image import BuiltImage, HostProcessImageFieldSet

ARCHIVE_SUFFIXES = {"oci-archive": "oci.tar", "docker-archive": "docker.tar"}


def image_summary(
    field_set: HostProcessImageFieldSet, image: Image, repository: str, documents: ImageDocuments
) -> bytes:
    """`<name>.image.json`: what deploy tooling needs without parsing the layout, and the
    SBOMs and provenance written beside it."""
    manifest = image.manifest_descriptor
    summary = {
        "address": field_set.address.spec,
        "digest": image.digest,
        "media_type": manifest.media_type,
        "size": manifest.size,
        "repository": repository,
        "tags": list(field_set.image_tags.value or ()),
        "config": {"digest": image.config_descriptor.digest, "size": image.config_descriptor.size},
        "layers": [
            {
                "digest": layer.digest,
                "size": layer.size,
                "diff_id": layer.diff_id,
                "media_type": image.media_types.layer(layer.compression),
            }
            for layer in image.layers
        ],
        "documents": documents.summary(),
    }
    return (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode()


@rule(desc="Package a HostProcess image", level=LogLevel.DEBUG)
async def package_hostprocess_image(
    field_set: HostProcessImageFieldSet, subsystem: HostProcessSubsystem
) -> BuiltPackage:
    built = await Get(BuiltImage, HostProcessImageFieldSet, field_set)
    image = built.image
    base_path = field_set.output_path.value_or_default(file_ending=None)
    parent, name = os.path.split(base_path)
    formats = field_set.output_formats.value or ()
    repository = field_set.repository.value_or_default(subsystem.default_repository)
    tags = field_set.image_tags.value or ()
    repo_tags = tuple(f"{repository}:{tag}" for tag in tags)
    archive_names = {
        fmt: f"{name}.{ARCHIVE_SUFFIXES[fmt]}" for fmt in formats if fmt in ARCHIVE_SUFFIXES
    }

    archives = await MultiGet(
        Get(Digest, ArchiveRequest(built, fmt, repo_tags, out, field_set.address))
        for fmt, out in archive_names.items()
    )
    documents = await Get(ImageDocuments, ImageDocumentsRequest(field_set, built, name, repository))
    summary_name = f"{name}.image.json"
    summary_content = image_summary(field_set, image, repository, documents)
    summary = await Get(Digest, CreateDigest([FileContent(summary_name, summary_content)]))
    parts = [summary, *archives, documents.digest]
    relpaths = [
        os.path.join(parent, summary_name),
        *(os.path.join(parent, out) for out in archive_names.values()),
        *(os.path.join(parent, doc.path) for doc in documents.documents),
    ]
    if "oci-layout" in formats:
        parts.append(await Get(Digest, AddPrefix(built.layout, name)))
        relpaths.insert(0, base_path)
    merged = await Get(Digest, MergeDigests(parts))
    output = await Get(Digest, AddPrefix(merged, parent)) if parent else merged

    log = [f"Image digest: {image.digest}", f"Tags: {', '.join(repo_tags) or '(none)'}"]
    artifacts = [BuiltPackageArtifact(relpaths[0], tuple(log))]
    artifacts.extend(BuiltPackageArtifact(path) for path in relpaths[1:])
    return BuiltPackage(output, tuple(artifacts))


def rules() -> Iterable[Rule | UnionRule]:
    return (*collect_rules(), UnionRule(PackageFieldSet, HostProcessImageFieldSet))
