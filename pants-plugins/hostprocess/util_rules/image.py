"""Building a `hostprocess_image`: its base, its layers, its config and manifest, its layout.

`package`, `publish`, the image tests and the DaemonSet manifests all build images through
`BuiltImage`. Layers come from cached tool processes; the config, manifest and layout index
are small and built here with the pure core, so no blob passes through Pants' own memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from pants.core.goals.package import OutputPathField, PackageFieldSet
from pants.engine.addresses import Address, Addresses, AddressInput, UnparsedAddressInputs
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import (
    EMPTY_DIGEST,
    CreateDigest,
    Digest,
    DigestSubset,
    FileContent,
    MergeDigests,
    PathGlobs,
)
from pants.engine.rules import Get, MultiGet, Rule, collect_rules, rule
from pants.engine.target import (
    AsyncFieldMixin,
    DependenciesRequest,
    Target,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.util.logging import LogLevel

from hostprocess.dockerfile.translate import Plan
from hostprocess.oci.image import BaseImageError, Image, Layer, RuntimeConfig, build_image
from hostprocess.oci.layout import blob_path, layout_files
from hostprocess.oci.reference import name_without_tag
from hostprocess.target_types.image import (
    AnnotationsField,
    ArchitectureField,
    BaseImageField,
    BuildArgsField,
    CmdField,
    DockerfileField,
    DockerfileLayersField,
    EntrypointField,
    EnvField,
    HostProcessImageDependenciesField,
    ImageSkipChecksField,
    ImageTagsField,
    LabelsField,
    LayersField,
    MediaTypesField,
    OutputFormatsField,
    ProvenanceField,
    RepositoryField,
    SbomFormatsField,
    SignField,
    UserField,
    WorkingDirField,
    is_external_reference,
)
from hostprocess.util_rules.compat import check_image
from hostprocess.util_rules.dockerfile import (
    DockerfileLayers,
    DockerfileLayersRequest,
    DockerfilePlan,
    DockerfilePlanRequest,
)
from hostprocess.util_rules.errors import ImageBuildError
from hostprocess.util_rules.external_base import ExternalBase, ExternalBaseRequest
from hostprocess.util_rules.inputs import (
    ORIGINS_JSON,
    LayerInputs,
    LayerInputsRequest,
    origins_json,
    warn_about_shadowing,
)
from hostprocess.util_rules.layers import (
    BASE_LAYER_HISTORY,
    BASE_LAYER_LABEL,
    BaseLayerRequest,
    BuildSettings,
    BuiltLayer,
    FilesLayerRequest,
)


@dataclass(frozen=True)
class HostProcessImageFieldSet(PackageFieldSet):
    required_fields = (HostProcessImageDependenciesField, ArchitectureField)

    dependencies: HostProcessImageDependenciesField
    dockerfile: DockerfileField
    build_args: BuildArgsField
    dockerfile_layers: DockerfileLayersField
    base: BaseImageField
    layers: LayersField
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
    skip_checks: ImageSkipChecksField
    sbom_formats: SbomFormatsField
    provenance: ProvenanceField
    sign: SignField

    def runtime_config(self, plan: Plan | None = None) -> RuntimeConfig:
        if plan is not None:
            return RuntimeConfig(
                entrypoint=plan.entrypoint,
                cmd=plan.cmd,
                env=dict(plan.env),
                working_dir=plan.working_dir,
                user=plan.user,
                labels=dict(plan.labels),
            )
        return RuntimeConfig(
            entrypoint=self.entrypoint.value or (),
            cmd=self.cmd.value or (),
            env=dict(self.env.value or {}),
            working_dir=self.working_dir.value or "",
            user=self.user.value or "",
            labels=dict(self.labels.value or {}),
        )


@dataclass(frozen=True)
class LayerRecord:
    """What an SBOM says of one layer built here: its files and where each came from."""

    digest: str  # the layer blob's digest, which pairs the record with `Image.layers`
    label: str  # e.g. "files layer of examples:hello"
    files: Digest  # `files.json`: each file's path, size and checksums (the layer process's)
    origins: Digest  # `origins.json`: each file's target, source path, URL or package


@dataclass(frozen=True)
class BaseRecord:
    """What an image is built on, as its SBOM and provenance name it."""

    kind: str  # "builtin" (the base layer built here), "image" (a target) or "external"
    digest: str  # builtin: the base layer's digest; otherwise the base's manifest digest
    reference: str = ""  # image: the target's address; external: the pinned reference


@dataclass(frozen=True)
class BuiltImage:
    image: Image
    layout: Digest  # an OCI image layout at the digest's root
    files: tuple[str, ...] | None  # every destination in the image; None under an external base
    base: BaseRecord
    records: tuple[LayerRecord, ...]  # every layer built here, parents' first


@dataclass(frozen=True)
class ParentImage:
    """What an image builds on: another image's layers and config, or nothing."""

    image: Image | None
    blobs: Digest  # the parent's layer blobs, at blobs/sha256/<hex>
    files: tuple[str, ...] | None
    base: BaseRecord | None = None  # None: the built-in base layer, built with the image
    records: tuple[LayerRecord, ...] = ()


