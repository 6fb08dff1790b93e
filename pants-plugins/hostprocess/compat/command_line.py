"""Does the image hold what its command line starts: the program, and the script it runs?

HostProcess containers run on the node's own Windows, so a command line (`Entrypoint` then
`Cmd`) may start a system program (`powershell.exe`) or a file of the image, found from the
working directory (the image's mount point unless `WorkingDir` says otherwise). The script
PowerShell or cmd is asked to run must be in the image: otherwise the pod starts, PowerShell
reports `The term './x.ps1' is not recognized`, and the container exits. Paths the check
cannot decide (absolute host paths, other variables) are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from hostprocess.compat.catalog import Finding
from hostprocess.compat.image_files import ImageFiles
from hostprocess.oci.windows.paths import windows_path

MOUNT_POINT_VARIABLES = ("%container_sandbox_mount_point%", "$env:container_sandbox_mount_point")
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
POWERSHELLS = frozenset({"powershell", "pwsh"})
# PowerShell parameters that take a value (so the value is not a script), and those after
# which the rest is command text, not a file.
PS_VALUED = frozenset(
    """
    -executionpolicy -ep -ex -windowstyle -w -version -v -psconsolefile -inputformat -if
    -outputformat -of -o -configurationname -config -workingdirectory -wd -settingsfile
    """.split()
)
PS_COMMAND = frozenset({"-command", "-c", "-encodedcommand", "-e", "-ec", "-"})
PS_FILE = frozenset({"-file", "-f"})
CMD_RUN = frozenset({"/c", "/k", "/r"})
CMD_SCRIPTS = (".bat", ".cmd")


@dataclass(frozen=True)
class CommandLine:
    argv: tuple[str, ...]
    working_dir: str  # relative to the image root, `/`-separated; "" is the root

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> CommandLine:
        runtime = config.get("config") or {}
        argv = tuple(runtime.get("Entrypoint") or ()) + tuple(runtime.get("Cmd") or ())
        return cls(argv, _working_dir(runtime.get("WorkingDir") or ""))

    def shown(self) -> str:
        return " ".join(self.argv)


def image_relative(path: str) -> str | None:
    """A path as the image holds it, `/`-separated from the root; None for a host path (an
    absolute `C:\\` or UNC path) or one that names another variable."""
    text = path.replace("\\", "/")
    lowered = text.lower()
    for variable in MOUNT_POINT_VARIABLES:
        if lowered.startswith(variable):
            text = text[len(variable) :]
            break
    else:
        if _is_host_path(path):
            return None
    if "%" in text or "$" in text:
        return None
    return "/".join(part for part in text.split("/") if part not in ("", "."))


def _working_dir(path: str) -> str:
    """The image directory relative paths start from. An absolute `C:\\` working directory
    is taken as containerd 1.6 took it, under the image's mount (the `working-dir` check
    reports that 1.7 does not), so a script beside it is not reported missing as well."""
    if path[:3].lower() in ("c:\\", "c:/"):
        path = path[3:]
    return image_relative(path) or ""


def _is_host_path(path: str) -> bool:
    return (len(path) >= 2 and path[1] == ":") or path.startswith("\\\\")


def _stem(program: str) -> str:
    name = program.replace("\\", "/").rsplit("/", 1)[-1].lower()
    return name[: -len(".exe")] if name.endswith(".exe") else name


def _is_system_program(program: str) -> bool:
    return "/" not in program.replace("\\", "/") and _stem(program) in SYSTEM_PROGRAMS


def _candidates(relative: str, working_dir: str) -> list[str]:
    """Where a relative path is looked for: the working directory, then the image root."""
    joined = f"{working_dir}/{relative}" if working_dir else relative
    return list(dict.fromkeys([joined, relative]))


def missing_program(line: CommandLine, files: ImageFiles) -> Finding | None:
    """The program, if it is relative, not a system program, and not in the image."""
    if not line.argv or _is_system_program(line.argv[0]):
        return None
    return _missing_executable("entrypoint-program", line, line.argv[0], files, "starts")


def _missing_executable(
    check: str, line: CommandLine, program: str, files: ImageFiles, verb: str
) -> Finding | None:
    relative = image_relative(program)
    if relative is None:
        return None
    candidates = _candidates(relative, line.working_dir)
    if any(files.has_file(c + extension) for c in candidates for extension in PATHEXT):
        return None
    return Finding(
        check,
        f"The command line `{line.shown()}` {verb} `{program}`, which is neither a Windows "
        f"system program nor in the image (looked for at {windows_path(candidates[0])}, with "
        f"the extensions of PATHEXT).",
        (files.nearest_note(candidates[0]),),
    )


def missing_scripts(line: CommandLine, files: ImageFiles) -> list[Finding]:
    """The script PowerShell or cmd is asked to run, if it is not in the image."""
    if not line.argv or not _is_system_program(line.argv[0]):
        return []
    stem, args = _stem(line.argv[0]), line.argv[1:]
    if stem in POWERSHELLS:
        script = powershell_script(args)
        return [] if script is None else _missing_script(line, script, files, "PowerShell")
    if stem == "cmd":
        command = cmd_command(args)
        if command is None:
            return []
        if command.lower().endswith(CMD_SCRIPTS):
            return _missing_script(line, command, files, "cmd")
        if _is_system_program(command) or not _names_a_file(command):
            return []  # a system program, or one of cmd's own commands (echo, set, ...)
        found = _missing_executable("entrypoint-script", line, command, files, "has cmd run")
        return [found] if found else []
    return []


def powershell_script(args: Sequence[str]) -> str | None:
    """The script of `-File x`, or of a first bare `x.ps1`; None for command text."""
    expect_value = False
    for n, arg in enumerate(args):
        if expect_value:
            expect_value = False
            continue
        lowered = arg.lower()
        if lowered in PS_FILE:
            return args[n + 1] if n + 1 < len(args) else None
        if lowered in PS_COMMAND:
            return None
        if lowered in PS_VALUED:
            expect_value = True
            continue
        if lowered.startswith("-"):
            continue  # a switch such as -NoProfile
        first = arg.split()[0] if arg.split() else arg
        return first if first.lower().endswith(".ps1") else None
    return None


def cmd_command(args: Sequence[str]) -> str | None:
    """What `cmd /c ...` runs: the first word after `/c` (or `/k`)."""
    for n, arg in enumerate(args):
        if arg.lower() in CMD_RUN:
            rest = " ".join(args[n + 1 :]).split()
            return rest[0].strip('"') if rest else None
    return None


def _names_a_file(command: str) -> bool:
    return "\\" in command or "/" in command or command.lower().endswith(PATHEXT[1:])


def _missing_script(line: CommandLine, script: str, files: ImageFiles, shell: str) -> list[Finding]:
    relative = image_relative(script.strip('"'))
    if relative is None:
        return []
    candidates = _candidates(relative, line.working_dir)[:1]
    if any(files.has_file(c) for c in candidates):
        return []
    return [
        Finding(
            "entrypoint-script",
            f"The command line `{line.shown()}` has {shell} run `{script}`, but the image holds "
            f"no {windows_path(candidates[0])}, so the container would exit as it starts.",
            (files.nearest_note(candidates[0]),),
        )
    ]
