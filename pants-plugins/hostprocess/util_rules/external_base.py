"""External images: a digest-pinned image pulled by a cacheable tool process, as an image's
`base` or as the image a `hostprocess_image_test` tests.

The process's only inputs are the reference (with its digest), the architecture (a base's)
and the locations of Docker's credentials, so Pants caches the verified blobs by digest: after
the first build, the image comes from the cache (local or remote) without touching the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import Digest
from pants.engine.process import FallibleProcessResult
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
    architecture: str  # the base must be Windows for it
    description_of_origin: str


@dataclass(frozen=True)
class ExternalBase:
    image: Image
    blobs: Digest  # the layers, at blobs/sha256/<hex>


@dataclass(frozen=True)
class ExternalImageRequest:
    """An image to test, pinned by digest: pulled as a base is, but whatever its platform,
    so that its test reports a Linux image instead of the pull refusing it."""

    reference: str  # registry/repository@sha256:...
    description_of_origin: str


@dataclass(frozen=True)
class ExternalImage:
    """The pulled image, or (`pulled` None) the failed pull, whose output says why."""

    pulled: ExternalBase | None
    result: FallibleProcessResult


async def _pull_request(
    reference_text: str,
    architecture: str | None,
    what: str,
    origin: str,
    subsystem: HostProcessSubsystem,
) -> ToolRequest:
    """The one pull process: the registry's options, its CA and Docker's credentials."""
    reference = Reference.parse(reference_text)
    assert reference.registry is not None and reference.digest is not None
    registry = subsystem.registries().for_address(reference.registry)
    command = PullCommand(
        reference=str(reference),
        architecture=architecture,
        out=TOOL_OUT,
        insecure=registry.insecure,
        ca_cert=registry.ca_cert or None,
        deadlines=subsystem.registry_deadlines(),
    )
    input_digest = await ca_cert_digest(registry)
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(CREDENTIAL_LOCATIONS))
    return ToolRequest(
        command,
        input_digest,
        f"Pulling {what} {reference} ({origin})",
        extra_env=FrozenDict(credential_env(env)),
    )


def _external(output: ToolOutput) -> ExternalBase:
    image = image_from_manifest(output.metadata[MANIFEST_FILE], output.metadata[CONFIG_FILE])
    return ExternalBase(image, output.blobs)


@rule(desc="Pull an external base image", level=LogLevel.DEBUG)
async def pull_external_base(
    request: ExternalBaseRequest, subsystem: HostProcessSubsystem
) -> ExternalBase:
    pull = await _pull_request(
        request.reference,
        request.architecture,
        "the base image",
        request.description_of_origin,
        subsystem,
    )
    return _external(await Get(ToolOutput, ToolRequest, pull))


@rule(desc="Pull an image to test", level=LogLevel.DEBUG)
async def pull_external_image(
    request: ExternalImageRequest, subsystem: HostProcessSubsystem
) -> ExternalImage:
    pull = await _pull_request(
        request.reference, None, "the image", request.description_of_origin, subsystem
    )
    result = await Get(FallibleProcessResult, ToolRequest, pull)
    if result.exit_code != 0:
        return ExternalImage(None, result)
    # The same process as above: Pants runs it once and reads its outputs here.
    output = await Get(ToolOutput, ToolRequest, pull)
    return ExternalImage(_external(output), result)


def rules() -> Iterable[Rule | UnionRule]:
    return collect_rules()
