"""Writes Windows-format container image layers (the tar layout hcsshim imports).

A Windows layer keeps the filesystem under `Files/` (and registry hives under
`Hives/` for non-base layers), and every entry carries its Windows file
attributes in a `MSWINDOWS.fileattr` pax record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import BinaryIO

from hostprocess.oci.compression import BlobDigests, BlobSink, Compression
from hostprocess.oci.tar import TarWriter

FILES_ROOT = "Files"
HIVES_ROOT = "Hives"
FILE_ATTRIBUTE_DIRECTORY = "16"
FILE_ATTRIBUTE_ARCHIVE = "32"

Components = tuple[str, ...]


@dataclass(frozen=True)
class LayerFile:
    """A file to place at `C:\\<path>`; `path` is relative and `/`-separated.

    `source` is a file on disk (streamed) or the content itself (small files).
    """

    path: str
    source: Path | bytes


def write_layer(
    files: Iterable[LayerFile],
    out: BinaryIO,
    *,
    base: bool,
    compression: Compression,
    level: int,
    mtime: int,
    threads: int | None = None,
) -> BlobDigests:
    """Validate `files`, then stream them as a Windows layer blob to `out`.

    Base layers hold only `Files/`; child layers also need the `Hives`
    directory, which hcsshim expects before `Files`.
    """
    by_path = _index_files(files)
    directories = _implied_directories(by_path)
    _check_collisions(by_path, directories)
    with BlobSink(out, compression, level=level, threads=threads) as sink:
        tar = TarWriter(sink)
        if not base:
            _add_directory(tar, HIVES_ROOT, mtime)
        _add_directory(tar, FILES_ROOT, mtime)
        for components in sorted(directories.union(by_path)):
            name = "/".join((FILES_ROOT,) + components)
            if components in by_path:
                _add_file(tar, name, by_path[components].source, mtime)
            else:
                _add_directory(tar, name, mtime)
        tar.close()
        return sink.close()


def path_components(path: str) -> Components:
    """Split a layer path, rejecting anything that is not a plain relative path."""
    if "\\" in path:
        raise ValueError(f"layer path {path!r} contains a backslash; use '/'")
    if path.startswith("/") or PureWindowsPath(path).drive:
        raise ValueError(
            f"layer path {path!r} is absolute or has a drive; paths are relative to C:\\"
        )
    components = tuple(path.split("/"))
    for component in components:
        if component in ("", ".", ".."):
            raise ValueError(f"layer path {path!r} has an empty, '.' or '..' component")
    return components


def _index_files(files: Iterable[LayerFile]) -> dict[Components, LayerFile]:
    by_path: dict[Components, LayerFile] = {}
    for layer_file in files:
        components = path_components(layer_file.path)
        if components in by_path:
            raise ValueError(f"layer path {layer_file.path!r} is given more than once")
        by_path[components] = layer_file
    return by_path


def _implied_directories(by_path: dict[Components, LayerFile]) -> set[Components]:
    """Every proper parent of every file, so each directory gets its own entry."""
    directories = {path[:depth] for path in by_path for depth in range(1, len(path))}
    both = sorted(directories.intersection(by_path))
    if both:
        raise ValueError(f"layer path {'/'.join(both[0])!r} is both a file and a directory")
    return directories


def _check_collisions(by_path: dict[Components, LayerFile], directories: set[Components]) -> None:
    """Windows matches names case-insensitively: distinct tar paths must stay distinct."""
    seen: dict[Components, Components] = {}
    for components in sorted(directories.union(by_path)):
        key = tuple(_fold_case(component) for component in components)
        other = seen.setdefault(key, components)
        if other != components:
            raise ValueError(
                f"{_describe(components, by_path)} collides with {_describe(other, by_path)}"
                " on a case-insensitive filesystem"
            )


def _describe(components: Components, by_path: dict[Components, LayerFile]) -> str:
    kind = "layer path" if components in by_path else "directory"
    return f"{kind} {'/'.join(components)!r}"


def _fold_case(name: str) -> str:
    """Per-character uppercase, like NTFS's upcase table (no 'ß' -> 'SS' expansion)."""
    return "".join(upper if len(upper := char.upper()) == 1 else char for char in name)


def _add_directory(tar: TarWriter, name: str, mtime: int) -> None:
    tar.add_directory(
        name, mtime=mtime, pax_records={"MSWINDOWS.fileattr": FILE_ATTRIBUTE_DIRECTORY}
    )


def _add_file(tar: TarWriter, name: str, source: Path | bytes, mtime: int) -> None:
    records = {"MSWINDOWS.fileattr": FILE_ATTRIBUTE_ARCHIVE}
    if isinstance(source, bytes):
        tar.add_bytes(name, source, mtime=mtime, pax_records=records)
    else:
        tar.add_file(name, source, mtime=mtime, pax_records=records)
