"""`hostprocess_image(dockerfile=...)`: parse in a sandbox, translate, place the context files.

The Dockerfile is parsed by BuildKit's own parser (the `dockerfile` package, installed by
`[hostprocess-dockerfile-parser]`) in a cached PEX process that prints JSON; the pure core
`hostprocess.dockerfile` turns that into a plan. ADD/COPY sources are inferred as
dependencies on the `files`/`resources` targets that own them, and each ADD/COPY becomes a
layer tree whose paths are its destinations, built from file digests without reading
content.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from pants.core.target_types import FileSourceField, ResourceSourceField
from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
from pants.engine.addresses import Address
from pants.engine.fs import (
    EMPTY_DIGEST,
    CreateDigest,
    Digest,
    DigestEntries,
    FileEntry,
    PathGlobs,
    Paths,
)
from pants.engine.internals.graph import Owners, OwnersRequest
from pants.engine.process import FallibleProcessResult
from pants.engine.rules import Get, MultiGet, Rule, collect_rules, rule
from pants.engine.target import (
    FieldSet,
    HydratedSources,
    HydrateSourcesRequest,
    InferDependenciesRequest,
    InferredDependencies,
    SourcesField,
    TransitiveTargets,
    TransitiveTargetsRequest,
)
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from hostprocess.dockerfile.commands import FetchCommand, ParseCommand
from hostprocess.dockerfile.context import named_files, place, relative_to
from hostprocess.dockerfile.translate import Copy, DockerfileError, Download, Plan, translate
from hostprocess.oci.windows.paths import listed, windows_path
from hostprocess.target_types.image import ArchitectureField, BuildArgsField, DockerfileField
from hostprocess.util_rules.errors import ImageBuildError
from hostprocess.util_rules.inputs import (
    FileOrigin,
    InvalidImagePathError,
    LayerInputs,
    check_destinations,
)
from hostprocess.util_rules.tool import ToolRequest

logger = logging.getLogger(__name__)

FETCHED = "fetched"


@dataclass(frozen=True)
class ParsedDockerfile:
    path: str  # relative to the build root
    text: str  # the parser's JSON, or "" when it refused the file
    error: str = ""

    @property
    def document(self) -> Mapping[str, Any]:
        return json.loads(self.text)

    @property
    def context(self) -> str:
        """The build context: the Dockerfile's directory."""
        return os.path.dirname(self.path)


@dataclass(frozen=True)
class ParseDockerfileRequest:
    path: str
    digest: Digest  # holds the file at `path`


@rule(desc="Parse a Dockerfile")
async def parse_dockerfile(request: ParseDockerfileRequest) -> ParsedDockerfile:
    result = await Get(
        FallibleProcessResult,
        ToolRequest(
            ParseCommand(request.path),
            request.digest,
            f"Parsing {request.path}",
            level=LogLevel.DEBUG,
        ),
    )
    if result.exit_code != 0:
        return ParsedDockerfile(request.path, "", result.stderr.decode(errors="replace").strip())
    return ParsedDockerfile(request.path, result.stdout.decode())


async def _parse_field(field: DockerfileField) -> ParsedDockerfile:
    hydrated = await Get(HydratedSources, HydrateSourcesRequest(field))
    (path,) = hydrated.snapshot.files
    parsed = await Get(ParsedDockerfile, ParseDockerfileRequest(path, hydrated.snapshot.digest))
    if parsed.error:
        raise ImageBuildError(
            f"The `dockerfile` of the `hostprocess_image` target {field.address} does not "
            f"parse: {parsed.error}"
        )
    return parsed


@dataclass(frozen=True)
class DockerfilePlanRequest:
    dockerfile: DockerfileField
    build_args: BuildArgsField
    architecture: ArchitectureField


@dataclass(frozen=True)
class DockerfilePlan:
    plan: Plan
    parsed: ParsedDockerfile


def context_globs(context: str) -> PathGlobs:
    """Every file of a build context on disk (what `docker build` would send)."""
    return PathGlobs([os.path.join(context, "**")] if context else ["**"])


