"""Writes Windows-format container image layers (the tar layout hcsshim imports).

A Windows layer keeps the filesystem under `Files/` (and registry hives under
`Hives/` for non-base layers), and every entry carries its Windows file
attributes in a `MSWINDOWS.fileattr` pax record.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hostprocess.oci.compression import BlobDigests, BlobSink
from hostprocess.oci.file_digests import BackgroundHasher, FileDigest, FileHasher, background_hasher
from hostprocess.oci.tar import TarWriter
from hostprocess.oci.types import Compression
from hostprocess.oci.windows.paths import SEPARATOR, check_paths

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
    file_digests: list[FileDigest] | None = None,
) -> BlobDigests:
    """Check the paths against the Windows rules, then stream the files as a layer to `out`.

    Every broken rule is raised at once (see `paths.check_paths`) before anything is
    written; paths that need long-path support are reported with `warnings.warn`.
    Base layers hold only `Files/`; child layers also need the `Hives` directory,
    which hcsshim expects before `Files`. With `file_digests`, each file's size and
    checksums are appended to it as the file is written.
    """
    by_path = _index_files(files)
    directories = _parent_directories(by_path)
    hashing = background_hasher() if file_digests is not None else nullcontext(None)
    with BlobSink(out, compression, level=level, threads=threads) as sink, hashing as hashes:
        tar = TarWriter(sink)
        if not base:
            _add_directory(tar, HIVES_ROOT, mtime)
        _add_directory(tar, FILES_ROOT, mtime)
        for components in sorted(directories.union(by_path)):
            name = "/".join((FILES_ROOT,) + components)
            if components in by_path:
                layer_file = by_path[components]
                _add_file(tar, name, layer_file, mtime, hashes)
            else:
                _add_directory(tar, name, mtime)
        tar.close()
        digests = sink.close()
        if file_digests is not None and hashes:
            file_digests.extend(hashes.results())
        return digests


def _index_files(files: Iterable[LayerFile]) -> dict[Components, LayerFile]:
    """Key the files by path components once the paths, together, meet every rule."""
    files = list(files)
    for warning in check_paths(layer_file.path for layer_file in files):
        warnings.warn(warning, stacklevel=3)
    return {tuple(layer_file.path.split(SEPARATOR)): layer_file for layer_file in files}


def _parent_directories(paths: Iterable[Components]) -> set[Components]:
    """Every proper parent of every file, so each directory gets its own entry."""
    return {path[:depth] for path in paths for depth in range(1, len(path))}


def _add_directory(tar: TarWriter, name: str, mtime: int) -> None:
    tar.add_directory(
        name, mtime=mtime, pax_records={"MSWINDOWS.fileattr": FILE_ATTRIBUTE_DIRECTORY}
    )


def _add_file(
    tar: TarWriter, name: str, layer_file: LayerFile, mtime: int, hashes: BackgroundHasher | None
) -> None:
    records = {"MSWINDOWS.fileattr": FILE_ATTRIBUTE_ARCHIVE}
    hasher = FileHasher() if hashes else None
    observe = hashes.feeder(hasher) if hashes and hasher else None
    source = layer_file.source
    if isinstance(source, bytes):
        tar.add_bytes(name, source, mtime=mtime, pax_records=records, observe=observe)
    else:
        tar.add_file(name, source, mtime=mtime, pax_records=records, observe=observe)
    if hashes and hasher:
        hashes.end_file(hasher, layer_file.path)
