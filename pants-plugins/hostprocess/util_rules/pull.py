"""External bases: a digest-pinned image pulled by a cacheable tool process.

The process's only inputs are the reference (with its digest), the architecture and the
locations of Docker's credentials, so Pants caches the verified blobs by digest: after the
first build, the base comes from the cache (local or remote) without touching the network.
"""

from __future__ import annotations

from dataclasses import dataclass

from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import (
    Digest,
    GlobMatchErrorBehavior,
    PathGlobs,
)
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel

from hostprocess.oci.image import Image, image_from_manifest
from hostprocess.oci.pull import CONFIG_FILE, MANIFEST_FILE
from hostprocess.oci.reference import Reference
from hostprocess.registries import CREDENTIAL_LOCATIONS, credential_env
from hostprocess.subsystem import HostProcessSubsystem
from hostprocess.util_rules.tool import TOOL_OUT, ImageTool, ToolOutput, ToolOutputRequest


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
    request: ExternalBaseRequest, tool: ImageTool, subsystem: HostProcessSubsystem
) -> ExternalBase:
    reference = Reference.parse(request.reference)
    assert reference.registry is not None and reference.digest is not None
    registry = subsystem.registries().for_address(reference.registry)
    argv = [
        "pull",
        "--reference",
        str(reference),
        "--architecture",
        request.architecture,
        "--out",
        TOOL_OUT,
    ]
    input_digest = None
    if registry.insecure:
        argv.append("--insecure")
    if registry.ca_cert:
        argv += ["--ca-cert", registry.ca_cert]
        input_digest = await Get(
            Digest,
            PathGlobs(
                [registry.ca_cert],
                glob_match_error_behavior=GlobMatchErrorBehavior.error,
                description_of_origin=f"`ca_cert` of the `{registry.alias}` registry in `[hostprocess].registries`",
            ),
        )
    env = await Get(EnvironmentVars, EnvironmentVarsRequest(CREDENTIAL_LOCATIONS))
    result = await Get(
        ProcessResult,
        VenvPexProcess(
            tool.pex,
            argv=argv,
            input_digest=input_digest,
            extra_env=credential_env(env),
            output_directories=(TOOL_OUT,),
            description=f"Pulling the base image {reference} ({request.description_of_origin})",
            level=LogLevel.INFO,
        ),
    )
    output = await Get(
        ToolOutput, ToolOutputRequest(result.output_digest, (MANIFEST_FILE, CONFIG_FILE))
    )
    image = image_from_manifest(output.metadata[MANIFEST_FILE], output.metadata[CONFIG_FILE])
    return ExternalBase(image, output.blobs)


def rules():
    return collect_rules()
