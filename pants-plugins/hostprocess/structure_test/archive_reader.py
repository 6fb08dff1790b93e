"""Reading a built image back from its docker archive, as a Windows node would see it.

The image tests check what a node would get: the manifest, the config, and the files of all
layers stacked (a later layer's path replaces an earlier one's; names compare
case-insensitively, as on NTFS). Layer contents are streamed, never held in memory; only
the files a test compares byte for byte are hashed.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Collection, Iterator, cast

FILES_PREFIX = "Files/"
WHITEOUT_PREFIX = ".wh."
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class ImageFile:
    """One path of the stacked image, relative to `C:\\` with `/` separators."""

    path: str
    is_dir: bool
    size: int
    sha256: str | None = None  # only for the paths asked for


@dataclass(frozen=True)
class ArchivedImage:
    """What an image archive holds: its manifests, the config, and the stacked files."""

    index: dict[str, Any]  # the archive's OCI index.json (empty if it has none)
    manifest: dict[str, Any]
    config: dict[str, Any]
    files: dict[str, ImageFile]  # lower-cased path -> file

    def find(self, path: str) -> ImageFile | None:
        return self.files.get(path.lower())


def read_archive(archive: Path, hash_paths: Collection[str] = ()) -> ArchivedImage:
    """Read a docker archive as written by `package` (`manifest.json` plus an OCI layout)."""
    wanted = {path.lower() for path in hash_paths}
    with tarfile.open(archive) as outer:
        entries = json.loads(_member_bytes(outer, "manifest.json"))
        if not isinstance(entries, list) or len(entries) != 1:
            count = len(entries) if isinstance(entries, list) else "no"
            raise ValueError(f"{archive}: manifest.json lists {count} images; expected exactly one")
        [entry] = entries
        index = json.loads(_member_bytes(outer, "index.json")) if _has(outer, "index.json") else {}
        manifest = _manifest(outer, index, entry)
        config = json.loads(_member_bytes(outer, entry["Config"]))
        files: dict[str, ImageFile] = {}
        for layer_path in entry["Layers"]:
            with _open_layer(outer, layer_path) as stream:
                _stack_layer(stream, files, wanted)
    return ArchivedImage(index, manifest, config, files)


def _has(tar: tarfile.TarFile, name: str) -> bool:
    try:
        tar.getmember(name)
    except KeyError:
        return False
    return True


def _member_bytes(tar: tarfile.TarFile, name: str) -> bytes:
    stream = tar.extractfile(name)
    if stream is None:
        raise ValueError(f"{name} in the image archive is not a file")
    return stream.read()


def _manifest(tar: tarfile.TarFile, index: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """The image manifest the index points at (a Docker-only archive has none: synthesised)."""
    digests = {m.get("digest") for m in index.get("manifests", ())}
    if len(digests) == 1:
        digest = str(digests.pop())
        name = f"blobs/sha256/{digest.split(':', 1)[-1]}"
        if _has(tar, name):
            return json.loads(_member_bytes(tar, name))
    return {"config": {"path": entry["Config"]}, "layers": [{"path": p} for p in entry["Layers"]]}


def _open_layer(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    raw = tar.extractfile(name)
    if raw is None:
        raise ValueError(f"layer {name} in the image archive is not a file")
    head = raw.read(4)
    raw.seek(0)
    if head.startswith(_ZSTD_MAGIC):
        import zstandard  # only zstd images need it

        return zstandard.ZstdDecompressor().stream_reader(raw)
    if head.startswith(_GZIP_MAGIC):
        import gzip

        # GzipFile reads bytes like any IO[bytes]; typeshed only declares it a BufferedIOBase.
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw))
    return raw


def _stack_layer(stream: IO[bytes], files: dict[str, ImageFile], wanted: set[str]) -> None:
    with tarfile.open(fileobj=stream, mode="r|") as layer:
        for member in layer:
            path = _windows_relative(member.name)
            if path is None:
                continue
            name = PurePosixPath(path).name
            if name.startswith(WHITEOUT_PREFIX):
                _remove(files, str(PurePosixPath(path).parent / name[len(WHITEOUT_PREFIX) :]))
                continue
            key = path.lower()
            if member.isdir():
                files[key] = ImageFile(path, True, 0)
                continue
            digest = None
            if key in wanted and member.isfile():
                digest = _sha256(layer.extractfile(member))
            files[key] = ImageFile(path, False, member.size, digest)


def _windows_relative(name: str) -> str | None:
    """`Files/a/b.txt` -> `a/b.txt`; entries outside `Files/` (Hives, UtilityVM) are skipped."""
    while name.startswith("./"):
        name = name[2:]
    if name == FILES_PREFIX.rstrip("/"):
        return ""
    if not name.startswith(FILES_PREFIX):
        return None
    return name[len(FILES_PREFIX) :].rstrip("/")


def _remove(files: dict[str, ImageFile], path: str) -> None:
    prefix = path.lower() + "/"
    for key in [k for k in files if k == path.lower() or k.startswith(prefix)]:
        del files[key]


def _sha256(stream: IO[bytes] | None) -> str:
    hasher = hashlib.sha256()
    while stream is not None and (chunk := stream.read(1 << 20)):
        hasher.update(chunk)
    return hasher.hexdigest()


def sha256_file(path: Path) -> str:
    with path.open("rb") as stream:
        return _sha256(stream)


def iter_env(config: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for item in (config.get("config") or {}).get("Env") or ():
        key, _, value = str(item).partition("=")
        yield key, value
