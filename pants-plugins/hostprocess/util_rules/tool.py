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
from pants.engine.fs import CreateDigest, Digest, FileContent
from pants.engine.rules import Get, collect_rules, rule

import hostprocess.oci

TOOL_RESOLVE = "hostprocess-tool"
TOOL_REQUIREMENTS = ("isal", "zstandard")
TOOL_MAIN = EntryPoint("hostprocess.oci.cli", "main")


@dataclass(frozen=True)
class ImageTool:
    pex: VenvPex


def core_sources() -> CreateDigest:
    """The core package's modules, at their import paths."""
    package = Path(hostprocess.oci.__file__).parent
    files = [FileContent("hostprocess/__init__.py", b"")]
    files.extend(
        FileContent(f"hostprocess/oci/{path.name}", path.read_bytes())
        for path in sorted(package.glob("*.py"))
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
