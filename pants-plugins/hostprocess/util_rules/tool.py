"""The plugin's helper programs (image tool, Dockerfile parser, image test runner), run as
PEXes inside Pants' sandboxes.

A program's sources are its packages, read from the installed plugin; its third-party
requirements come from its subsystem (the lockfile inside the plugin by default), so each
program (and therefore every layer's bytes) is pinned by content and shared through Pants'
caches. `ToolRequest` runs any typed command of any of them, the one place a helper process
is made: the command's type selects the program.
"""

from __future__ import annotations

import dataclasses
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
from pants.engine.process import InteractiveProcess, Process, ProcessCacheScope, ProcessResult
from pants.engine.rules import Get, MultiGet, Rule, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from hostprocess.commandline.schema import Command
from hostprocess.oci.commands import Command as ImageToolCommand
from hostprocess.registries import RegistryOptions
from hostprocess.subsystems.dockerfile_parser import DockerfileParserSubsystem
from hostprocess.subsystems.image_test_runner import ImageTestRunnerSubsystem
from hostprocess.subsystems.image_tool import ImageToolSubsystem
from hostprocess.subsystems.python_tool import HostProcessPythonTool


@dataclass(frozen=True)
class ToolPex:
    pex: VenvPex


@dataclass(frozen=True)
class ToolPexRequest:
    """The program whose commands are `command_type`s."""

    command_type: type[Command]


@dataclass(frozen=True)
class ToolRequest:
    """One helper program command to run, as the docker backend's `DockerBinary` builds its
    processes: `Get(ProcessResult, ToolRequest, ...)` runs it sandboxed and cached,
    `Get(ToolOutput, ToolRequest, ...)` also reads what an image tool command wrote, and
    `interactive_tool_process` makes the uncached process that publish runs."""

    command: Command
    input_digest: Digest
    description: str
    extra_env: FrozenDict[str, str] = FrozenDict()
    immutable_inputs: FrozenDict[str, Digest] = FrozenDict()  # sandbox path -> digest
    level: LogLevel = LogLevel.INFO
    cache_scope: ProcessCacheScope = ProcessCacheScope.SUCCESSFUL


@dataclass(frozen=True)
class ToolOutput:
    metadata: FrozenDict[str, bytes]  # file name -> content, as `command.metadata` names them
    blobs: Digest  # blobs/sha256/<hex>, ready to merge into an OCI layout
    output: Digest  # everything the command wrote, for outputs read only by later processes


@rule(desc="Prepare a helper program process", level=LogLevel.DEBUG)
async def tool_process(request: ToolRequest) -> Process:
    command = request.command
    tool = await Get(ToolPex, ToolPexRequest(type(command)))
    process = await Get(
        Process,
        VenvPexProcess(
            tool.pex,
            argv=command.to_argv(),
            input_digest=request.input_digest,
            output_files=command.output_files(),
            output_directories=command.output_directories(),
            extra_env=request.extra_env,
            description=request.description,
            level=request.level,
            cache_scope=request.cache_scope,
        ),
    )
    # Pants memoizes the VenvPexProcess without comparing descriptions: layers whose trees are
    # all immutable inputs share its argv and input digest, so the description is set again.
    immutable = {**process.immutable_input_digests, **request.immutable_inputs}
    return dataclasses.replace(
        process,
        description=request.description,
        immutable_input_digests=FrozenDict(immutable),
    )


@rule(desc="Run an image tool command and read its output", level=LogLevel.DEBUG)
async def read_tool_output(request: ToolRequest) -> ToolOutput:
    """Only the metadata is read into memory; blobs stay digests in Pants' store."""
    command = request.command
    assert isinstance(command, ImageToolCommand), command
    result = await Get(ProcessResult, ToolRequest, request)
    (out,) = command.output_directories()
    small, blobs = await MultiGet(
        Get(
            Digest,
            DigestSubset(
                result.output_digest,
                PathGlobs([f"{out}/{name}" for name in command.metadata]),
            ),
        ),
        Get(Digest, DigestSubset(result.output_digest, PathGlobs([f"{out}/blobs/**"]))),
    )
    contents, blobs = await MultiGet(
        Get(DigestContents, Digest, small), Get(Digest, RemovePrefix(blobs, out))
    )
    prefix = f"{out}/"
    metadata = FrozenDict({fc.path[len(prefix) :]: fc.content for fc in contents})
    return ToolOutput(metadata, blobs, result.output_digest)


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


@rule(desc="Build a hostprocess helper program")
async def build_tool(
    request: ToolPexRequest,
    image_tool: ImageToolSubsystem,
    parser: DockerfileParserSubsystem,
    runner: ImageTestRunnerSubsystem,
) -> ToolPex:
    """The PEX of the program `request.command_type` belongs to, shipping its packages."""
    subsystems: tuple[HostProcessPythonTool, ...] = (image_tool, parser, runner)
    (subsystem,) = (s for s in subsystems if request.command_type in s.program.commands)
    sources = await Get(Digest, CreateDigest, package_sources(*subsystem.packages))
    return ToolPex(await Get(VenvPex, PexRequest, subsystem.pex_request(sources)))


def rules() -> Iterable[Rule | UnionRule]:
    return (
        *collect_rules(),
        *ImageToolSubsystem.rules(),
        *DockerfileParserSubsystem.rules(),
        *ImageTestRunnerSubsystem.rules(),
        *pex.rules(),
    )
