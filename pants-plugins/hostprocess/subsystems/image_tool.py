"""`[hostprocess-image-tool]`: the program that writes every layer, config and manifest."""

from __future__ import annotations

from pants.backend.python.target_types import EntryPoint

import hostprocess.commandline
import hostprocess.oci
from hostprocess.oci.commands import PROGRAM
from hostprocess.subsystems.python_tool import HostProcessPythonTool


class ImageToolSubsystem(HostProcessPythonTool):
    options_scope = "hostprocess-image-tool"
    name = "hostprocess image tool"
    help = (
        "The hostprocess image tool (the plugin's `hostprocess.oci` package), which writes "
        "layers, configs and manifests in sandboxes and pushes images. Its deflate and zstd "
        "implementations decide layer bytes: pin another version only deliberately. It also signs "
        "(cryptography, PyNaCl) at publish time."
    )

    default_version = "isal==1.9.1"
    default_extra_requirements = ["zstandard==0.25.0", "cryptography==43.0.3", "PyNaCl==1.6.2"]
    default_interpreter_constraints = ["CPython>=3.9,<3.13"]
    default_lockfile_resource = ("hostprocess.subsystems", "image_tool.lock")
    main = EntryPoint("hostprocess.oci.cli", "main")
    program = PROGRAM
    packages = (hostprocess.commandline, hostprocess.oci)
