"""External bases: a digest-pinned image pulled by a cacheable tool process.

The process's only inputs are the reference (with its digest), the architecture and the
locations of Docker's credentials, so Pants caches the verified blobs by digest: after the
first build, the base comes from the cache (local or remote) without touching the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import Digest
from pants.engine.rules import Get, Rule, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from hostprocess.oci.commands import CONFIG_FILE, MANIFEST_FILE, TOOL_OUT, PullCommand
from hostprocess.oci.image import Image, image_from_manifest
from hostprocess.oci.reference import Reference
from hostprocess.registries import CREDENTIAL_LOCATIONS, credential_env
from hostprocess.subsystem import HostProcessSubsystem
from hostprocess.util_rules.tool import ToolOutput, ToolRequest, ca_cert_digest


@dataclass(frozen=True)
class ExternalBaseRequest:
    reference: str  # registry/repository@sha256:...
    architecture: str
    description_of_origin: str


@dataclass(frozen=True)
class ExternalBase:
    image: Image
    blobs: Digest  # the layers, at blobs/sha256/<hex>


@rule(desc="Pull an external base image", level=LogLevel.DEBUG)
async def pull_external_base(
    request: ExternalBaseRequest, subsystem: HostProcessSubsystem
) -> ExternalBase:
    reference = Reference.parse(request.reference)
    assert reference.registry is not None and reference.digest is not None
    registry = subsystem.registries().for_address(reference.registry)
    command = PullCommand(
        reference=str(reference),
        architecture=request.architecture,
        out=TOOL_OUT,
        insecure=registry.insecure,
        ca_cert=registry.ca_cert or None,
        deadlines=subsystem.registry_deadlines(),
    )
    input_digest = await ca_cert_digest(registry)
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(CREDENTIAL_LOCATIONS))
    output = await Get(
        ToolOutput,
        ToolRequest(
            command,
            input_digest,
            f"Pulling the base image {reference} ({request.description_of_origin})",
            extra_env=FrozenDict(credential_env(env)),
        ),
    )
    image = image_from_manifest(output.metadata[MANIFEST_FILE], output.metadata[CONFIG_FILE])
    return ExternalBase(image, output.blobs)


def rules() -> Iterable[Rule | UnionRule]:
    return collect_rules()
