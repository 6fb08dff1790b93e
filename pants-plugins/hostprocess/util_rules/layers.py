"""Layer blobs: one sandboxed, cacheable tool process per layer.

A layer process sees only the tool and the layer's own files, and writes the blob under
`blobs/sha256/<hex>` plus a small `layer.json`, so its result is cached (locally and
remotely) by the digest of exactly those inputs; layers of one image build in parallel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pants.backend.python.util_rules.pex import VenvPexProcess
from pants.engine.fs import (
    AddPrefix,
    Digest,
    GlobMatchErrorBehavior,
    PathGlobs,
    Snapshot,
)
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel

from hostprocess.oci.image import Layer
from hostprocess.subsystem import HostProcessSubsystem
from hostprocess.util_rules.tool import TOOL_OUT, ImageTool, ToolOutput, ToolOutputRequest

LAYER_JSON = "layer.json"
CC0_LEGALCODE = "cc0-legalcode.txt"
# The tool writes the same bytes whatever its thread count, so this only affects speed.
TOOL_THREADS = 4


@dataclass(frozen=True)
class BuildSettings:
    """Inputs every layer shares: they are part of each layer process's cache key."""

    mtime: int


@dataclass(frozen=True)
class BuiltLayer:
    layer: Layer
    blobs: Digest  # `blobs/sha256/<hex>`, ready to merge into an OCI layout


@dataclass(frozen=True)
class BaseLayerRequest:
    settings: BuildSettings


@dataclass(frozen=True)
class FilesLayerRequest:
    """A layer of the files in `tree`, whose paths are their destinations under `C:\\`."""

    tree: Digest
    created_by: str
    description: str
    settings: BuildSettings


def _layer_argv(
    subsystem: HostProcessSubsystem, settings: BuildSettings, created_by: str
) -> tuple[str, ...]:
    return (
        "--out",
        TOOL_OUT,
        "--created-by",
        created_by,
        "--compression",
        subsystem.compression.value,
        "--level",
        str(subsystem.compression_level),
        "--mtime",
        str(settings.mtime),
        "--threads",
        "{pants_concurrency}",
    )


async def _run_layer_process(
    tool: ImageTool, argv: tuple[str, ...], input_digest: Digest, description: str
) -> BuiltLayer:
    result = await Get(
        ProcessResult,
        VenvPexProcess(
            tool.pex,
            argv=argv,
            input_digest=input_digest,
            output_directories=(TOOL_OUT,),
            description=description,
            level=LogLevel.INFO,
            concurrency_available=TOOL_THREADS,
        ),
    )
    output = await Get(ToolOutput, ToolOutputRequest(result.output_digest, (LAYER_JSON,)))
    return BuiltLayer(Layer.from_json(json.loads(output.metadata[LAYER_JSON])), output.blobs)


@rule(desc="Build the base layer", level=LogLevel.DEBUG)
async def build_base_layer(
    request: BaseLayerRequest, tool: ImageTool, subsystem: HostProcessSubsystem
) -> BuiltLayer:
    cc0 = await Get(
        Snapshot,
        PathGlobs(
            [CC0_LEGALCODE],
            glob_match_error_behavior=GlobMatchErrorBehavior.error,
            description_of_origin=(
                f"the hostprocess base layer (put the CC0 1.0 legal code at `{CC0_LEGALCODE}` in "
                "the build root, e.g. a copy of Debian's /usr/share/common-licenses/CC0-1.0)"
            ),
        ),
    )
    argv = (
        "base-layer",
        "--cc0",
        CC0_LEGALCODE,
        *_layer_argv(
            subsystem, request.settings, "hostprocess: base layer (licences, empty registry hives)"
        ),
    )
    return await _run_layer_process(tool, argv, cc0.digest, "Building the HostProcess base layer")


@rule(desc="Build a files layer", level=LogLevel.DEBUG)
async def build_files_layer(
    request: FilesLayerRequest, tool: ImageTool, subsystem: HostProcessSubsystem
) -> BuiltLayer:
    argv = (
        "layer",
        "--root",
        "root",
        *_layer_argv(subsystem, request.settings, request.created_by),
    )
    tree = await Get(Digest, AddPrefix(request.tree, "root"))
    return await _run_layer_process(tool, argv, tree, request.description)


def rules():
    return collect_rules()
