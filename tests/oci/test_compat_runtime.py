"""The config checks: working directory, environment paths, user, PATH, os.version."""
from __future__ import annotations

from typing import Any

import pytest

from hostprocess.compat import runtime
from hostprocess.compat.image import single_manifest_findings, windows_image_findings
from hostprocess.compat.image_files import ImageFiles

IMAGE = ImageFiles.of(["app/bin/agent.exe", "app/conf/agent.yaml", "License.txt"])


def config(**fields: Any) -> dict[str, Any]:
    return {"os": "windows", "architecture": "amd64", "config": fields}


@pytest.mark.parametrize(
    "working_dir",
    ["", "%CONTAINER_SANDBOX_MOUNT_POINT%", "%container_sandbox_mount_point%\\app", "app"],
)
def test_working_directories_inside_the_mount(working_dir: str) -> None:
    assert runtime.working_dir_findings(config(WorkingDir=working_dir)) == []


@pytest.mark.parametrize("working_dir", ["C:\\app", "c:/app", "C:\\hpc\\app", "D:\\data"])
def test_absolute_working_directories_are_refused_with_the_mount_form(working_dir: str) -> None:
    [finding] = runtime.working_dir_findings(config(WorkingDir=working_dir))
    assert finding.check == "working-dir" and "containerd 1.7" in finding.message
    assert "%CONTAINER_SANDBOX_MOUNT_POINT%\\" in finding.notes[0]


def test_env_paths_to_the_images_files_are_reported() -> None:
    env = [
        "AGENT_HOME=C:\\app",
        "PATH=C:\\Windows\\system32;C:\\Windows;C:\\APP\\bin",
        "AGENT_CONFIG=c:\\app\\conf\\agent.yaml",
    ]
    found = runtime.env_path_findings(config(Env=env), IMAGE)
    assert [f.check for f in found] == ["env-paths"] * 3
    assert "%CONTAINER_SANDBOX_MOUNT_POINT%\\APP\\bin" in found[1].notes[0]


@pytest.mark.parametrize(
    "value",
    [
        "C:\\Windows\\system32;C:\\Windows",  # the host's, as meant
        "%CONTAINER_SANDBOX_MOUNT_POINT%\\app\\bin",
        "C:\\ProgramData\\agent",  # not in the image: a host path, as meant
        "D:\\app",
        "app\\bin",
        "plain text",
    ],
)
def test_env_values_that_do_not_name_the_images_files_pass(value: str) -> None:
    assert runtime.env_path_findings(config(Env=[f"X={value}"]), IMAGE) == []


@pytest.mark.parametrize(
    "user",
    [
        "",
        "NT AUTHORITY\\SYSTEM",
        "nt authority\\Local service",
        "NT AUTHORITY\\NetworkService",
        "ContainerUser",
        "ContainerAdministrator",
        "hpc-agents",  # a local group
    ],
)
def test_users_hostprocess_can_run_as(user: str) -> None:
    assert runtime.user_findings(config(User=user)) == []


@pytest.mark.parametrize(
    "user",
    [
        "CONTOSO\\svc-agent",
        ".\\agent",
        "agent@contoso.com",
        "Administrator",
        "NT AUTHORITY\\Anonymous",
    ],
)
def test_named_users_are_refused_with_the_pod_level_fix(user: str) -> None:
    [finding] = runtime.user_findings(config(User=user))
    assert finding.check == "user" and f"`{user}`" in finding.message
    assert "runAsUserName" in finding.notes[0]


def test_path_without_system32_is_reported() -> None:
    [finding] = runtime.path_findings(config(Env=["Path=C:\\app"]))
    assert finding.check == "path-keeps-system32"
    assert runtime.path_findings(config(Env=["PATH=%SystemRoot%\\System32\\;C:\\app"])) == []
    assert runtime.path_findings(config(Env=["OTHER=1"])) == []


def test_os_version_and_features_are_reported() -> None:
    [finding] = runtime.os_version_findings({**config(), "os.version": "10.0.17763.1"})
    assert finding.check == "no-os-version" and "10.0.17763.1" in finding.message
    assert runtime.os_version_findings(config()) == []


def test_a_linux_image_is_named_as_such() -> None:
    found = windows_image_findings({"os": "linux"}, [("etc", "etc/hostname")])
    assert [f.check for f in found] == ["windows-image", "windows-image"]
    assert "'linux'" in found[0].message and "Linux layers" in found[1].message
    assert windows_image_findings(config(), [("Files", "Files/x"), ("Hives", "Files")]) == []


def test_a_manifest_list_or_platform_is_reported() -> None:
    manifest = {"layers": [{"digest": "sha256:1"}]}
    assert single_manifest_findings({"manifests": [{"digest": "d"}]}, manifest) == []
    two = {"manifests": [{"digest": "a"}, {"digest": "b", "platform": {"os": "windows"}}]}
    problems = [f.message for f in single_manifest_findings(two, manifest)]
    assert any("2 manifests" in p for p in problems) and any("platform" in p for p in problems)
