"""Each file's size, SHA-1 and SHA-256, taken while a layer writer streams it.

SBOMs list every file of an image with its checksums (SPDX 2.3 requires SHA-1 on every
file). The layer writer reads every byte anyway, so hashing there costs no second read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

FILES_JSON = "files.json"  # beside layer.json: one record per file of the layer


@dataclass(frozen=True)
class FileDigest:
    """A file of a layer: `path` is relative to C:\\ and `/`-separated."""

    path: str
    size: int
    sha1: str
    sha256: str

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "size": self.size, "sha1": self.sha1, "sha256": self.sha256}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> FileDigest:
        return cls(
            str(data["path"]), int(str(data["size"])), str(data["sha1"]), str(data["sha256"])
        )


class FileHasher:
    """Fed a file's chunks in order; `result` names it once the last one is in."""

    def __init__(self) -> None:
        self._sha1 = hashlib.sha1()
        self._sha256 = hashlib.sha256()
        self._size = 0

    def update(self, chunk: bytes) -> None:
        self._sha1.update(chunk)
        self._sha256.update(chunk)
        self._size += len(chunk)

    def result(self, path: str) -> FileDigest:
        return FileDigest(path, self._size, self._sha1.hexdigest(), self._sha256.hexdigest())


def files_json(digests: list[FileDigest]) -> bytes:
    """The records sorted by path, one JSON document, the same bytes for the same files."""
    records = [d.to_json() for d in sorted(digests, key=lambda d: d.path)]
    return (json.dumps({"files": records}, sort_keys=True, indent=1) + "\n").encode()


def read_files_json(content: bytes) -> list[FileDigest]:
    return [FileDigest.from_json(record) for record in json.loads(content)["files"]]
