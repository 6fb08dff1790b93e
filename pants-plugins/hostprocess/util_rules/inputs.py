"""What goes into one layer: files and packaged targets, at their destinations under C:\\.

Files (`files`, `resources`, `relocated_files`, `file(source=http_source(...))`,
`hostprocess_files`) land at
their path relative to the image's directory; packages at their output path without the
package target's default output directory. Every destination is checked against Windows'
rules here, before a layer is built, so mistakes name the target and the source file.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping, Sequence

from pants.core.goals.package import BuiltPackage, EnvironmentAwarePackageRequest, PackageFieldSet
from pants.core.target_types import FileSourceField, ResourceSourceField, http_source
from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
from pants.engine.addresses import Address, Addresses
from pants.engine.fs import Digest, MergeDigests, RemovePrefix, Snapshot
from pants.engine.rules import Get, MultiGet, Rule, collect_rules, rule
from pants.engine.target import (
    Dependencies,
    DependenciesRequest,
    FieldSetsPerTarget,
    FieldSetsPerTargetRequest,
    SourcesField,
    Target,
    Targets,
)
from pants.engine.unions import UnionRule

from hostprocess.oci.windows.paths import (
    WindowsPathError,
    find_path_problems,
    find_path_warnings,
    fold_case,
    listed,
    windows_path,
)
from hostprocess.target_types.files import HostProcessFilesSourcesField
from hostprocess.target_types.image import HostProcessImageDependenciesField
from hostprocess.util_rules.errors import ImageBuildError

logger = logging.getLogger(__name__)


class InvalidImagePathError(ImageBuildError):
    """Files whose destinations cannot exist on Windows (see `hostprocess.oci.windows.paths`)."""

    def __init__(
        self, address: Address, problems: Sequence[WindowsPathError], sources: Mapping[str, str]
    ) -> None:
        self.problems = tuple(problems)
        lines = listed(
            [f"{windows_path(p.path)} (from {sources.get(p.path, p.path)}): {p}" for p in problems]
        )
        super().__init__(
            f"The `dependencies` of the `hostprocess_image` target {address} put files where "
            f"Windows cannot have them:\n" + "\n".join(lines) + "\nRename the files, or move "
            "them with a `relocated_files` target."
        )


@dataclass(frozen=True)
class LayerInputsRequest:
    """The closure of `roots` (not descending into packages), for the image `owner`."""

    owner: Address
    roots: Addresses


@dataclass(frozen=True)
class FileOrigin:
    """Where a file of a layer comes from, for the image's SBOM and provenance.

    `target` provided it (None: a Dockerfile's build context); `source` is its path in the
    repository, `url` the address it was downloaded from, `package` the packaging target
    whose output it is (with that target's type in `package_kind`).
    """

    target: str | None = None
    source: str | None = None
    url: str | None = None
    package: str | None = None
    package_kind: str | None = None

    def to_json(self) -> dict[str, str]:
        return {key: value for key, value in asdict(self).items() if value is not None}


ORIGINS_JSON = "origins.json"  # a layer's files' origins, read by the SBOM's process


def origins_json(origins: Mapping[str, FileOrigin]) -> bytes:
    """`{"origins": {destination: origin}}`, the same bytes for the same origins."""
    by_path = {path: origins[path].to_json() for path in sorted(origins)}
    return (json.dumps({"origins": by_path}, sort_keys=True, indent=1) + "\n").encode()


@dataclass(frozen=True)
class LayerInputs:
    tree: Digest  # paths are destinations under C:\
    destinations: tuple[str, ...]
    sources: tuple[str, ...]  # where each destination comes from, for messages
    origins: tuple[FileOrigin, ...]  # the same, for SBOMs: one per destination

    def origins_json(self) -> bytes:
        return origins_json(dict(zip(self.destinations, self.origins)))


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
    return tuple(f[len(prefix) :] for f in files)


def check_destinations(
    address: Address, destinations: Sequence[str], sources: Sequence[str]
) -> None:
    """Refuse paths Windows cannot hold; warn about paths that need long-path support."""
    problems = find_path_problems(destinations)
    if problems:
        raise InvalidImagePathError(address, problems, dict(zip(destinations, sources)))
    for warning in find_path_warnings(destinations):
        logger.warning(f"{address}: {windows_path(warning.path)}: {warning}")


def warn_about_shadowing(address: Address, layers: Sequence[LayerInputs]) -> None:
    """A later layer's file replaces an earlier one's; warn when only letter case matches."""
    seen: dict[str, str] = {}
    for layer in layers:
        for path in layer.destinations:
            earlier = seen.get(fold_case(path))
            if earlier is not None and earlier != path:
                logger.warning(
                    f"{address}: {windows_path(path)} replaces {windows_path(earlier)} from an "
                    f"earlier layer: Windows names are case-insensitive. Use one spelling."
                )
        seen.update((fold_case(path), path) for path in layer.destinations)


async def _closure(
    owner: Address, roots: Addresses
) -> tuple[list[Target], list[tuple[Target, PackageFieldSet]]]:
    """Targets with files, and packageable targets (with their package field set), reachable
    from `roots`."""
    frontier = list(await Get(Targets, Addresses, roots))
    seen = {t.address for t in frontier}
    with_files: list[Target] = []
    packages: list[tuple[Target, PackageFieldSet]] = []
    while frontier:
        field_sets = await Get(
            FieldSetsPerTarget, FieldSetsPerTargetRequest(PackageFieldSet, frontier)
        )
        descend = []
        for target, sets in zip(frontier, field_sets.collection):
            if target.has_field(HostProcessImageDependenciesField):
                raise ImageBuildError(
                    f"The `hostprocess_image` target {owner} depends on the image {target.address}: "
                    f'to build on another image, set `base="{target.address}"` instead.'
                )
            if sets:
                packages.append(
                    (target, sets[0])
                )  # a package carries its own inputs: do not descend
                continue
            if target.has_field(SourcesField):
                with_files.append(target)
            if target.has_field(Dependencies):
                descend.append(target)
        dependencies = await MultiGet(
            Get(Targets, DependenciesRequest(t[Dependencies])) for t in descend
        )
        frontier = [d for deps in dependencies for d in deps if d.address not in seen]
        seen.update(d.address for d in frontier)
    return with_files, packages


@dataclass(frozen=True)
class PackageTreeRequest:
    field_set: PackageFieldSet


@dataclass(frozen=True)
class PackageTree:
    digest: Digest
    files: tuple[str, ...]


@rule(desc="Place a package in an image")
async def package_tree(request: PackageTreeRequest) -> PackageTree:
    """A package's outputs, without the package target's default output directory."""
    field_set = request.field_set
    built = await Get(BuiltPackage, EnvironmentAwarePackageRequest(field_set))
    snapshot = await Get(Snapshot, Digest, built.digest)
    prefix = field_set.address.spec_path.replace("/", ".")
    if prefix and all(f.startswith(f"{prefix}/") for f in snapshot.files):
        snapshot = await Get(Snapshot, RemovePrefix(built.digest, prefix))
    return PackageTree(snapshot.digest, snapshot.files)


def _download_url(target: Target) -> str | None:
    """The URL of a `file(source=http_source(...))`, whose content Pants downloads."""
    if not target.has_field(FileSourceField):
        return None
    value = target[FileSourceField].value
    return value.url if isinstance(value, http_source) else None


async def _file_origins(with_files: Sequence[Target]) -> tuple[Digest, dict[str, FileOrigin]]:
    """The targets' files merged, and each file's origin, keyed by its path in the repository."""
    per_target = await MultiGet(
        Get(
            SourceFiles,
            SourceFilesRequest(
                [target[SourcesField]],
                for_sources_types=(
                    FileSourceField,
                    ResourceSourceField,
                    HostProcessFilesSourcesField,
                ),
                enable_codegen=True,
            ),
        )
        for target in with_files
    )
    origins: dict[str, FileOrigin] = {}
    for target, files in zip(with_files, per_target):
        url = _download_url(target)
        for path in files.snapshot.files:
            origins[path] = FileOrigin(target=target.address.spec, source=path, url=url)
    merged = await Get(Digest, MergeDigests(files.snapshot.digest for files in per_target))
    return merged, origins


@rule(desc="Collect the inputs of a layer")
async def collect_layer_inputs(request: LayerInputsRequest) -> LayerInputs:
    with_files, packages = await _closure(request.owner, request.roots)
    tree, by_source = await _file_origins(with_files)
    source_paths = sorted(by_source)
    destinations = destination_paths(request.owner, source_paths)
    if request.owner.spec_path and source_paths:
        tree = await Get(Digest, RemovePrefix(tree, request.owner.spec_path))
    source_names = list(source_paths)
    origins = [by_source[path] for path in source_paths]
    trees = [tree]
    package_trees = await MultiGet(Get(PackageTree, PackageTreeRequest(fs)) for _, fs in packages)
    for (target, field_set), built in zip(packages, package_trees):
        trees.append(built.digest)
        destinations += built.files
        source_names += [f"the package {field_set.address}" for _ in built.files]
        spec = field_set.address.spec
        package = FileOrigin(target=spec, package=spec, package_kind=target.alias)
        origins += [package for _ in built.files]
    check_destinations(request.owner, destinations, source_names)
    merged = await Get(Digest, MergeDigests(trees))
    return LayerInputs(merged, destinations, tuple(source_names), tuple(origins))


def rules() -> Iterable[Rule | UnionRule]:
    return collect_rules()
