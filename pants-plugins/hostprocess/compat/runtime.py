"""Checks on the config's runtime fields, as HostProcess on containerd 1.6 and 1.7+ reads them.

containerd 1.7 mounts a HostProcess container's image at `C:\\hpc` with the bind filter and
runs its processes on the host's file system. An absolute `C:\\` path in `WorkingDir` or in
`Env` is then the host's own path, where 1.6 (and hcsshim's fallback) joined it under the
image's mount: images that worked on 1.6 start in an empty directory on 1.7. Only
`%CONTAINER_SANDBOX_MOUNT_POINT%` names the image's files on both.
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Mapping

from hostprocess.compat.catalog import Finding
from hostprocess.compat.command_line import MOUNT_POINT_VARIABLES
from hostprocess.compat.image_files import ImageFiles

SYSTEM32 = ("c:\\windows\\system32", "%systemroot%\\system32", "%windir%\\system32")
ABSOLUTE = re.compile(r"^[A-Za-z]:[\\/]")
HOST_OWNED = ("windows",)  # the image's copy only holds the base's hives; the host's is meant
SERVICE_ACCOUNTS = frozenset(
    {"system", "local service", "localservice", "network service", "networkservice"}
)
POD_REPLACED = frozenset({"containeruser", "containeradministrator"})
# Names of built-in users, not groups: HostProcess cannot log on as a user with a password.
BUILT_IN_USERS = frozenset({"administrator", "guest", "defaultaccount", "wdagutilityaccount"})
CONTAINERD_17 = "containerd 1.7"
POD_FIX = (
    "set `securityContext.windowsOptions.runAsUserName` on the pod (e.g. "
    '"NT AUTHORITY\\\\SYSTEM", "NT AUTHORITY\\\\Local service", or a local group) and clear '
    "the image's `User`"
)


def _runtime(config: Mapping[str, Any]) -> Mapping[str, Any]:
    return config.get("config") or {}


def env(config: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for item in _runtime(config).get("Env") or ():
        key, _, value = str(item).partition("=")
        yield key, value


def _in_mount(path: str) -> bool:
    lowered = path.lower()
    return any(lowered.startswith(variable) for variable in MOUNT_POINT_VARIABLES)


def _mount_form(path: str) -> str:
    """`C:\\app\\bin` -> `%CONTAINER_SANDBOX_MOUNT_POINT%\\app\\bin`."""
    return "%CONTAINER_SANDBOX_MOUNT_POINT%\\" + path[3:].lstrip("\\/")


def path_findings(config: Mapping[str, Any]) -> list[Finding]:
    """`path-keeps-system32`: hcsshim appends to PATH, but never re-adds system32."""
    for key, value in env(config):
        if key.lower() != "path":
            continue
        entries = [e.strip().rstrip("\\").lower() for e in value.split(";")]
        if not any(e in SYSTEM32 for e in entries):
            return [
                Finding(
                    "path-keeps-system32",
                    f"`Env` sets PATH={value}, without C:\\Windows\\system32: system programs "
                    "such as cmd.exe and powershell.exe would not be found.",
                    ("keep C:\\Windows\\system32;C:\\Windows at the start of PATH",),
                )
            ]
    return []


def working_dir_findings(config: Mapping[str, Any]) -> list[Finding]:
    """`working-dir`: empty (the image's root) or under the mount point."""
    working_dir = _runtime(config).get("WorkingDir") or ""
    if not working_dir or _in_mount(working_dir) or not ABSOLUTE.match(working_dir):
        return []
    return [
        Finding(
            "working-dir",
            f"`WorkingDir` is `{working_dir}`: since {CONTAINERD_17} that is the host's "
            f"{working_dir}, not the image's (containerd 1.6 joined it under the image's "
            "mount), so relative paths would miss the image's files.",
            (
                f"use `{_mount_form(working_dir)}`, or leave `WorkingDir` empty to start in "
                "the image's root",
            ),
        )
    ]


def env_path_findings(config: Mapping[str, Any], files: ImageFiles) -> list[Finding]:
    """`env-paths`: absolute `C:\\` paths in `Env` that name the image's own files."""
    found = []
    for key, value in env(config):
        for part in value.split(";"):
            path = part.strip()
            if not ABSOLUTE.match(path) or not path.lower().startswith("c:"):
                continue
            relative = "/".join(p for p in path[3:].replace("\\", "/").split("/") if p)
            first = relative.split("/", 1)[0].lower()
            if not relative or first in HOST_OWNED or not files.has(relative):
                continue
            found.append(
                Finding(
                    "env-paths",
                    f"`Env` sets {key}={value}, whose {path} is a file or directory of the "
                    f"image, but since {CONTAINERD_17} {path} is the host's path: the image "
                    "is mounted elsewhere.",
                    (f"write it as {_mount_form(path)}",),
                )
            )
    return found


def user_findings(config: Mapping[str, Any]) -> list[Finding]:
    """`user`: an account HostProcess can run as, or one the pod replaces."""
    user = (_runtime(config).get("User") or "").strip()
    if not user:
        return []
    domain, _, name = user.rpartition("\\")
    if domain.lower() == "nt authority" and name.lower() in SERVICE_ACCOUNTS:
        return []
    if not domain and name.lower() in POD_REPLACED:
        return []
    if not domain and "@" not in name and name.lower() not in BUILT_IN_USERS:
        return []  # a local group: containerd 1.7+ runs the container as a user made in it
    return [
        Finding(
            "user",
            f"`User` is `{user}`: HostProcess containers run as SYSTEM, Local service, "
            "Network service or a local group, never as a named (domain) user, so hcsshim "
            "would fail to log on.",
            (POD_FIX,),
        )
    ]


def os_version_findings(config: Mapping[str, Any]) -> list[Finding]:
    """`no-os-version`: with either field, containerd only pulls on that Windows build."""
    present = {k: config[k] for k in ("os.version", "os.features") if k in config}
    if not present:
        return []
    shown = ", ".join(f"{k}={v!r}" for k, v in present.items())
    return [
        Finding(
            "no-os-version",
            f"The config records {shown}: containerd would then pull the image only on nodes "
            "of that Windows build.",
            ("remove the fields; HostProcess images run on every Windows Server version",),
        )
    ]
