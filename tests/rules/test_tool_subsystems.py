"""The helper programs' subsystems: embedded lockfiles that match their defaults, package data.

`./pants generate-lockfiles` rewrites the lockfiles inside the plugin package; these tests fail
when someone changes a tool's default requirements or interpreter constraints without doing so.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from pants.backend.python.util_rules.interpreter_constraints import InterpreterConstraints
from pants.backend.python.util_rules.lockfile_metadata import (
    PythonLockfileMetadata,
    PythonLockfileMetadataV2,
)
from pants.util.resources import read_resource

from hostprocess.subsystems.dockerfile_parser import DockerfileParserSubsystem
from hostprocess.subsystems.image_test_runner import ImageTestRunnerSubsystem
from hostprocess.subsystems.image_tool import ImageToolSubsystem
from hostprocess.subsystems.python_tool import HostProcessPythonTool
from hostprocess.util_rules.layers import CC0_LEGALCODE, CC0_PACKAGE

TOOLS = [ImageToolSubsystem, DockerfileParserSubsystem, ImageTestRunnerSubsystem]


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.options_scope)
def test_lockfile_header_matches_the_defaults(tool: type[HostProcessPythonTool]) -> None:
    assert tool.default_lockfile_resource is not None
    lockfile = read_resource(*tool.default_lockfile_resource)
    metadata = PythonLockfileMetadata.from_lockfile(
        lockfile, resolve_name=tool.options_scope, delimeter="//"
    )
    assert isinstance(metadata, PythonLockfileMetadataV2)  # requirements as a set, not a hash
    locked = sorted(str(requirement) for requirement in metadata.requirements)
    assert locked == sorted([tool.default_version, *tool.default_extra_requirements])
    assert metadata.valid_for_interpreter_constraints == InterpreterConstraints(
        tool.default_interpreter_constraints
    )
    assert f"pants generate-lockfiles --resolve={tool.options_scope}\n" in lockfile.decode()


def test_scopes_are_ours() -> None:
    """Not the docker backend's `[dockerfile-parser]`: a repository may use both backends."""
    scopes = [tool.options_scope for tool in TOOLS]
    assert all(scope.startswith("hostprocess-") for scope in scopes), scopes


def test_cc0_package_data_is_the_repository_legal_code() -> None:
    """The base layer embeds the package's copy; the repository root keeps the original."""
    assert read_resource(CC0_PACKAGE, CC0_LEGALCODE) == Path("cc0-legalcode.txt").read_bytes()
