"""Does the image hold the program its entrypoint starts?

HostProcess containers run on the node's own Windows, so an entrypoint may name a system
program (`powershell.exe`) or a file of the image, looked up in the working directory
(the image's mount point) and then PATH. A relative program that is neither is almost
always a packaging mistake that would only show up on a node.
"""

from __future__ import annotations

from typing import Iterable, Sequence

MOUNT_POINT = "%container_sandbox_mount_point%"
# Win32 tries these extensions, in this order, for a program named without one (PATHEXT).
PATHEXT = ("", ".com", ".exe", ".bat", ".cmd", ".ps1")
# Programs every Windows Server node has in C:\Windows\System32 (or on its PATH).
SYSTEM_PROGRAMS = frozenset(
    """
    bcdedit certutil cmd cscript curl dism findstr fsutil hostname icacls ipconfig msiexec
    net netsh netstat nslookup ping powershell pwsh reg robocopy route sc schtasks shutdown
    takeown tar taskkill tasklist timeout whoami wmic wscript xcopy
    """.split()
)


def _normalise(program: str) -> str:
    """Lower-case, `/`-separated, relative to the image root."""
    path = program.replace("\\", "/").lower()
    if path.startswith(MOUNT_POINT):
        path = path[len(MOUNT_POINT) :]
    while path.startswith("./") or path.startswith("/"):
        path = path[2:] if path.startswith("./") else path[1:]
    return path


def _is_absolute_host_path(program: str) -> bool:
    return (len(program) >= 2 and program[1] == ":") or program.startswith("\\\\")


def missing_program(entrypoint: Sequence[str], image_paths: Iterable[str]) -> str | None:
    """The entrypoint's program if it is relative, not a system program, and not in the image."""
    if not entrypoint:
        return None
    program = entrypoint[0]
    if _is_absolute_host_path(program):
        return None
    wanted = _normalise(program)
    stem, dot, _ = wanted.rpartition(".")
    if (stem if dot else wanted) in SYSTEM_PROGRAMS and "/" not in wanted:
        return None
    held = {path.lower() for path in image_paths}
    if any(wanted + extension in held for extension in PATHEXT):
        return None
    return program
