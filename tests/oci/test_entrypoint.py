"""The entrypoint check: which programs an image must hold itself."""
from __future__ import annotations

import pytest

from hostprocess.oci.windows.entrypoint import missing_program

IMAGE = ["hello-world.ps1", "bin/Agent.exe", "tools/run.cmd", "setup"]


@pytest.mark.parametrize(
    "entrypoint",
    [
        [],
        ["powershell.exe", "./hello-world.ps1"],
        ["PowerShell"],
        ["cmd", "/c", "echo"],
        ["pwsh.exe"],
        ["bin/agent.exe"],
        ["bin\\AGENT.EXE", "--flag"],
        ["./bin/agent.exe"],
        [".\\bin\\agent"],
        ["%CONTAINER_SANDBOX_MOUNT_POINT%\\bin\\agent.exe"],
        ["%CONTAINER_SANDBOX_MOUNT_POINT%/tools/run"],
        ["setup"],
        ["C:\\Program Files\\agent\\agent.exe"],
        ["c:/tools/x.exe"],
        ["\\\\server\\share\\x.exe"],
    ],
)
def test_programs_found_in_the_image_or_on_the_node(entrypoint: list[str]) -> None:
    assert missing_program(entrypoint, IMAGE) is None


@pytest.mark.parametrize(
    "entrypoint",
    [
        ["agent.exe"],  # it is under bin/, and the working directory is the image root
        ["bin/agnet.exe"],
        ["%CONTAINER_SANDBOX_MOUNT_POINT%\\missing.exe"],
        ["tools/powershell.exe"],  # a system program's name, but asked for inside the image
        ["hello-world.ps2"],
    ],
)
def test_missing_programs_are_reported(entrypoint: list[str]) -> None:
    assert missing_program(entrypoint, IMAGE) == entrypoint[0]
