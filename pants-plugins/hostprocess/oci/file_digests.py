"""Each file's size, SHA-1 and SHA-256, taken while a layer writer streams it.

SBOMs list every file of an image with its checksums (SPDX 2.3 requires SHA-1 on every
file). The layer writer reads every byte anyway, so hashing there costs no second read.
"""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

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


class BackgroundHasher:
    """Hashes files on a worker thread, chunk by chunk in order, so the writer's own thread
    (which feeds the compressor) never waits on the hashes; at most `MAX_PENDING` chunks
    wait at once, so a slow hash cannot hold a whole tree in memory."""

    MAX_PENDING = 16

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="file-digests")
        self._slots = threading.BoundedSemaphore(self.MAX_PENDING)
        self._results: list[Future[FileDigest]] = []

    def feeder(self, hasher: FileHasher) -> Callable[[bytes], None]:
        """What the writer calls with each chunk of the file `hasher` hashes."""

        def feed(chunk: bytes) -> None:
            self._slots.acquire()
            self._pool.submit(self._update, hasher, chunk)

        return feed

    def end_file(self, hasher: FileHasher, path: str) -> None:
        self._results.append(self._pool.submit(hasher.result, path))

    def results(self) -> list[FileDigest]:
        """Every file's digests, in the order the files were written."""
        return [future.result() for future in self._results]

    def _update(self, hasher: FileHasher, chunk: bytes) -> None:
        try:
            hasher.update(chunk)
        finally:
            self._slots.release()

    def shutdown(self, *, cancel: bool) -> None:
        self._pool.shutdown(wait=True, cancel_futures=cancel)


@contextmanager
def background_hasher() -> Iterator[BackgroundHasher]:
    """A `BackgroundHasher` whose thread ends with the block (its pending work dropped if the
    block failed)."""
    hashes = BackgroundHasher()
    try:
        yield hashes
    except BaseException:
        hashes.shutdown(cancel=True)
        raise
    hashes.shutdown(cancel=False)


def files_json(digests: list[FileDigest]) -> bytes:
    """The records sorted by path, one JSON document, the same bytes for the same files."""
    records = [d.to_json() for d in sorted(digests, key=lambda d: d.path)]
    return (json.dumps({"files": records}, sort_keys=True, indent=1) + "\n").encode()


def read_files_json(content: bytes) -> list[FileDigest]:
    return [FileDigest.from_json(record) for record in json.loads(content)["files"]]
