"""`pants publish` for `hostprocess_image`: push the packaged layout to each registry.

The push is the one deliberately uncached step (network side effects, credentials): it runs
the image tool as an interactive process, whose environment carries only the variables that
locate credentials. Secrets are never in argv, in a cached process or in `dist/`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

from pants.base.build_root import BuildRoot
from pants.core.goals.package import OutputPathField
from pants.core.goals.publish import (
    PublishFieldSet,
    PublishOutputData,
    PublishPackages,
    PublishProcesses,
    PublishRequest,
)
from pants.core.util_rules.distdir import DistDir
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import AddPrefix, Digest, MergeDigests
from pants.engine.rules import Get, MultiGet, Rule, collect_rules, rule
from pants.engine.target import Target, WrappedTarget, WrappedTargetRequest
from pants.engine.unions import UnionRule
from pants.util.frozendict import FrozenDict

from hostprocess.oci.commands import TOOL_DOCUMENTS, TOOL_LAYOUT, DeadlineOptions, PushCommand
from hostprocess.oci.publish_record import RECORD_SUFFIX
from hostprocess.oci.reference import Reference
from hostprocess.registries import CREDENTIAL_LOCATIONS, RegistryOptions, credential_env
from hostprocess.subsystem import HostProcessSubsystem
from hostprocess.target_types.image import (
    BaseImageField,
    ImageTagsField,
    RegistriesField,
    RepositoryField,
    SignField,
    SkipPushField,
    is_external_reference,
)
from hostprocess.util_rules.documents import ImageDocuments, ImageDocumentsRequest
from hostprocess.util_rules.image import BuiltImage, HostProcessImageFieldSet, base_target
from hostprocess.util_rules.tool import ToolRequest, ca_cert_digest, interactive_tool_process


class PublishHostProcessImageRequest(PublishRequest):
    pass


@dataclass(frozen=True)
class PublishHostProcessImageFieldSet(PublishFieldSet):
    publish_request_type = PublishHostProcessImageRequest
    required_fields = (RegistriesField, ImageTagsField)

    registries: RegistriesField
    repository: RepositoryField
    image_tags: ImageTagsField
    output_path: OutputPathField
    sign: SignField

    @classmethod
    def opt_out(cls, tgt: Target) -> bool:
        # `skip_push` images are left out before anything is built.
        return tgt[SkipPushField].value

    def get_output_data(self) -> PublishOutputData:
        return PublishOutputData({"publisher": "hostprocess", **super().get_output_data()})


async def _mount_sources(target: Target, subsystem: HostProcessSubsystem) -> dict[str | None, str]:
    """Where the base's blobs probably are already, by registry (None: any registry).

    A registry can then mount them into this repository instead of receiving them again.
    """
    base = target[BaseImageField].value
    if not base:
        return {}
    if is_external_reference(base):
        reference = Reference.parse(base)
        return {reference.registry: reference.repository}
    parent = await base_target(target[BaseImageField])
    return {None: parent[RepositoryField].value_or_default(subsystem.default_repository)}


@dataclass(frozen=True)
class _Signing:
    """The key a registry's pushes sign with: both paths absolute (the push runs uncached)."""

    key: str
    password_env: str | None
    public_key_out: str


def _signing(
    field_set: PublishHostProcessImageFieldSet,
    registry: RegistryOptions,
    subsystem: HostProcessSubsystem,
    build_root: BuildRoot,
    files: _PushFiles,
) -> _Signing | None:
    """The registry's `signing_key`, else `[hostprocess].signing_key`, as the `sign` field
    allows; `sign=True` without a key fails before anything is pushed."""
    wanted = field_set.sign.value
    key = registry.signing_key or subsystem.signing_key
    if wanted is False or (not key and wanted is None):
        return None
    if not key:
        raise ValueError(
            f"The `hostprocess_image` target {field_set.address} sets `sign=True`, but no signing "
            f"key is configured for the registry {registry.address}: set "
            f"`[hostprocess].signing_key` (or `signing_key` in its `[hostprocess].registries` "
            f"entry), or remove `sign=True`."
        )
    password_env = registry.signing_key_password_env or subsystem.signing_key_password_env
    return _Signing(
        os.path.join(build_root.path, key), password_env or None, files.public_key(registry)
    )


def _push_command(
    registry: RegistryOptions,
    repository: str,
    tag: str | None,
    files: _PushFiles,
    mount_from: str | None,
    deadlines: DeadlineOptions,
    attach: tuple[str, ...],
    signing: _Signing | None,
) -> PushCommand:
    first = not files.follows
    return PushCommand(
        layout=TOOL_LAYOUT,
        registry=registry.address,
        repository=repository,
        tag=(tag,) if tag else (),
        insecure=registry.insecure,
        ca_cert=registry.ca_cert or None,
        username_env=registry.username_env or None,
        password_env=registry.password_env if registry.username_env else None,
        record=files.record,
        failure_marker=files.failure_marker(registry),
        follows=files.follows,
        mount_from=mount_from if mount_from and mount_from != repository else None,
        deadlines=deadlines,
        attach=attach if first else (),
        signing_key=signing.key if signing and first else None,
        signing_key_password_env=signing.password_env if signing and first else None,
        public_key_out=signing.public_key_out if signing and first else None,
    )