def predefined_args(architecture: str) -> dict[str, str]:
    """BuildKit's automatic platform ARGs, for the image being built."""
    return {
        "TARGETPLATFORM": f"windows/{architecture}",
        "TARGETOS": "windows",
        "TARGETARCH": architecture,
    }


@rule(desc="Translate a Dockerfile")
async def plan_dockerfile(request: DockerfilePlanRequest) -> DockerfilePlan:
    address = request.dockerfile.address
    parsed = await _parse_field(request.dockerfile)
    try:
        plan = translate(
            parsed.document,
            dict(request.build_args.value or {}),
            predefined_args(request.architecture.value),
        )
    except DockerfileError as e:
        raise ImageBuildError(
            f"The `dockerfile` {parsed.path} of the `hostprocess_image` target {address} cannot "
            f"be built: {e}"
        ) from None
    for warning in plan.warnings:
        logger.warning(f"{address}: {parsed.path}: {warning}")
    return DockerfilePlan(plan, parsed)


@dataclass(frozen=True)
class DockerfileInferenceFieldSet(FieldSet):
    required_fields = (DockerfileField,)

    dockerfile: DockerfileField
    build_args: BuildArgsField
    architecture: ArchitectureField


class InferDockerfileDependencies(InferDependenciesRequest):
    infer_from = DockerfileInferenceFieldSet


@rule(desc="Infer a Dockerfile's dependencies from its ADD and COPY sources")
async def infer_dockerfile_dependencies(
    request: InferDockerfileDependencies,
) -> InferredDependencies:
    fs = request.field_set
    if not fs.dockerfile.value:
        return InferredDependencies([])
    planned = await Get(
        DockerfilePlan, DockerfilePlanRequest(fs.dockerfile, fs.build_args, fs.architecture)
    )
    context = planned.parsed.context
    on_disk = await Get(Paths, PathGlobs, context_globs(context))
    named = named_files(planned.plan, relative_to(context, on_disk.files))
    paths = [os.path.join(context, f) for f in named]
    owners = await MultiGet(Get(Owners, OwnersRequest((path,))) for path in paths)
    return InferredDependencies(
        address for found in owners for address in nearest(found, exclude=fs.address)
    )


def nearest(owners: Iterable[Address], exclude: Address) -> list[Address]:
    """The owners declared closest to the file: a `files` target beside the Dockerfile, not
    one far up the tree that globs everything (several at the same depth are all kept)."""
    candidates = [a for a in owners if a != exclude]
    if not candidates:
        return []
    depth = max(len(a.spec_path) for a in candidates)
    return [a for a in candidates if len(a.spec_path) == depth]


@dataclass(frozen=True)
class DockerfileLayersRequest:
    address: Address
    planned: DockerfilePlan
    one_layer: bool


@dataclass(frozen=True)
class DockerfileLayers:
    layers: tuple[LayerInputs, ...]
    labels: tuple[str, ...]  # each layer's instruction(s), for progress and history


async def _context_files(address: Address, context: str) -> tuple[list[str], dict[str, FileEntry]]:
    """The files of the image's (transitive) `files`/`resources` dependencies in the context."""
    transitive = await Get(TransitiveTargets, TransitiveTargetsRequest([address]))
    sources = await Get(
        SourceFiles,
        SourceFilesRequest(
            (t[SourcesField] for t in transitive.dependencies if t.has_field(SourcesField)),
            for_sources_types=(FileSourceField, ResourceSourceField),
            enable_codegen=True,
        ),
    )
    entries = await Get(DigestEntries, Digest, sources.snapshot.digest)
    prefix = f"{context}/" if context else ""
    by_path = {
        e.path[len(prefix) :]: e
        for e in entries
        if isinstance(e, FileEntry) and e.path.startswith(prefix)
    }
    return sorted(by_path), by_path


@dataclass(frozen=True)
class FetchRequest:
    address: Address
    download: Download


