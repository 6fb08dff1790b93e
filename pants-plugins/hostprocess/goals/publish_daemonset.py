"""`pants publish` for `hostprocess_daemonset`: push the image, then write the manifests.

Pants 2.17 runs publish processes in a set order across targets, so the image's pushes are
this target's own first processes (to the registries its manifests name), and each
manifest is written only once the image's publish record shows the digest it pins at that
registry: a manifest never points at an image the registry does not have. Publishing the
image target too only repeats a push that uploads nothing.
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
from pants.engine.rules import Get, Rule, collect_rules, rule
from pants.engine.target import WrappedTarget, WrappedTargetRequest
from pants.engine.unions import UnionRule

from hostprocess.goals.publish import (
    PublishHostProcessImageFieldSet,
    PublishHostProcessImageRequest,
    publish_record,
)
from hostprocess.oci.commands import WriteIfPushedCommand
from hostprocess.target_types.daemonset import DaemonSetImageField
from hostprocess.target_types.image import SkipPushField
from hostprocess.util_rules.daemonset import (
    DaemonSetManifests,
    HostProcessDaemonSetFieldSet,
    PinnedManifest,
)
from hostprocess.util_rules.tool import ToolRequest, interactive_tool_process


class PublishHostProcessDaemonSetRequest(PublishRequest):
    pass


@dataclass(frozen=True)
class PublishHostProcessDaemonSetFieldSet(PublishFieldSet):
    publish_request_type = PublishHostProcessDaemonSetRequest
    required_fields = (DaemonSetImageField,)

    image: DaemonSetImageField

    def get_output_data(self) -> PublishOutputData:
        return PublishOutputData({"publisher": "hostprocess", **super().get_output_data()})


async def _write_job(
    manifest: PinnedManifest,
    result: DaemonSetManifests,
    record: str,
    build_root: BuildRoot,
    dist_dir: DistDir,
) -> PublishPackages:
    """The step that writes one manifest, once the record shows the image pushed there."""
    shown = os.path.join(dist_dir.relpath, manifest.path)
    command = WriteIfPushedCommand(
        reference=manifest.reference,
        digest=result.digest,
        record=record,
        file=manifest.path,
        dest=os.path.join(build_root.path, shown),
    )
    process = await interactive_tool_process(
        ToolRequest(command, result.files, f"Write {shown}, pinning {manifest.reference}")
    )
    return PublishPackages(
        names=(shown,),
        process=process,
        description=f"{dist_dir.relpath}/ as a manifest pinning {manifest.reference}",
        data=PublishOutputData(
            {"manifest": shown, "image": manifest.reference, "digest": result.digest}
        ),
    )


def _not_pushed(shown: tuple[str, ...], reason: str, digest: str) -> PublishProcesses:
    """Nothing to publish: the image is not pushed, so no manifest is pinned to a push."""
    description = (
        f"({reason}, so nothing ensures a registry has {digest}: `pants package` writes the "
        f"manifest)"
    )
    return PublishProcesses([PublishPackages(names=shown, description=description)])


@rule(desc="Prepare to publish HostProcess DaemonSets")
async def publish_hostprocess_daemonset(
    request: PublishHostProcessDaemonSetRequest,
    build_root: BuildRoot,
    dist_dir: DistDir,
) -> PublishProcesses:
    address = request.field_set.address
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(address, description_of_origin="the publish goal")
    )
    result = await Get(
        DaemonSetManifests,
        HostProcessDaemonSetFieldSet,
        HostProcessDaemonSetFieldSet.create(wrapped.target),
    )
    image = result.image_target
    shown = tuple(os.path.join(dist_dir.relpath, m.path) for m in result.manifests)
    if image[SkipPushField].value:
        return _not_pushed(shown, f"its image {image.address} has `skip_push=True`", result.digest)
    if all(m.registry.skip_push for m in result.manifests):
        aliases = ", ".join(sorted({f"`{m.registry.alias}`" for m in result.manifests}))
        reason = f"`skip_push` is set for the {aliases} registry in `[hostprocess].registries`"
        return _not_pushed(shown, reason, result.digest)
    registries = {m.registry.address for m in result.manifests}
    pushes = await Get(
        PublishProcesses,
        PublishHostProcessImageRequest(PublishHostProcessImageFieldSet.create(image), ()),
    )
    record = publish_record(image[OutputPathField], build_root, dist_dir)
    writes = []
    for manifest in result.manifests:
        writes.append(await _write_job(manifest, result, record, build_root, dist_dir))
    return PublishProcesses([*(p for p in pushes if p.data.get("registry") in registries), *writes])


def rules() -> Iterable[Rule | UnionRule]:
    return (*collect_rules(), *PublishHostProcessDaemonSetFieldSet.rules())
