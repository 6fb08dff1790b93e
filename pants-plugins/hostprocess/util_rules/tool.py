"""The image tool: our own core package, run as a PEX inside Pants' sandboxes.

Its sources are read from the installed plugin and its third-party requirements come from
the `hostprocess-tool` resolve's lockfile, so the tool (and therefore every layer's bytes)
is pinned by content and shared through Pants' caches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.target_types import EntryPoint
from pants.backend.python.util_rules import pex
from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.pex import PexRequest, VenvPex
from pants.backend.python.util_rules.pex_requirements import PexRequirements, Resolve
from pants.engine.fs import (
    CreateDigest,
    Digest,
    DigestContents,
    DigestSubset,
    FileContent,
    PathGlobs,
    RemovePrefix,
)
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.frozendict import FrozenDict

import hostprocess.oci

TOOL_RESOLVE = "hostprocess-tool"
TOOL_REQUIREMENTS = ("isal", "zstandard")
TOOL_MAIN = EntryPoint("hostprocess.oci.cli", "main")


# Where every tool command that writes blobs puts its results.
TOOL_OUT = "out"


@dataclass(frozen=True)
class ImageTool:
    pex: VenvPex


@dataclass(frozen=True)
class ToolOutputRequest:
    """A tool process's `out/` directory: some small metadata files, and `blobs/`."""

    output_digest: Digest
    metadata: tuple[str, ...]  # file names under out/


@dataclass(frozen=True)
class ToolOutput:
    metadata: FrozenDict[str, bytes]  # file name -> content
    blobs: Digest  # blobs/sha256/<hex>, ready to merge into an OCI layout


@rule(desc="Read a tool process's output")
async def read_tool_output(request: ToolOutputRequest) -> ToolOutput:
    """Only the metadata is read into memory; blobs stay digests in Pants' store."""
    small, blobs = await MultiGet(
        Get(
            Digest,
            DigestSubset(
                request.output_digest,
                PathGlobs([f"{TOOL_OUT}/{name}" for name in request.metadata]),
            ),
        ),
        Get(Digest, DigestSubset(request.output_digest, PathGlobs([f"{TOOL_OUT}/blobs/**"]))),
    )
    contents, blobs = await MultiGet(
        Get(DigestContents, Digest, small), Get(Digest, RemovePrefix(blobs, TOOL_OUT))
    )
    prefix = f"{TOOL_OUT}/"
    return ToolOutput(FrozenDict({fc.path[len(prefix) :]: fc.content for fc in contents}), blobs)


def core_sources() -> CreateDigest:
    """Every module of the core package and its subpackages, at their import paths."""
    package = Path(hostprocess.oci.__file__).parent
    modules = sorted(path.relative_to(package).as_posix() for path in package.rglob("*.py"))
    files = [FileContent("hostprocess/__init__.py", b"")]
    files.extend(
        FileContent(f"hostprocess/oci/{module}", (package / module).read_bytes())
        for module in modules
    )
    return CreateDigest(files)


@rule(desc="Build the hostprocess image tool")
async def build_image_tool(python_setup: PythonSetup) -> ImageTool:
    if TOOL_RESOLVE not in python_setup.resolves:
        raise ValueError(
            f"The hostprocess plugin installs its image tool from the Python resolve "
            f"`{TOOL_RESOLVE}`, which `[python].resolves` in pants.toml does not define. Add "
            f'`{TOOL_RESOLVE} = "3rdparty/python/hostprocess-tool.lock"` there (see README: Install).'
        )
    sources = await Get(Digest, CreateDigest, core_sources())
    ics = python_setup.resolves_to_interpreter_constraints.get(TOOL_RESOLVE)
    venv_pex = await Get(
        VenvPex,
        PexRequest(
            output_filename="hostprocess_tool.pex",
            internal_only=True,
            requirements=PexRequirements(
                TOOL_REQUIREMENTS,
                from_superset=Resolve(TOOL_RESOLVE, use_entire_lockfile=False),
                description_of_origin="the hostprocess image tool",
            ),
            interpreter_constraints=InterpreterConstraints(
                ics or python_setup.interpreter_constraints
            ),
            main=TOOL_MAIN,
            sources=sources,
        ),
    )
    return ImageTool(venv_pex)


def rules():
    return (*collect_rules(), *pex.rules())
