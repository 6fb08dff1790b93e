"""Layer blobs: one sandboxed, cacheable tool process per layer.

A layer process sees only the tool and the layer's own files, and writes the blob under
`blobs/sha256/<hex>` plus a small `layer.json`, so its result is cached (locally and
remotely) by the digest of exactly those inputs; layers of one image build in parallel.
It also lists each file it wrote with its checksums (`files.json`), for the image's SBOM.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable

from pants.engine.fs import CreateDigest, Digest, DigestSubset, FileContent, PathGlobs, RemovePrefix
from pants.engine.rules import Get, Rule, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel
from pants.util.resources import read_resource

from hostprocess.oci.commands import (
    LAYER_JSON,
    TOOL_OUT,
    BaseLayerCommand,
    LayerCommand,
    LayerOptions,
)
from hostprocess.oci.file_digests import FILES_JSON
from hostprocess.oci.image import Layer
from hostprocess.subsystem import HostProcessSubsystem
from hostprocess.util_rules.sandbox_inputs import sandbox_tree
from hostprocess.util_rules.tool import ToolOutput, ToolRequest

# The CC0 1.0 legal code the base layer embeds: package data of the core, so every
# repository builds the same base layer from the installed plugin.
CC0_LEGALCODE = "cc0-legalcode.txt"
CC0_PACKAGE = "hostprocess.oci"
BASE_LAYER_HISTORY = "hostprocess: base layer (licences, empty registry hives)"
BASE_LAYER_LABEL = "built-in HostProcess base layer"
TREE_ROOT = "root"  # where a files layer's tree is in its sandbox


@dataclass(frozen=True)
class BuildSettings:
    """Inputs every layer shares: they are part of each layer process's cache key."""

    mtime: int


@dataclass(frozen=True)
class BuiltLayer:
    layer: Layer
    blobs: Digest  # `blobs/sha256/<hex>`, ready to merge into an OCI layout
    files: Digest  # `files.json`: each file's path, size and checksums, for the SBOM


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
    """No `threads`: the tool compresses on every core of the machine it runs on. Declaring
    `concurrency_available` instead made Pants 2.17 start a large layer on one core and then
    cancel and restart it to rebalance; the bytes do not depend on the thread count, and an
    argv without it keeps the cache key the same on every machine."""
    return LayerOptions(
        out=TOOL_OUT,
        level=subsystem.compression_level,
        compression=subsystem.compression,
        mtime=settings.mtime,
    )


async def _build_layer(
    command: BaseLayerCommand | LayerCommand,
    input_digest: Digest,
    description: str,
    immutable_inputs: FrozenDict[str, Digest] = FrozenDict(),
) -> BuiltLayer:
    request = ToolRequest(command, input_digest, description, immutable_inputs=immutable_inputs)
    output = await Get(ToolOutput, ToolRequest, request)
    listed = await Get(Digest, DigestSubset(output.output, PathGlobs([f"{TOOL_OUT}/{FILES_JSON}"])))
    files = await Get(Digest, RemovePrefix(listed, TOOL_OUT))
    layer = Layer.from_json(json.loads(output.metadata[LAYER_JSON]))
    return BuiltLayer(layer, output.blobs, files)


@rule(desc="Build the base layer", level=LogLevel.DEBUG)
async def build_base_layer(
    request: BaseLayerRequest, subsystem: HostProcessSubsystem
) -> BuiltLayer:
    legalcode = FileContent(CC0_LEGALCODE, read_resource(CC0_PACKAGE, CC0_LEGALCODE))
    cc0 = await Get(Digest, CreateDigest([legalcode]))
    command = BaseLayerCommand(CC0_LEGALCODE, _layer_options(subsystem, request.settings))
    return await _build_layer(command, cc0, "Building the HostProcess base layer")


@rule(desc="Build a files layer", level=LogLevel.DEBUG)
async def build_files_layer(
    request: FilesLayerRequest, subsystem: HostProcessSubsystem
) -> BuiltLayer:
    command = LayerCommand(TREE_ROOT, _layer_options(subsystem, request.settings))
    tree = await sandbox_tree(request.tree, TREE_ROOT)
    return await _build_layer(
        command, tree.input_digest, request.description, tree.immutable_inputs
    )


def rules() -> Iterable[Rule | UnionRule]:
    return collect_rules()
