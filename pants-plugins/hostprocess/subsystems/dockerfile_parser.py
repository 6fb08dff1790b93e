"""`[hostprocess-dockerfile-parser]`: BuildKit's own Dockerfile parser, for `dockerfile=`.

Not the docker backend's `[dockerfile-parser]`: a repository may use both backends.
"""

from __future__ import annotations

from pants.backend.python.target_types import EntryPoint

import hostprocess.commandline
import hostprocess.dockerfile
from hostprocess.dockerfile.commands import PROGRAM
from hostprocess.subsystems.python_tool import HostProcessPythonTool


class DockerfileParserSubsystem(HostProcessPythonTool):
    options_scope = "hostprocess-dockerfile-parser"
    name = "hostprocess Dockerfile parser"
    help = (
        "Parses the Dockerfiles of `hostprocess_image(dockerfile=...)` with the Python bindings "
        "to BuildKit's Go parser (the `dockerfile` package), so continuations, heredocs and "
        "`# escape=` behave as in `docker build`; also fetches `ADD --checksum` URLs."
    )

    default_version = "dockerfile==3.4.0"
    default_interpreter_constraints = ["CPython>=3.9,<3.13"]
    default_lockfile_resource = ("hostprocess.subsystems", "dockerfile_parser.lock")
    main = EntryPoint("hostprocess.dockerfile.cli", "main")
    program = PROGRAM
    packages = (hostprocess.commandline, hostprocess.dockerfile)
