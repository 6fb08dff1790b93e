"""What goes into one layer: files and packaged targets, at their destinations under C:\\.

Files (`files`, `resources`, `relocated_files`, `file(source=http_source(...))`,
`hostprocess_files`) land at
their path relative to the image's directory; packages at their output path without the
package target's default output directory. Every destination is checked against Windows'
rules here, before a layer is built, so mistakes name the target and the source file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from pants.core.goals.package import BuiltPackage, EnvironmentAwarePackageRequest, PackageFieldSet
from pants.core.target_types import FileSourceField, ResourceSourceField
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
class LayerInputs:
    tree: Digest  # paths are destinations under C:\
    destinations: tuple[str, ...]
    sources: tuple[str, ...]  # where each destination comes from, for messages


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


async def _closure(owner: Address, roots: Addresses) -> tuple[list[Target], list[PackageFieldSet]]:
    """Targets with files, and packageable targets, reachable from `roots`."""
    frontier = list(await Get(Targets, Addresses, roots))
    seen = {t.address for t in frontier}
    with_files: list[Target] = []
    packages: list[PackageFieldSet] = []
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
                packages.append(sets[0])  # a package carries its own inputs: do not descend
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


@rule(desc="Collect the inputs of a layer")
async def collect_layer_inputs(request: LayerInputsRequest) -> LayerInputs:
    with_files, packages = await _closure(request.owner, request.roots)
    sources = await Get(
        SourceFiles,
        SourceFilesRequest(
            (t[SourcesField] for t in with_files),
            for_sources_types=(FileSourceField, ResourceSourceField, HostProcessFilesSourcesField),
            enable_codegen=True,
        ),
    )
    destinations = destination_paths(request.owner, sources.snapshot.files)
    tree = sources.snapshot.digest
    if request.owner.spec_path and sources.snapshot.files:
        tree = await Get(Digest, RemovePrefix(tree, request.owner.spec_path))
    source_names = list(sources.snapshot.files)
    trees = [tree]
    package_trees = await MultiGet(Get(PackageTree, PackageTreeRequest(fs)) for fs in packages)
    for field_set, built in zip(packages, package_trees):
        trees.append(built.digest)
        destinations += built.files
        source_names += [f"the package {field_set.address}" for _ in built.files]
    check_destinations(request.owner, destinations, source_names)
    merged = await Get(Digest, MergeDigests(trees))
    return LayerInputs(merged, destinations, tuple(source_names))


def rules() -> Iterable[Rule | UnionRule]:
    return collect_rules()
