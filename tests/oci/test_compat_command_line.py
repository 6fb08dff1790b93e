"""The command-line checks: which programs and scripts an image must hold itself."""
from __future__ import annotations

from typing import Any

import pytest

from hostprocess.compat.command_line import CommandLine, missing_program, missing_scripts
from hostprocess.compat.image_files import ImageFiles

IMAGE = ImageFiles.of(
    ["hello-world.ps1", "bin/Agent.exe", "tools/run.cmd", "setup", "app/Start.PS1", "app/go.bat"]
)


def line(entrypoint: list[str], cmd: list[str] | None = None, working_dir: str = "") -> CommandLine:
    config: dict[str, Any] = {"Entrypoint": entrypoint, "Cmd": cmd, "WorkingDir": working_dir}
    return CommandLine.of({"config": config})


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
        ["%OTHER%\\x.exe"],
    ],
)
def test_programs_found_in_the_image_or_on_the_node(entrypoint: list[str]) -> None:
    assert missing_program(line(entrypoint), IMAGE) is None


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
    finding = missing_program(line(entrypoint), IMAGE)
    assert finding is not None and finding.check == "entrypoint-program"
    assert f"`{entrypoint[0]}`" in finding.message


def test_a_program_is_found_from_the_working_directory() -> None:
    working = line(["Agent.exe"], working_dir="%CONTAINER_SANDBOX_MOUNT_POINT%\\bin")
    assert missing_program(working, IMAGE) is None


@pytest.mark.parametrize(
    "entrypoint, cmd, working_dir",
    [
        (["powershell.exe", "./hello-world.ps1"], None, ""),
        (["powershell.exe"], ["-File", "HELLO-WORLD.ps1"], ""),
        (
            ["pwsh", "-NoProfile", "-ExecutionPolicy", "Bypass", "-File", ".\\app\\start.ps1"],
            None,
            "",
        ),
        (["powershell", "-f", "%CONTAINER_SANDBOX_MOUNT_POINT%\\app\\Start.ps1"], None, ""),
        (["powershell", "-File", "$env:CONTAINER_SANDBOX_MOUNT_POINT/hello-world.ps1"], None, ""),
        (["powershell.exe", "./start.ps1"], None, "%CONTAINER_SANDBOX_MOUNT_POINT%\\app"),
        (["powershell.exe", "-Command", "./missing.ps1"], None, ""),  # command text: not decided
        (["powershell.exe", "-c", "Write-Host hi"], None, ""),
        (["powershell.exe", "Get-Date"], None, ""),
        (["powershell.exe", "-File", "C:\\scripts\\x.ps1"], None, ""),  # a host path
        (["cmd", "/c", "tools\\run.cmd"], None, ""),
        (["cmd.exe", "/S", "/C", "app\\go.bat arg"], None, ""),
        (["cmd", "/c", "bin\\agent"], None, ""),
        (["cmd", "/c", "echo", "hi"], None, ""),
        (["cmd", "/c"], None, ""),
        (["bin/agent.exe", "missing.ps1"], None, ""),  # not a shell: its arguments are its own
    ],
)
def test_scripts_found_in_the_image(
    entrypoint: list[str], cmd: list[str] | None, working_dir: str
) -> None:
    assert missing_scripts(line(entrypoint, cmd, working_dir), IMAGE) == []


@pytest.mark.parametrize(
    "entrypoint, cmd, script, where",
    [
        # The seed's pattern with a script the image does not hold.
        (["powershell.exe", "./other.ps1"], None, "./other.ps1", "C:\\other.ps1"),
        (["powershell.exe"], ["-File", "start.ps1"], "start.ps1", "C:\\start.ps1"),
        (
            ["pwsh", "-ExecutionPolicy", "Bypass", "-File", "app\\stop.ps1"],
            None,
            "app\\stop.ps1",
            "C:\\app\\stop.ps1",
        ),
        (["cmd", "/c", "tools\\rum.cmd"], None, "tools\\rum.cmd", "C:\\tools\\rum.cmd"),
        (["cmd", "/c", "install.bat", "/quiet"], None, "install.bat", "C:\\install.bat"),
    ],
)
def test_missing_scripts_are_reported_with_the_nearest_names(
    entrypoint: list[str], cmd: list[str] | None, script: str, where: str
) -> None:
    [finding] = missing_scripts(line(entrypoint, cmd), IMAGE)
    assert finding.check == "entrypoint-script"
    assert f"`{script}`" in finding.message and where in finding.message
    assert finding.notes[0].startswith("nearest files the image holds: ")


def test_the_nearest_names_include_the_files_beside_the_missing_one() -> None:
    [finding] = missing_scripts(line(["powershell.exe", "./other.ps1"]), IMAGE)
    assert "C:\\hello-world.ps1" in finding.notes[0]


def test_cmd_running_a_program_the_image_lacks_is_reported() -> None:
    [finding] = missing_scripts(line(["cmd", "/c", "bin\\missing.exe"]), IMAGE)
    assert finding.check == "entrypoint-script" and "`bin\\missing.exe`" in finding.message