def source_date_epoch(env: EnvironmentVars) -> int:
    """Layer mtimes and `created`: 0, or SOURCE_DATE_EPOCH when set (reproducible-builds.org)."""
    raw = env.get("SOURCE_DATE_EPOCH")
    if not raw:
        return 0
    if not raw.isdigit():
        raise ImageBuildError(
            f"SOURCE_DATE_EPOCH must be a non-negative integer (seconds), got {raw!r}."
        )
    return int(raw)


async def image_target(
    field: AsyncFieldMixin, origin: str, not_an_image: Callable[[Address, Target], Exception]
) -> Target:
    """The `hostprocess_image` an address field (`base`, a test's or a DaemonSet's `image`)
    names; `not_an_image(address, target)` is the error for any other target."""
    address = await Get(
        Address,
        AddressInput,
        AddressInput.parse(
            field.value or "", relative_to=field.address.spec_path, description_of_origin=origin
        ),
    )
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(address, description_of_origin=origin))
    if not wrapped.target.has_field(BaseImageField):
        raise not_an_image(address, wrapped.target)
    return wrapped.target


async def base_target(field: BaseImageField) -> Target:
    """The `hostprocess_image` a `base` field names (not an external reference)."""

    def not_an_image(address: Address, _: Target) -> Exception:
        return ImageBuildError(
            f"The `base` field of {field.address} names {address}, which is not a "
            f"`hostprocess_image` target: name an image, or an external image pinned by digest."
        )

    return await image_target(field, f"the `base` field of {field.address}", not_an_image)


async def _check_base_chain(field_set: HostProcessImageFieldSet) -> None:
    """Refuse `base` cycles with the whole cycle named, before building anything."""
    chain = [field_set.address]
    base = field_set.base
    while base.value and not is_external_reference(base.value):
        target = await base_target(base)
        if target.address in chain:
            cycle = " -> ".join(
                str(a) for a in [*chain[chain.index(target.address) :], target.address]
            )
            raise ImageBuildError(
                f"The `base` fields of these `hostprocess_image` targets form a cycle: {cycle}. "
                f"Break it by changing one `base`."
            )
        chain.append(target.address)
        base = target[BaseImageField]


# Fields a Dockerfile's instructions replace (`base` only maps a FROM; see _dockerfile_base).
DOCKERFILE_REPLACES = {
    EntrypointField.alias: "ENTRYPOINT",
    CmdField.alias: "CMD",
    EnvField.alias: "ENV",
    WorkingDirField.alias: "WORKDIR",
    UserField.alias: "USER",
    LabelsField.alias: "LABEL",
    LayersField.alias: "one layer per ADD/COPY (or `dockerfile_layers`)",
}


def check_dockerfile_fields(field_set: HostProcessImageFieldSet) -> None:
    """With `dockerfile`, the Dockerfile alone says what BUILD fields would: refuse both."""
    address = field_set.address
    if not field_set.dockerfile.value:
        if field_set.build_args.value:
            raise ImageBuildError(
                f"The `hostprocess_image` target {address} sets `build_args` without "
                f"`dockerfile`: they fill a Dockerfile's ARGs. Remove them, or set `dockerfile`."
            )
        return
    fields = {
        EntrypointField.alias: field_set.entrypoint.value,
        CmdField.alias: field_set.cmd.value,
        EnvField.alias: field_set.env.value,
        WorkingDirField.alias: field_set.working_dir.value,
        UserField.alias: field_set.user.value,
        LabelsField.alias: field_set.labels.value,
        LayersField.alias: field_set.layers.value,
    }
    both = [alias for alias, value in fields.items() if value]
    if both:
        listed = ", ".join(f"`{a}` (the Dockerfile's {DOCKERFILE_REPLACES[a]})" for a in both)
        raise ImageBuildError(
            f"The `hostprocess_image` target {address} sets `dockerfile` and also {listed}: the "
            f"Dockerfile decides these. Remove the fields, or move their values into the "
            f"Dockerfile."
        )


