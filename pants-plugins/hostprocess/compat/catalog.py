"""Every compatibility check by name: what it prevents on a node, and where that is reported.

Names are what users write in `skip_checks`, what test reports print and what the README's
table lists; a check's findings always carry its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(Enum):
    """How `package` treats a finding (an image test fails on either)."""

    ERROR = "error"  # the node would refuse the image or the container could not start
    WARNING = "warning"  # likely wrong, but there are setups where it works


@dataclass(frozen=True)
class Check:
    name: str
    summary: str  # what must hold, one line
    prevents: str  # the error a node reports when it does not
    source: str  # where that error is reported
    severity: Severity
    at_package_time: bool  # cheap enough to run on every `package` of our own images


@dataclass(frozen=True)
class Finding:
    """One thing a check found wrong, in words that say where and how to fix it."""

    check: str
    message: str
    notes: tuple[str, ...] = ()


HPC_DOCS = "https://kubernetes.io/docs/tasks/configure-pod-container/create-hostprocess-pod/"
BASE_IMAGE = "https://github.com/microsoft/windows-host-process-containers-base-image"
HCSSHIM = "https://github.com/microsoft/hcsshim/blob/main"
WORKDIR_REPORTS = (
    "https://github.com/kubernetes/kubernetes/issues/112885, "
    "https://github.com/containerd/containerd/issues/8090, "
    "https://github.com/Azure/AKS/issues/3885, https://github.com/Azure/AKS/issues/4196"
)

_CHECKS = (
    Check(
        "windows-image",
        "the config says `os: windows` and the layers are in the Windows layer format (`Files/`)",
        "containerd: `unpacker does not support platform`; hcsshim refuses Linux layers",
        "https://github.com/containerd/containerd/blob/main/core/unpack/unpacker.go",
        Severity.ERROR,
        False,
    ),
    Check(
        "single-manifest",
        "one image manifest, not a manifest list, with no platform",
        "containerd before 1.6.18/1.7.0: `no match for platform in manifest` on every node",
        "https://github.com/containerd/containerd/issues/7431",
        Severity.ERROR,
        False,
    ),
    Check(
        "no-os-version",
        "the config has neither `os.version` nor `os.features`",
        "containerd pulls the image only on nodes of that exact Windows build",
        f"{BASE_IMAGE}/pull/5",
        Severity.ERROR,
        False,
    ),
    Check(
        "entrypoint-program",
        "the command line's program is in the image (PATHEXT applies) or a Windows system program",
        "`The system cannot find the file specified` when the container starts",
        HPC_DOCS,
        Severity.ERROR,
        True,
    ),
    Check(
        "entrypoint-script",
        "a script the command line passes to PowerShell or cmd (`-File x.ps1`, a first bare "
        "`x.ps1`, `/c x.cmd`) is in the image",
        "PowerShell: `The term './x.ps1' is not recognized`; the pod exits at once",
        f"{BASE_IMAGE}#readme",
        Severity.ERROR,
        True,
    ),
    Check(
        "path-keeps-system32",
        "a `PATH`, if the image sets one, keeps `C:\\Windows\\system32`",
        "system programs (`cmd`, `powershell.exe`) are no longer found",
        f"{BASE_IMAGE}#readme",
        Severity.WARNING,
        True,
    ),
    Check(
        "working-dir",
        "`WorkingDir` is empty or under `%CONTAINER_SANDBOX_MOUNT_POINT%`",
        "containerd 1.7+ resolves an absolute `C:\\` working directory on the host, not in the "
        "image: relative paths then miss the image's files",
        WORKDIR_REPORTS,
        Severity.ERROR,
        True,
    ),
    Check(
        "env-paths",
        "`Env` values that name files of the image reach them through "
        "`%CONTAINER_SANDBOX_MOUNT_POINT%`, not an absolute `C:\\` path",
        "containerd 1.7+ mounts the image at `C:\\hpc`: `C:\\app\\...` is the host's, and missing",
        WORKDIR_REPORTS,
        Severity.WARNING,
        True,
    ),
    Check(
        "user",
        "`User` is empty, `ContainerUser`/`ContainerAdministrator` (replaced by the pod's "
        "`runAsUserName`), an `NT AUTHORITY` service account or a local group name",
        "hcsshim: `failed to logon user`; HostProcess cannot run as a named user",
        f"{HCSSHIM}/internal/jobcontainers/logon.go",
        Severity.ERROR,
        True,
    ),
    Check(
        "layer-roots",
        "every layer entry is under `Files/`, `Hives/` or `UtilityVM/`",
        "hcsshim: the layer import fails on an unexpected top-level entry",
        f"{HCSSHIM}/pkg/ociwclayer/import.go",
        Severity.ERROR,
        False,
    ),
    Check(
        "layer-whiteouts",
        "whiteouts (`.wh.` names) only under `Files/` of a layer above the base; no opaque "
        "whiteouts (`.wh..wh..opq`)",
        "hcsshim: `base layer cannot have tombstones`, `invalid tombstone`",
        f"{HCSSHIM}/internal/wclayer/baselayerwriter.go",
        Severity.ERROR,
        False,
    ),
    Check(
        "layer-duplicates",
        "no path twice in one layer (names compare case-insensitively, as on NTFS)",
        "the import stops at `Cannot create a file when that file already exists`; "
        "`crane validate`: `duplicate file path: Files`",
        "https://github.com/google/go-containerregistry/issues/1909",
        Severity.ERROR,
        False,
    ),
    Check(
        "layer-hard-links",
        "hard links stay under `Files/` and point at a file of this layer or one below",
        "hcsshim: the import fails creating the link (`The system cannot find the file "
        "specified`)",
        f"{HCSSHIM}/internal/wclayer/legacy.go",
        Severity.ERROR,
        False,
    ),
    Check(
        "layer-utility-vm",
        "`UtilityVM/` only in a layer above one that has it",
        "hcsshim: the import fails looking for the parent layer's utility VM files",
        f"{HCSSHIM}/internal/wclayer/legacy.go",
        Severity.ERROR,
        False,
    ),
    Check(
        "base-hives",
        "the base layer holds the five hives under `Files/Windows/System32/config/`, each a "
        "valid regf file (header, checksum, root key)",
        "`The configuration registry database is corrupt` (0x3f1) or `not in a registry file "
        "format` (0x3f9) when a layer is imported on top (Windows Server 2025, CimFS)",
        f"{BASE_IMAGE}/issues/14",
        Severity.ERROR,
        False,
    ),
)

CHECKS: dict[str, Check] = {check.name: check for check in _CHECKS}
CHECK_NAMES: tuple[str, ...] = tuple(CHECKS)
