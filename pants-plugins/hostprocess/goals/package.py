"""`pants package` for `hostprocess_image`: layers -> config + manifest -> files in dist/.

Layers come from cached tool processes; the config, manifest and layout index are small
and built here with the pure core. Large outputs (archives) are tool processes too, so no
blob ever passes through Pants' own memory.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Mapping, Sequence

from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, OutputPathField, PackageFieldSet
from pants.core.target_types import FileSourceField, ResourceSourceField
from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import AddPrefix, CreateDigest, Digest, FileContent, MergeDigests, RemovePrefix
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import SourcesField, TransitiveTargets, TransitiveTargetsRequest
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from hostprocess.oci.entrypoint import missing_program
from hostprocess.oci.image import Image, RuntimeConfig, build_image
from hostprocess.oci.layout import layout_files
from hostprocess.oci.paths import WindowsPathError, find_path_problems, find_path_warnings
from hostprocess.subsystem import HostProcessSubsystem
from hostprocess.target_types import (
    AnnotationsField,
    ArchitectureField,
    CmdField,
    EntrypointField,
    EnvField,
    HostProcessImageDependenciesField,
    ImageTagsField,
    LabelsField,
    MediaTypesField,
    OutputFormatsField,
    RepositoryField,
    UserField,
    WorkingDirField,
)
from hostprocess.util_rules.layers import BaseLayerRequest, BuildSettings, BuiltLayer, FilesLayerRequest
from hostprocess.util_rules.tool import ImageTool

logger = logging.getLogger(__name__)

MAX_LISTED = 20
ARCHIVE_SUFFIXES = {"oci-archive": "oci.tar", "docker-archive": "docker.tar"}


class ImageBuildError(Exception):
    """A `hostprocess_image` cannot be built as declared; the message says how to fix it."""


class InvalidImagePathError(ImageBuildError):
    """Files whose destinations cannot exist on Windows (see `hostprocess.oci.paths`)."""

    def __init__(self, address: Address, problems: Sequence[WindowsPathError], sources: Mapping[str, str]) -> None:
        self.problems = tuple(problems)
        lines = [
            f"  {windows_path(p.path)} (from {sources.get(p.path, p.path)}): {p}" for p in problems[:MAX_LISTED]
        ]
        if len(problems) > MAX_LISTED:
            lines.append(f"  ... and {len(problems) - MAX_LISTED} more")
        super().__init__(
            f"The `dependencies` of the `hostprocess_image` target {address} put files where "
            f"Windows cannot have them:\n" + "\n".join(lines) + "\nRename the files, or move "
            f"them with a `relocated_files` target."
        )


@dataclass(frozen=True)
class HostProcessImageFieldSet(PackageFieldSet):
    required_fields = (HostProcessImageDependenciesField, ArchitectureField)

    dependencies: HostProcessImageDependenciesField
    entrypoint: EntrypointField
    cmd: CmdField
    env: EnvField
    working_dir: WorkingDirField
    user: UserField
    labels: LabelsField
    annotations: AnnotationsField
    architecture: ArchitectureField
    media_types: MediaTypesField
    image_tags: ImageTagsField
    repository: RepositoryField
    output_formats: OutputFormatsField
    output_path: OutputPathField

    def runtime_config(self) -> RuntimeConfig:
        return RuntimeConfig(
            entrypoint=self.entrypoint.value or (),
            cmd=self.cmd.value or (),
            env=dict(self.env.value or {}),
            working_dir=self.working_dir.value or "",
            user=self.user.value or "",
            labels=dict(self.labels.value or {}),
        )


@dataclass(frozen=True)
class BuiltImage:
    image: Image
    layout: Digest  # an OCI image layout at the digest's root


def _source_date_epoch(env: EnvironmentVars) -> int:
    """Layer mtimes and `created`: 0, or SOURCE_DATE_EPOCH when set (reproducible-builds.org)."""
    raw = env.get("SOURCE_DATE_EPOCH")
    if not raw:
        return 0
    if not raw.isdigit():
        raise ImageBuildError(f"SOURCE_DATE_EPOCH must be a non-negative integer (seconds), got {raw!r}.")
    return int(raw)


def destination_paths(address: Address, files: Sequence[str]) -> tuple[str, ...]:
    """The one path rule: files land at C:\\ + their path relative to the target's directory."""
    prefix = f"{address.spec_path}/" if address.spec_path else ""
    outside = sorted(f for f in files if not f.startswith(prefix))
    if outside:
        listed = "\n".join(f"  {f}" for f in outside)
        raise ImageBuildError(
            f"The `dependencies` of the `hostprocess_image` target {address} include files outside "
            f"its directory `{address.spec_path or '.'}`:\n{listed}\nEach file lands at C:\\ plus its "
            f"path relative to that directory. Move these files under it with a `relocated_files` "
            f"target (`src`/`dest`), or declare the image in a BUILD file higher up."
        )
    return tuple(f[len(prefix):] for f in files)


def windows_path(destination: str) -> str:
    return "C:\\" + destination.replace("/", "\\")


def warn_if_entrypoint_missing(field_set: HostProcessImageFieldSet, destinations: Sequence[str]) -> None:
    program = missing_program(field_set.entrypoint.value or (), destinations)
    if program is None:
        return
    held = "\n".join(f"  {windows_path(path)}" for path in sorted(destinations)[:MAX_LISTED])
    more = f"\n  ... and {len(destinations) - MAX_LISTED} more" if len(destinations) > MAX_LISTED else ""
    logger.warning(
        f"The `entrypoint` of the `hostprocess_image` target {field_set.address} starts "
        f"{program!r}, which is neither in the image nor a Windows system program, so the "
        f"container would fail to start. The image holds:\n{held or '  (no files)'}{more}\n"
        f"Add the program to `dependencies`, or fix the path (relative to the image root)."
    )


