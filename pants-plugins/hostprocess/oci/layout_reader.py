"""The image of an OCI layout as a push reads it: the manifest's bytes and its blob files.

Blobs are checked against the manifest's sizes before any byte is sent, and are read
from disk in slices as they go out, never whole into memory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

from hostprocess.oci.layout import blob_path, read_manifest
from hostprocess.oci.types import validate_digest


class FileSlice:
    """`length` bytes of a file from `offset`, read in pieces by http.client as it sends."""

    def __init__(self, path: Path, offset: int, length: int) -> None:
        self._file: BinaryIO = open(path, "rb")
        self._file.seek(offset)
        self._left = length

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self._left:
            size = self._left
        data = self._file.read(size)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class LayoutBlob:
    digest: str
    size: int
    path: Path

    def reader(self, offset: int, length: int) -> Callable[[], FileSlice]:
        """A body that reopens the file on every try, so a retry resends from the start."""
        return lambda: FileSlice(self.path, offset, length)


@dataclass(frozen=True)
class LayoutImage:
    manifest: bytes
    media_type: str
    digest: str
    blobs: tuple[LayoutBlob, ...]  # layers (base first), then the config; each digest once


def read_layout_image(layout: Path) -> LayoutImage:
    """The layout's one image manifest (bytes as stored) and the blob files it names."""
    digest, manifest = read_manifest(layout)
    parsed = json.loads(manifest)
    media_type = parsed.get("mediaType")
    if not media_type or "config" not in parsed or "layers" not in parsed:
        raise ValueError(f"{layout}: {digest} is not an image manifest with a media type")
    blobs: dict[str, LayoutBlob] = {}
    for descriptor in [*parsed["layers"], parsed["config"]]:
        blobs.setdefault(descriptor["digest"], _layout_blob(layout, descriptor))
    return LayoutImage(manifest, media_type, digest, tuple(blobs.values()))


def _layout_blob(layout: Path, descriptor: Mapping[str, Any]) -> LayoutBlob:
    digest, size = descriptor["digest"], descriptor["size"]
    validate_digest(digest)  # also keeps the blob path inside the layout
    path = layout / blob_path(digest)
    actual = path.stat().st_size if path.is_file() else None
    if actual != size:
        found = "missing" if actual is None else f"{actual} bytes"
        raise ValueError(f"{layout}: blob {digest} is {found}; the manifest says {size} bytes")
    return LayoutBlob(digest, size, path)
