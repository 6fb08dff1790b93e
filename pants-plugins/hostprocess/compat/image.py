"""Checks on the image as a whole: one platform-free manifest, holding a Windows image.

containerd before 1.6.18 and 1.7.0 matches a Windows manifest list only by `os.version`, so
only a single manifest without platform information pulls on every Windows Server version.
An image that is not Windows at all (a Linux image, tested by digest) is said to be so, once,
rather than failing every other check.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from hostprocess.compat.catalog import Finding
from hostprocess.oci.types import INDEX_MEDIA_TYPES


def single_manifest_findings(
    index: Mapping[str, Any], manifest: Mapping[str, Any]
) -> list[Finding]:
    problems = []
    entries = index.get("manifests") or []
    digests = {e.get("digest") for e in entries}
    if index and len(digests) != 1:
        problems.append(f"the index lists {len(digests)} manifests")
    problems += [
        f"the index entry {e.get('digest')} has a platform {e['platform']!r}"
        for e in entries
        if "platform" in e
    ]
    problems += [
        f"the index entry {e.get('digest')} is an index"
        for e in entries
        if e.get("mediaType") in INDEX_MEDIA_TYPES
    ]
    if manifest.get("mediaType") in INDEX_MEDIA_TYPES or "manifests" in manifest:
        problems.append("the manifest is an index (manifest list)")
    descriptors = [manifest.get("config") or {}, *(manifest.get("layers") or ())]
    problems += [
        f"descriptor {d.get('digest')} has a platform" for d in descriptors if "platform" in d
    ]
    return [
        Finding(
            "single-manifest",
            f"The image is not a single platform-free manifest: {problem}.",
            ("publish one image manifest, without a manifest list or platform fields",),
        )
        for problem in problems
    ]


def windows_image_findings(
    config: Mapping[str, Any], layers: Sequence[Iterable[str]]
) -> list[Finding]:
    """`windows-image`: `os: windows`, and layers that hold `Files/` (the Windows format)."""
    found = []
    os_name = config.get("os")
    if os_name != "windows":
        found.append(
            Finding(
                "windows-image",
                f"The config says `os: {os_name!r}`: this is not a Windows image, and a "
                "Windows node would not unpack it.",
            )
        )
    linux_format = [n + 1 for n, names in enumerate(layers) if not _windows_format(names)]
    if linux_format:
        found.append(
            Finding(
                "windows-image",
                f"Layer(s) {', '.join(map(str, linux_format))} of {len(layers)} are not in the "
                "Windows layer format (no `Files/` directory): they look like Linux layers, "
                "which hcsshim cannot import.",
            )
        )
    return found


def _windows_format(names: Iterable[str]) -> bool:
    return any(name.split("/", 1)[0] == "Files" for name in names)
