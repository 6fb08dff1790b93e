"""The manifests of a `hostprocess_daemonset`: one YAML document per registry of its image.

The image is built in the same run (the `BuiltImage` rule), so the digest a manifest pins
is the one in `<image>.image.json` and the layout beside it. The manifests are small and
built here with the pure `hostprocess.deploy` core; no process runs. `package` writes them,
and `publish` writes them once the image is pushed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

from pants.core.goals.package import OutputPathField, PackageFieldSet
from pants.engine.fs import CreateDigest, Digest, DigestContents, FileContent
from pants.engine.rules import Get, Rule, collect_rules, rule
from pants.engine.target import HydratedSources, HydrateSourcesRequest, Target
from pants.util.logging import LogLevel

from hostprocess.deploy.daemonset import DaemonSetSpec, ManifestError, build, render
from hostprocess.deploy.template import TemplateError, load_template
from hostprocess.deploy.values import max_unavailable
from hostprocess.oci.reference import Reference
from hostprocess.registries import RegistryConfigError, RegistryOptions
from hostprocess.subsystem import HostProcessSubsystem
from hostprocess.target_types.daemonset import (
    ALIAS,
    ArgsField,
    DaemonSetImageField,
    DaemonSetRegistryField,
    K8sEnvField,
    K8sLabelsField,
    MaxUnavailableField,
    NamespaceField,
    NodeSelectorField,
    PriorityClassField,
    ResourceNameField,
    ResourcesField,
    RunAsUserNameField,
    SelectorField,
    ServiceAccountField,
    TemplateField,
    TolerationsField,
    UpdateStrategyField,
    VolumeMountsField,
    VolumesField,
)
from hostprocess.target_types.fields import thaw
from hostprocess.target_types.image import ArchitectureField, RegistriesField, RepositoryField
from hostprocess.util_rules.image import BuiltImage, HostProcessImageFieldSet, image_target


class DaemonSetBuildError(Exception):
    """A `hostprocess_daemonset` cannot be written as declared; the message says how to fix it."""


@dataclass(frozen=True)
class HostProcessDaemonSetFieldSet(PackageFieldSet):
    required_fields = (DaemonSetImageField,)

    image: DaemonSetImageField
    registry: DaemonSetRegistryField
    resource_name: ResourceNameField
    namespace: NamespaceField
    labels: K8sLabelsField
    selector: SelectorField
    node_selector: NodeSelectorField
    run_as_user_name: RunAsUserNameField
    tolerations: TolerationsField
    update_strategy: UpdateStrategyField
    max_unavailable: MaxUnavailableField
    resources: ResourcesField
    env: K8sEnvField
    args: ArgsField
    volumes: VolumesField
    volume_mounts: VolumeMountsField
    service_account: ServiceAccountField
    priority_class: PriorityClassField
    template: TemplateField
    output_path: OutputPathField

    def spec(self, architecture: str) -> DaemonSetSpec:
        name = self.resource_name.value or self.address.target_name
        return DaemonSetSpec(
            name=name,
            container_name=name,
            architecture=architecture,
            run_as_user_name=self.run_as_user_name.value,
            namespace=self.namespace.value or "",
            labels=dict(self.labels.value or {}),
            selector=dict(self.selector.value or {}),
            node_selector=dict(self.node_selector.value or {}),
            tolerations=tuple(thaw(t) for t in self.tolerations.value),
            update_strategy=self.update_strategy.value or "RollingUpdate",
            max_unavailable=(
                max_unavailable(self.max_unavailable.value) if self.max_unavailable.value else None
            ),
            resources=thaw(self.resources.value) or {},
            env=dict(self.env.value or {}),
            args=tuple(self.args.value or ()),
            volumes=tuple(thaw(v) for v in self.volumes.value),
            volume_mounts=tuple(thaw(m) for m in self.volume_mounts.value),
            service_account=self.service_account.value or "",
            priority_class=self.priority_class.value or "",
        )


@dataclass(frozen=True)
class PinnedManifest:
    path: str  # relative to dist/
    registry: RegistryOptions
    reference: str  # registry/repository@sha256:...


@dataclass(frozen=True)
class DaemonSetManifests:
    """The manifests of one target (at their dist/ paths) and the image they pin."""

    image_target: Target
    digest: str
    manifests: tuple[PinnedManifest, ...]
    files: Digest


def _chosen_registries(
    field_set: HostProcessDaemonSetFieldSet, image: Target, subsystem: HostProcessSubsystem
) -> tuple[RegistryOptions, ...]:
    configured = subsystem.registries()
    try:
        registries = tuple(
            configured.resolve(tuple(image[RegistriesField].value or ()), owner=str(image.address))
        )
        wanted = field_set.registry.value
        chosen = (
            tuple(configured.resolve((wanted,), owner=str(field_set.address))) if wanted else ()
        )
    except RegistryConfigError as e:
        raise DaemonSetBuildError(str(e)) from None
    if not registries:
        raise DaemonSetBuildError(
            f"The `{ALIAS}` target {field_set.address} pins the image {image.address} by "
            f"registry and digest, but that image has no registry to be pulled from. Set "
            f'`registries=["registry.example.com"]` on {image.address}, or configure a default '
            f"registry in pants.toml: "
            f'`[hostprocess] registries = {{"company": {{"address": "registry.example.com", "default": true}}}}`.'
        )
    if not chosen:
        return registries
    addresses = {r.address for r in registries}
    if chosen[0].address not in addresses:
        raise DaemonSetBuildError(
            f"The `registry` field of the `{ALIAS}` target {field_set.address} is "
            f"{field_set.registry.value!r}, which is not one of the registries the image "
            f"{image.address} is published to ({', '.join(sorted(addresses))}): choose one of "
            f"them, or add it to the image's `registries`."
        )
    return chosen


def manifest_paths(
    field_set: HostProcessDaemonSetFieldSet, registries: tuple[RegistryOptions, ...]
) -> list[str]:
    """`<output_path>.yaml`, or `<output_path>.<alias or host>.yaml` for each of several registries."""
    base = field_set.output_path.value_or_default(file_ending=None)
    if len(registries) == 1:
        return [f"{base}.yaml"]
    return [f"{base}.{(r.alias or r.address).replace(':', '-')}.yaml" for r in registries]


async def _template(
    field_set: HostProcessDaemonSetFieldSet,
) -> tuple[Optional[dict[str, Any]], str]:
    if not field_set.template.value:
        return None, ""
    hydrated = await Get(HydratedSources, HydrateSourcesRequest(field_set.template))
    [content] = await Get(DigestContents, Digest, hydrated.snapshot.digest)
    try:
        return load_template(content.content, content.path), content.path
    except TemplateError as e:
        raise DaemonSetBuildError(
            f"The `template` of the `{ALIAS}` target {field_set.address}: {e}"
        ) from None


@rule(desc="Write HostProcess DaemonSet manifests", level=LogLevel.DEBUG)
async def daemonset_manifests(
    field_set: HostProcessDaemonSetFieldSet, subsystem: HostProcessSubsystem
) -> DaemonSetManifests:
    image = await image_target(
        field_set.image,
        f"the `image` field of {field_set.address}",
        lambda address, target: DaemonSetBuildError(
            f"The `image` field of the `{ALIAS}` target {field_set.address} names {address}, "
            f"which is a `{target.alias}` target: name a `hostprocess_image`."
        ),
    )
    registries = _chosen_registries(field_set, image, subsystem)
    built = await Get(BuiltImage, HostProcessImageFieldSet, HostProcessImageFieldSet.create(image))
    template, template_path = await _template(field_set)
    repository = image[RepositoryField].value_or_default(subsystem.default_repository)
    digest = built.image.digest
    spec = field_set.spec(image[ArchitectureField].value)
    manifests, files = [], []
    for registry, path in zip(registries, manifest_paths(field_set, registries)):
        reference = str(Reference(registry.address, repository, digest=digest))
        try:
            manifest = build(spec, reference, template, template_path)
        except (ManifestError, TemplateError) as e:
            raise DaemonSetBuildError(f"The `{ALIAS}` target {field_set.address}: {e}") from None
        header = f"Written by `pants package {field_set.address}`: do not edit.\nImage: {image.address} ({reference})"
        files.append(FileContent(path, render(manifest, header)))
        manifests.append(PinnedManifest(path, registry, reference))
    digest_tree = await Get(Digest, CreateDigest(files))
    return DaemonSetManifests(image, digest, tuple(manifests), digest_tree)


def rules() -> Iterable[Rule]:
    return collect_rules()