@rule(desc="Fetch an ADD URL")
async def fetch_url(request: FetchRequest) -> FileEntry:
    """The pinned content of `ADD --checksum=sha256:... <url>`, cached by Pants."""
    step = request.download
    result = await Get(
        FallibleProcessResult,
        ToolRequest(
            FetchCommand(step.url, step.sha256, FETCHED),
            EMPTY_DIGEST,
            f"Fetching {step.url} for {request.address}",
        ),
    )
    if result.exit_code != 0:
        raise ImageBuildError(
            f"The `dockerfile` of the `hostprocess_image` target {request.address}: line "
            f"{step.line}: `{step.text}` failed: {result.stderr.decode(errors='replace').strip()}"
        )
    entries = await Get(DigestEntries, Digest, result.output_digest)
    (entry,) = (e for e in entries if isinstance(e, FileEntry))
    return entry


def _placed(
    address: Address, planned: DockerfilePlan, step: Copy | Download, context_files: list[str]
) -> dict[str, str]:
    """Destination -> source (a context file, or the URL of a download) for one step."""
    if isinstance(step, Download):
        return {step.path: step.url}
    try:
        return {dest: source for source, dest in place(step, context_files)}
    except DockerfileError as e:
        raise ImageBuildError(
            f"The `dockerfile` {planned.parsed.path} of the `hostprocess_image` target {address} "
            f"cannot be built: {e} Files in the build context come from `files` or `resources` "
            f"targets, inferred from ADD/COPY (or listed in `dependencies`): declare one that owns "
            f'them, e.g. `files(name="context", sources=[...])` beside the Dockerfile.'
        ) from None


def _check_destinations(
    address: Address, path: str, label: str, destinations: Sequence[str], sources: Sequence[str]
) -> None:
    """The same Windows path rules as `dependencies`, worded for the Dockerfile."""
    try:
        check_destinations(address, destinations, sources)
    except InvalidImagePathError as e:
        origin = dict(zip(destinations, sources))
        lines = listed(
            [f"{windows_path(p.path)} (from {origin.get(p.path, p.path)}): {p}" for p in e.problems]
        )
        raise ImageBuildError(
            f"The `dockerfile` {path} of the `hostprocess_image` target {address}: the {label} "
            f"puts files where Windows cannot have them:\n"
            + "\n".join(lines)
            + "\nChange the ADD/COPY destination, or rename the files."
        ) from None


def _origin(source: str) -> FileOrigin:
    """A build-context file (its owning target is not tracked here) or an ADD download."""
    return FileOrigin(url=source) if "://" in source else FileOrigin(source=source)


@rule(desc="Place a Dockerfile's ADD and COPY files")
async def dockerfile_layers(request: DockerfileLayersRequest) -> DockerfileLayers:
    planned, address = request.planned, request.address
    context = planned.parsed.context
    context_files, entries = await _context_files(address, context)
    downloads = [s for s in planned.plan.steps if isinstance(s, Download)]
    fetched = await MultiGet(Get(FileEntry, FetchRequest(address, d)) for d in downloads)
    entries.update((d.url, entry) for d, entry in zip(downloads, fetched))
    groups: list[tuple[str, dict[str, str]]] = []  # (label, destination -> source)
    for step in planned.plan.steps:
        placed = _placed(address, planned, step, context_files)
        label = f"`{step.text}` (line {step.line})"
        if request.one_layer and groups:
            groups[0] = (f"{groups[0][0]}, {label}", {**groups[0][1], **placed})
        else:
            groups.append((f"layer of {label}", placed))
    trees = await MultiGet(
        Get(
            Digest,
            CreateDigest(
                FileEntry(dest, entries[source].file_digest, entries[source].is_executable)
                for dest, source in sorted(placed.items())
            ),
        )
        for _, placed in groups
    )
    layers = []
    for (label, placed), tree in zip(groups, trees):
        destinations = tuple(sorted(placed))
        sources = tuple(
            placed[d] if "://" in placed[d] else os.path.join(context, placed[d])
            for d in destinations
        )
        _check_destinations(address, planned.parsed.path, label, destinations, sources)
        origins = tuple(_origin(source) for source in sources)
        layers.append(LayerInputs(tree, destinations, sources, origins))
    return DockerfileLayers(tuple(layers), tuple(label for label, _ in groups))


def rules() -> Iterable[Rule | UnionRule]:
    return (
        *collect_rules(),
        UnionRule(InferDependenciesRequest, InferDockerfileDependencies),
    )
