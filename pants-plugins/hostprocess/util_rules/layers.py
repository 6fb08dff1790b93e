"""Layer blobs: one sandboxed, cacheable tool process per layer.

A layer process sees only the tool and the layer's own files, and writes the blob under
`blobs/sha256/<hex>` plus a small `layer.json`, so its result is cached (locally and
remotely) by the digest of exactly those inputs; layers of one image build in parallel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable

from pants.engine.fs import AddPrefix, Digest, GlobMatchErrorBehavior, PathGlobs, Snapshot
from pants.engine.rules import Get, Rule, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from hostprocess.oci.commands import (
    LAYER_JSON,
    PANTS_CONCURRENCY,
    TOOL_OUT,
    BaseLayerCommand,
    LayerCommand,
    LayerOptions,
)
from hostprocess.oci.image import Layer
from hostprocess.subsystem import HostProcessSubsystem
from hostprocess.util_rules.tool import ToolOutput, ToolRequest

CC0_LEGALCODE = "cc0-legalcode.txt"
BASE_LAYER_HISTORY = "hostprocess: base layer (licences, empty registry hives)"
TREE_ROOT = "root"  # where a files layer's tree is in its sandbox
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
    description: str
    settings: BuildSettings


def _layer_options(subsystem: HostProcessSubsystem, settings: BuildSettings) -> LayerOptions:
    return LayerOptions(
        out=TOOL_OUT,
        level=subsystem.compression_level,
        compression=subsystem.compression,
        mtime=settings.mtime,
        threads=PANTS_CONCURRENCY,
    )


async def _build_layer(
    command: BaseLayerCommand | LayerCommand, input_digest: Digest, description: str
) -> BuiltLayer:
    output = await Get(
        ToolOutput,
        ToolRequest(command, input_digest, description, concurrency_available=TOOL_THREADS),
    )
    return BuiltLayer(Layer.from_json(json.loads(output.metadata[LAYER_JSON])), output.blobs)


@rule(desc="Build the base layer", level=LogLevel.DEBUG)
async def build_base_layer(
    request: BaseLayerRequest, subsystem: HostProcessSubsystem
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
    command = BaseLayerCommand(CC0_LEGALCODE, _layer_options(subsystem, request.settings))
    return await _build_layer(command, cc0.digest, "Building the HostProcess base layer")


@rule(desc="Build a files layer", level=LogLevel.DEBUG)
async def build_files_layer(
    request: FilesLayerRequest, subsystem: HostProcessSubsystem
) -> BuiltLayer:
    command = LayerCommand(TREE_ROOT, _layer_options(subsystem, request.settings))
    tree = await Get(Digest, AddPrefix(request.tree, TREE_ROOT))
    return await _build_layer(command, tree, request.description)


def rules() -> Iterable[Rule | UnionRule]:
    return collect_rules()
