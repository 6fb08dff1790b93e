"""The image tool: our own core package, run as a PEX inside Pants' sandboxes.

Its sources are read from the installed plugin and its third-party requirements come from
`[hostprocess-image-tool]` (the lockfile inside the plugin by default), so the tool (and
therefore every layer's bytes) is pinned by content and shared through Pants' caches.
`ToolRequest` runs any of its commands (`oci/commands.py`), the one place a tool process is
made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Iterable, cast

from pants.backend.python.util_rules import pex
from pants.backend.python.util_rules.pex import PexRequest, VenvPex, VenvPexProcess
from pants.engine.fs import (
    EMPTY_DIGEST,
    CreateDigest,
    Digest,
    DigestContents,
    DigestSubset,
    FileContent,
    GlobMatchErrorBehavior,
    PathGlobs,
    RemovePrefix,
)
from pants.engine.process import InteractiveProcess, Process, ProcessResult
from pants.engine.rules import Get, MultiGet, Rule, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

import hostprocess.oci
from hostprocess.oci.commands import Command
from hostprocess.registries import RegistryOptions
from hostprocess.subsystems.image_tool import ImageToolSubsystem


@dataclass(frozen=True)
class ImageTool:
    pex: VenvPex


@dataclass(frozen=True)
class ToolRequest:
    """One image tool command to run, as the docker backend's `DockerBinary` builds its
    processes: `Get(ProcessResult, ToolRequest, ...)` runs it sandboxed and cached,
    `Get(ToolOutput, ToolRequest, ...)` also reads what it wrote, and
    `interactive_tool_process` makes the uncached process that publish runs."""

    command: Command
    input_digest: Digest
    description: str
    extra_env: FrozenDict[str, str] = FrozenDict()
    concurrency_available: int = 0


@dataclass(frozen=True)
class ToolOutput:
    metadata: FrozenDict[str, bytes]  # file name -> content, as `command.metadata` names them
    blobs: Digest  # blobs/sha256/<hex>, ready to merge into an OCI layout


@rule(desc="Prepare an image tool process", level=LogLevel.DEBUG)
async def tool_process(request: ToolRequest, tool: ImageTool) -> Process:
    command = request.command
    return await Get(
        Process,
        VenvPexProcess(
            tool.pex,
            argv=command.to_argv(),
            input_digest=request.input_digest,
            output_files=command.output_files(),
            output_directories=command.output_directories(),
            extra_env=request.extra_env,
            description=request.description,
            level=LogLevel.INFO,
            concurrency_available=request.concurrency_available,
        ),
    )


@rule(desc="Run an image tool command and read its output", level=LogLevel.DEBUG)
async def read_tool_output(request: ToolRequest) -> ToolOutput:
    """Only the metadata is read into memory; blobs stay digests in Pants' store."""
    result = await Get(ProcessResult, ToolRequest, request)
    (out,) = request.command.output_directories()
    small, blobs = await MultiGet(
        Get(
            Digest,
            DigestSubset(
                result.output_digest,
                PathGlobs([f"{out}/{name}" for name in request.command.metadata]),
            ),
        ),
        Get(Digest, DigestSubset(result.output_digest, PathGlobs([f"{out}/blobs/**"]))),
    )
    contents, blobs = await MultiGet(
        Get(DigestContents, Digest, small), Get(Digest, RemovePrefix(blobs, out))
    )
    prefix = f"{out}/"
    return ToolOutput(FrozenDict({fc.path[len(prefix) :]: fc.content for fc in contents}), blobs)


async def interactive_tool_process(request: ToolRequest) -> InteractiveProcess:
    """The command as an uncached process run in the foreground (publish's pushes)."""
    process = await Get(Process, ToolRequest, request)
    return InteractiveProcess.from_process(process)


async def ca_cert_digest(registry: RegistryOptions) -> Digest:
    """The registry's `ca_cert` at its path relative to the build root, for the input
    digest of a command passed that path (an absolute path is read where it is)."""
    if not registry.ca_cert or os.path.isabs(registry.ca_cert):
        return EMPTY_DIGEST
    return await Get(
        Digest,
        PathGlobs(
            [registry.ca_cert],
            glob_match_error_behavior=GlobMatchErrorBehavior.error,
            description_of_origin=(
                f"`ca_cert` of the `{registry.alias}` registry in `[hostprocess].registries`"
            ),
        ),
    )


def core_sources() -> CreateDigest:
    """The image tool's sources: every module of the core package and its subpackages."""
    return package_sources(hostprocess.oci)


def package_sources(*packages: ModuleType) -> CreateDigest:
    """Every module of `packages` and their subpackages, at their import paths, in a fixed
    order: a helper program ships only the packages it runs."""
    files = [FileContent("hostprocess/__init__.py", b"")]
    for package in packages:
        root = Path(cast(str, package.__file__)).parent
        prefix = package.__name__.replace(".", "/")
        modules = sorted(path.relative_to(root).as_posix() for path in root.rglob("*.py"))
        files.extend(FileContent(f"{prefix}/{m}", (root / m).read_bytes()) for m in modules)
    return CreateDigest(files)


@rule(desc="Build the hostprocess image tool")
async def build_image_tool(subsystem: ImageToolSubsystem) -> ImageTool:
    sources = await Get(Digest, CreateDigest, core_sources())
    return ImageTool(await Get(VenvPex, PexRequest, subsystem.pex_request(sources)))


def rules() -> Iterable[Rule | UnionRule]:
    return (*collect_rules(), *ImageToolSubsystem.rules(), *pex.rules())