def publish_record(output_path: OutputPathField, build_root: BuildRoot, dist_dir: DistDir) -> str:
    """The image's publish record, absolute: the steps that write and read it run uncached."""
    stem = output_path.value_or_default(file_ending=None)
    return os.path.join(build_root.path, dist_dir.relpath, stem + RECORD_SUFFIX)


@dataclass(frozen=True)
class _PushFiles:
    """Where a push step records what it pushed, and whether an earlier step ran before it."""

    record: str  # absolute: dist/<output_path>.publish.json
    follows: bool  # a later tag of the same image and registry

    def failure_marker(self, registry: RegistryOptions) -> str:
        """Written by a registry's first step when the image did not get there (see PushCommand)."""
        return f"{self._stem(registry)}.push-failed"

    def public_key(self, registry: RegistryOptions) -> str:
        """Where a registry's first step writes the public half of its signing key."""
        return f"{self._stem(registry)}.pub"

    def _stem(self, registry: RegistryOptions) -> str:
        stem = self.record[: -len(RECORD_SUFFIX)]
        return f"{stem}.{registry.address.replace(':', '-')}"


@rule(desc="Prepare to push HostProcess images")
async def push_hostprocess_image(
    request: PublishHostProcessImageRequest,
    subsystem: HostProcessSubsystem,
    build_root: BuildRoot,
    dist_dir: DistDir,
) -> PublishProcesses:
    field_set = request.field_set
    address = field_set.address
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(address, description_of_origin="the publish goal")
    )
    image_field_set = HostProcessImageFieldSet.create(wrapped.target)
    built = await Get(BuiltImage, HostProcessImageFieldSet, image_field_set)
    repository = field_set.repository.value_or_default(subsystem.default_repository)
    name = os.path.basename(field_set.output_path.value_or_default(file_ending=None))
    documents = await Get(
        ImageDocuments, ImageDocumentsRequest(image_field_set, built, name, repository)
    )
    layout, placed_documents = await MultiGet(
        Get(Digest, AddPrefix(built.layout, TOOL_LAYOUT)),
        Get(Digest, AddPrefix(documents.digest, TOOL_DOCUMENTS)),
    )
    attach = tuple(f"{d.kind.name}={TOOL_DOCUMENTS}/{d.path}" for d in documents.documents)
    digest = built.image.digest
    tags = tuple(field_set.image_tags.value or ())
    record = publish_record(field_set.output_path, build_root, dist_dir)
    registries = tuple(
        subsystem.registries().resolve(tuple(field_set.registries.value or ()), owner=str(address))
    )
    if not registries:
        return PublishProcesses(
            [
                PublishPackages(
                    names=(f"{repository}@{digest}",),
                    description="(no registry: set `registries` on the target or a default in `[hostprocess].registries`)",
                )
            ]
        )

    mount_sources = await _mount_sources(wrapped.target, subsystem)
    jobs = []
    for registry in registries:
        if registry.skip_push:
            names = tuple(f"{registry.address}/{repository}:{tag}" for tag in tags) or (
                f"{registry.address}/{repository}@{digest}",
            )
            skipped = f"(`skip_push` is set for the `{registry.alias}` registry)"
            jobs.append(PublishPackages(names=names, description=skipped))
            continue
        mount_from = mount_sources.get(registry.address, mount_sources.get(None))
        signing = _signing(field_set, registry, subsystem, build_root, _PushFiles(record, False))
        env_names = (
            *CREDENTIAL_LOCATIONS,
            *filter(None, (registry.username_env, registry.password_env)),
            *filter(None, (signing.password_env if signing else None,)),
        )
        env = await Get(EnvironmentVars, EnvironmentVarsRequest(env_names))
        inputs = await Get(
            Digest, MergeDigests([layout, placed_documents, await ca_cert_digest(registry)])
        )
        # One step per tag, so that Pants' summary says exactly which tags moved. The first
        # also attaches the documents and signatures.
        for index, tag in enumerate(tags or (None,)):
            command = _push_command(
                registry,
                repository,
                tag,
                _PushFiles(record, follows=index > 0),
                mount_from,
                subsystem.registry_deadlines(),
                attach,
                signing,
            )
            process = await interactive_tool_process(
                ToolRequest(
                    command,
                    inputs,
                    f"Push {address} to {registry.address}",
                    extra_env=FrozenDict({**env, **credential_env(env)}),
                )
            )
            reference = f"{repository}:{tag}" if tag else f"{repository}@{digest}"
            jobs.append(
                PublishPackages(
                    names=(f"{registry.address}/{reference}",),
                    process=process,
                    description=f"{registry.address} as {digest}",
                    data=PublishOutputData(
                        {"digest": digest, "registry": registry.address, "repository": repository}
                    ),
                )
            )
    return PublishProcesses(jobs)


def rules() -> Iterable[Rule | UnionRule]:
    return (*collect_rules(), *PublishHostProcessImageFieldSet.rules())