def check_destinations(address: Address, destinations: Sequence[str], sources: Sequence[str]) -> None:
    """Refuse paths Windows cannot hold; warn about paths that need long-path support."""
    problems = find_path_problems(destinations)
    if problems:
        raise InvalidImagePathError(address, problems, dict(zip(destinations, sources)))
    for warning in find_path_warnings(destinations):
        logger.warning(f"{address}: {windows_path(warning.path)}: {warning}")


async def _files_tree(field_set: HostProcessImageFieldSet) -> tuple[Digest, tuple[str, ...]]:
    """The image's files, re-rooted so their paths are their destinations under C:\\."""
    transitive = await Get(TransitiveTargets, TransitiveTargetsRequest([field_set.address]))
    sources = await Get(
        SourceFiles,
        SourceFilesRequest(
            (tgt.get(SourcesField) for tgt in transitive.dependencies),
            for_sources_types=(FileSourceField, ResourceSourceField),
            enable_codegen=True,
        ),
    )
    destinations = destination_paths(field_set.address, sources.snapshot.files)
    check_destinations(field_set.address, destinations, sources.snapshot.files)
    spec_path = field_set.address.spec_path
    tree = sources.snapshot.digest
    if spec_path:
        tree = await Get(Digest, RemovePrefix(tree, spec_path))
    return tree, destinations


@rule(desc="Build a HostProcess image", level=LogLevel.DEBUG)
async def build_hostprocess_image(field_set: HostProcessImageFieldSet) -> BuiltImage:
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(["SOURCE_DATE_EPOCH"]))
    settings = BuildSettings(mtime=_source_date_epoch(env))
    tree, destinations = await _files_tree(field_set)
    warn_if_entrypoint_missing(field_set, destinations)
    address = field_set.address
    base, files = await MultiGet(
        Get(BuiltLayer, BaseLayerRequest(settings)),
        Get(
            BuiltLayer,
            FilesLayerRequest(
                tree=tree,
                created_by=f"hostprocess: files of {address}",
                description=f"Building the files layer of {address} ({len(destinations)} files)",
                settings=settings,
            ),
        ),
    )
    media_family = field_set.media_types.value
    annotations = dict(field_set.annotations.value or {})
    if annotations and media_family != "oci":
        raise ImageBuildError(
            f"The `hostprocess_image` target {address} sets `annotations`, which Docker schema 2 "
            f"manifests cannot carry: remove them or set `media_types=\"oci\"`."
        )
    image = build_image(
        field_set.runtime_config(),
        [base.layer, files.layer],
        architecture=field_set.architecture.value,
        created=settings.mtime,
        media_family=media_family,
        annotations=annotations,
    )
    small = await Get(
        Digest,
        CreateDigest(
            FileContent(path, content)
            for path, content in layout_files(image, field_set.image_tags.value or ()).items()
        ),
    )
    layout = await Get(Digest, MergeDigests([small, base.blobs, files.blobs]))
    return BuiltImage(image, layout)


def image_summary(field_set: HostProcessImageFieldSet, image: Image, repository: str) -> bytes:
    """`<name>.image.json`: what deploy tooling needs without parsing the layout."""
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
            {"digest": layer.digest, "size": layer.size, "diff_id": layer.diff_id, "media_type": image.media_types.layer(layer.compression)}
            for layer in image.layers
        ],
    }
    return (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class ArchiveRequest:
    built: BuiltImage
    fmt: str
    repo_tags: tuple[str, ...]
    out: str  # file name of the archive
    address: Address


@rule(desc="Write an image archive", level=LogLevel.DEBUG)
async def write_image_archive(request: ArchiveRequest, tool: ImageTool) -> Digest:
    argv = ["archive", "--layout", "layout", "--format", request.fmt, "--out", request.out]
    for repo_tag in request.repo_tags:
        argv += ["--repo-tag", repo_tag]
    layout = await Get(Digest, AddPrefix(request.built.layout, "layout"))
    result = await Get(
        ProcessResult,
        VenvPexProcess(
            tool.pex,
            argv=argv,
            input_digest=layout,
            output_files=(request.out,),
            description=f"Writing the {request.fmt} of {request.address}",
            level=LogLevel.INFO,
        ),
    )
    return result.output_digest


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
    archive_names = {fmt: f"{name}.{ARCHIVE_SUFFIXES[fmt]}" for fmt in formats if fmt in ARCHIVE_SUFFIXES}

    archives = await MultiGet(
        Get(Digest, ArchiveRequest(built, fmt, repo_tags, out, field_set.address))
        for fmt, out in archive_names.items()
    )
    summary_name = f"{name}.image.json"
    summary = await Get(Digest, CreateDigest([FileContent(summary_name, image_summary(field_set, image, repository))]))
    parts = [summary, *archives]
    relpaths = [os.path.join(parent, summary_name), *(os.path.join(parent, out) for out in archive_names.values())]
    if "oci-layout" in formats:
        parts.append(await Get(Digest, AddPrefix(built.layout, name)))
        relpaths.insert(0, base_path)
    merged = await Get(Digest, MergeDigests(parts))
    output = await Get(Digest, AddPrefix(merged, parent)) if parent else merged

    log = [f"Image digest: {image.digest}", f"Tags: {', '.join(repo_tags) or '(none)'}"]
    artifacts = [BuiltPackageArtifact(relpaths[0], tuple(log))]
    artifacts.extend(BuiltPackageArtifact(path) for path in relpaths[1:])
    return BuiltPackage(output, tuple(artifacts))


def rules():
    return (*collect_rules(), UnionRule(PackageFieldSet, HostProcessImageFieldSet))