def _dockerfile_base(field_set: HostProcessImageFieldSet, plan: Plan) -> str | None:
    """What a Dockerfile's FROM means: built-in base (None), a pinned external image, or
    the `hostprocess_image` that the `base` field names for an unpinned FROM."""
    base, mapped = plan.base, field_set.base.value
    where = (
        f"the `dockerfile` of the `hostprocess_image` target {field_set.address}: "
        f"line {base.line}"
    )
    if base.kind == "builtin" or base.pinned:
        if mapped:
            raise ImageBuildError(
                f"In {where}, `FROM {base.reference}` already says what the base is, so the "
                f"target's `base` field ({mapped!r}) must be unset."
            )
        return None if base.kind == "builtin" else base.reference
    if mapped and not is_external_reference(mapped):
        return mapped
    name = name_without_tag(base.reference)
    raise ImageBuildError(
        f"In {where}, `FROM {base.reference}` is neither Microsoft's HostProcess base image nor "
        f"pinned by digest, so the build would not be reproducible. Pin it, "
        f"`FROM {name}@sha256:<digest>` (find the digest with `skopeo inspect --format "
        f"'{{{{.Digest}}}}' docker://{base.reference}`), or, if it is an image built here, set "
        f"the target's `base` field to that `hostprocess_image`'s address "
        f'(e.g. `base="//images/org-base"`).'
    )


async def _plan(field_set: HostProcessImageFieldSet) -> DockerfilePlan:
    return await Get(
        DockerfilePlan,
        DockerfilePlanRequest(field_set.dockerfile, field_set.build_args, field_set.architecture),
    )


@rule(desc="Resolve a HostProcess image's base", level=LogLevel.DEBUG)
async def resolve_parent(field_set: HostProcessImageFieldSet) -> ParentImage:
    base = field_set.base.value
    if field_set.dockerfile.value:
        base = _dockerfile_base(field_set, (await _plan(field_set)).plan)
    if not base:
        return ParentImage(None, EMPTY_DIGEST, ())
    if is_external_reference(base):
        pulled = await Get(
            ExternalBase,
            ExternalBaseRequest(
                base, field_set.architecture.value, f"the `base` of {field_set.address}"
            ),
        )
        external = BaseRecord("external", pulled.image.digest, base)
        return ParentImage(pulled.image, pulled.blobs, None, external)
    await _check_base_chain(field_set)
    target = await base_target(field_set.base)
    parent = await Get(
        BuiltImage, HostProcessImageFieldSet, HostProcessImageFieldSet.create(target)
    )
    layer_paths = PathGlobs([blob_path(layer.digest) for layer in parent.image.layers])
    blobs = await Get(Digest, DigestSubset(parent.layout, layer_paths))
    record = BaseRecord("image", parent.image.digest, target.address.spec)
    return ParentImage(parent.image, blobs, parent.files, record, parent.records)


async def _layer_groups(field_set: HostProcessImageFieldSet) -> tuple[list[Addresses], int]:
    """One group per `layers` entry, in order, then the remaining `dependencies`; and how
    many groups came from `layers`."""
    listed, dependencies = await MultiGet(
        Get(Addresses, UnparsedAddressInputs, field_set.layers.to_unparsed_address_inputs()),
        Get(Addresses, DependenciesRequest(field_set.dependencies)),
    )
    groups = [Addresses([address]) for address in listed]
    rest = Addresses(a for a in dependencies if a not in set(listed))
    if rest or not groups:
        groups.append(rest)
    return groups, len(listed)


