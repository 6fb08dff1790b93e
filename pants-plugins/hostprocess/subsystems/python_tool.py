"""The base of the plugin's helper programs: Python tools installed as Pants installs its own.

Each tool has default requirements and interpreter constraints, and a default lockfile shipped
inside the plugin as package data (`resource://`), so a repository using the plugin needs no
resolve of ours; `[<scope>].install_from_resolve` pins a tool to the user's own resolve as for
any Pants tool. The tool's own code is the packages of ours it names, passed to its PEX as sources.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Iterable

from pants.backend.python.goals.export import ExportPythonTool, ExportPythonToolSentinel
from pants.backend.python.goals.lockfile import GeneratePythonLockfile
from pants.backend.python.subsystems.python_tool_base import (
    LockfileRules,
    PythonToolRequirementsBase,
)
from pants.backend.python.target_types import EntryPoint
from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.pex import PexRequest
from pants.base.build_environment import get_buildroot
from pants.core.goals.generate_lockfiles import DEFAULT_TOOL_LOCKFILE, GenerateToolLockfileSentinel
from pants.engine.fs import Digest
from pants.engine.rules import rule
from pants.engine.unions import UnionRule
from pants.util.memo import memoized
from pants.util.ordered_set import FrozenOrderedSet

from hostprocess.commandline.schema import Program


class HostProcessPythonTool(PythonToolRequirementsBase):
    """A helper program the plugin runs in sandboxes: our code, `main`, and its requirements."""

    main: ClassVar[EntryPoint]
    # The program's typed commands, and the packages its PEX ships.
    program: ClassVar[Program]
    packages: ClassVar[tuple[ModuleType, ...]]
    register_interpreter_constraints = True
    # Our own lockfile rules (below), so that this repository can regenerate the embedded file.
    lockfile_rules_type = LockfileRules.CUSTOM

    def pex_request(self, sources: Digest) -> PexRequest:
        """The tool's PEX, running `main` from `sources`."""
        return self.to_pex_request(
            interpreter_constraints=self.pex_interpreter_constraints(),
            main=self.main,
            sources=sources,
        )

    def pex_interpreter_constraints(self) -> InterpreterConstraints | None:
        """The tool's own for its embedded lockfile; for `install_from_resolve`, None lets Pants
        use the resolve's unless the option is set (left empty, Pants would fall back to
        `[python].interpreter_constraints` for the embedded lockfile too)."""
        return None if self.install_from_resolve else self.interpreter_constraints

    @classmethod
    def embedded_lockfile(cls) -> Path:
        """Where the default lockfile is: inside the installed plugin, or in this repository."""
        assert cls.default_lockfile_resource is not None
        package, name = cls.default_lockfile_resource
        module_file = importlib.import_module(package).__file__
        assert module_file is not None
        return Path(module_file).parent / name

    def lockfile_request(self) -> GeneratePythonLockfile:
        """Regenerate the embedded lockfile, where it lies under the build root (this
        repository, which runs the plugin from source); an installed plugin's is left alone."""
        path = self.embedded_lockfile()
        try:
            dest = path.relative_to(get_buildroot()).as_posix()
        except ValueError:
            dest = DEFAULT_TOOL_LOCKFILE  # `generate-lockfiles` skips it
        return GeneratePythonLockfile(
            requirements=FrozenOrderedSet(self.all_requirements),
            interpreter_constraints=self.interpreter_constraints,
            resolve_name=self.options_scope,
            lockfile_dest=dest,
            diff=False,
        )

    @classmethod
    def rules(cls: Any) -> Iterable[Any]:
        yield from super().rules()
        yield from _tool_rules(cls)


@memoized
def _tool_rules(tool: type[HostProcessPythonTool]) -> Iterable[Any]:
    """`generate-lockfiles --resolve=<scope>` and `export --resolve=<scope>` for `tool`."""

    class LockfileSentinel(GenerateToolLockfileSentinel):
        resolve_name = tool.options_scope

    class ExportSentinel(ExportPythonToolSentinel):
        pass

    for sentinel in (LockfileSentinel, ExportSentinel):
        sentinel.__name__ = f"{tool.__name__}{sentinel.__name__}"
        sentinel.__qualname__ = f"{__name__}.{sentinel.__name__}"

    @rule(_param_type_overrides={"request": LockfileSentinel, "subsystem": tool})
    async def lockfile_request(
        request: GenerateToolLockfileSentinel, subsystem: HostProcessPythonTool
    ) -> GeneratePythonLockfile:
        return subsystem.lockfile_request()

    @rule(_param_type_overrides={"request": ExportSentinel, "subsystem": tool})
    async def export_request(
        request: ExportPythonToolSentinel, subsystem: HostProcessPythonTool
    ) -> ExportPythonTool:
        pex_request = subsystem.to_pex_request(
            interpreter_constraints=subsystem.pex_interpreter_constraints()
        )
        return ExportPythonTool(subsystem.options_scope, pex_request)

    return (
        UnionRule(GenerateToolLockfileSentinel, LockfileSentinel),
        UnionRule(ExportPythonToolSentinel, ExportSentinel),
        lockfile_request,
        export_request,
    )