@rule(desc="Build a HostProcess image", level=LogLevel.DEBUG)
async def build_hostprocess_image(field_set: HostProcessImageFieldSet) -> BuiltImage:
    address = field_set.address
    check_dockerfile_fields(field_set)
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(["SOURCE_DATE_EPOCH"]))
    settings = BuildSettings(mtime=source_date_epoch(env))
    parent = await Get(ParentImage, HostProcessImageFieldSet, field_set)
    plan: Plan | None = None
    if field_set.dockerfile.value:
        planned = await _plan(field_set)
        plan = planned.plan
        from_dockerfile = await Get(
            DockerfileLayers,
            DockerfileLayersRequest(address, planned, field_set.dockerfile_layers.value == "one"),
        )
        inputs: Sequence[LayerInputs] = from_dockerfile.layers
        labels = list(from_dockerfile.labels)
    else:
        groups, explicit = await _layer_groups(field_set)
        inputs = await MultiGet(
            Get(LayerInputs, LayerInputsRequest(address, group)) for group in groups
        )
        labels = _labels(groups, explicit)
    warn_about_shadowing(address, inputs)
    runtime = field_set.runtime_config(plan)

    requests = [
        Get(
            BuiltLayer,
            FilesLayerRequest(
                tree=layer.tree,
                description=f"Building the {label} of {address} ({len(layer.destinations)} files)",
                settings=settings,
            ),
        )
        for layer, label in zip(inputs, labels)
    ]
    history = [f"hostprocess: {label} of {address}" for _, label in zip(inputs, labels)]
    record_labels = [f"{label} of {address}" for label in labels]
    origins = [layer.origins_json() for layer in inputs]
    if parent.image is None:
        requests.insert(0, Get(BuiltLayer, BaseLayerRequest(settings)))
        history.insert(0, BASE_LAYER_HISTORY)
        record_labels.insert(0, BASE_LAYER_LABEL)
        origins.insert(0, origins_json({}))
    built = await MultiGet(requests)
    origin_digests = await MultiGet(
        Get(Digest, CreateDigest([FileContent(ORIGINS_JSON, content)])) for content in origins
    )
    records = tuple(
        LayerRecord(b.layer.digest, label, b.files, origin)
        for b, label, origin in zip(built, record_labels, origin_digests)
    )
    base = parent.base or BaseRecord("builtin", built[0].layer.digest)

    files = None
    if parent.files is not None:
        files = tuple(
            dict.fromkeys([*parent.files, *(d for layer in inputs for d in layer.destinations)])
        )
    image = _assemble(
        field_set, runtime, [b.layer for b in built], history, parent.image, settings.mtime
    )
    check_image(
        str(address),
        image,
        files,
        field_set.skip_checks.value or (),
        from_dockerfile=bool(field_set.dockerfile.value),
    )
    small = await Get(
        Digest,
        CreateDigest(
            FileContent(path, content)
            for path, content in layout_files(image, field_set.image_tags.value or ()).items()
        ),
    )
    layout = await Get(Digest, MergeDigests([small, parent.blobs, *(b.blobs for b in built)]))
    return BuiltImage(image, layout, files, base, (*parent.records, *records))


def _labels(groups: Sequence[Addresses], explicit: int) -> list[str]:
    """How each layer is named in progress output and the config's history."""
    return [
        f"layer {group[0]}" if n < explicit else "files layer" for n, group in enumerate(groups)
    ]


def _assemble(
    field_set: HostProcessImageFieldSet,
    runtime: RuntimeConfig,
    layers: Sequence[Layer],
    history: Sequence[str],
    parent: Image | None,
    created: int,
) -> Image:
    media_family = field_set.media_types.value
    annotations: dict[str, str] = dict(field_set.annotations.value or {})
    if annotations and media_family != "oci":
        raise ImageBuildError(
            f"The `hostprocess_image` target {field_set.address} sets `annotations`, which Docker "
            f'schema 2 manifests cannot carry: remove them or set `media_types="oci"`.'
        )
    try:
        return build_image(
            runtime,
            layers,
            architecture=field_set.architecture.value,
            created=created,
            history=history,
            media_family=media_family,
            annotations=annotations,
            parent=parent,
        )
    except BaseImageError as e:
        raise ImageBuildError(
            f"The `base` of the `hostprocess_image` target {field_set.address} cannot be used: {e}."
        ) from None


def rules() -> Iterable[Rule]:
    return collect_rules()
