"""Reading a built image back from its docker archive, as a Windows node would see it.

The image tests check what a node would get: the manifest, the config, and the files of all
layers stacked (a later layer's path replaces an earlier one's; names compare
case-insensitively, as on NTFS). Layer contents are streamed, never held in memory; only
the files a test compares byte for byte are hashed. Each layer's own list of entries is kept
too (`LayerListing`), with the first bytes of any registry hive it holds, for the layer
rules of `hostprocess.compat.layers`.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import IO, Any, Collection, Sequence, cast

from hostprocess.compat.hives import HIVE_PREFIX_BYTES, hive_name
from hostprocess.compat.image_files import ImageFiles
from hostprocess.compat.layers import LayerEntry, LayerListing, normalise_name

FILES_PREFIX = "Files/"
WHITEOUT_PREFIX = ".wh."
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 20
_DIGEST_SHOWN = 12  # hex digits of a layer digest in labels


@dataclass(frozen=True)
class ImageFile:
    """One path of the stacked image, relative to `C:\\` with `/` separators."""

    path: str
    is_dir: bool
    size: int
    sha256: str | None = None  # only for the paths asked for


@dataclass(frozen=True)
class ArchivedImage:
    """What an image archive holds: its manifests, the config, the stacked files and each
    layer's own entries."""

    index: dict[str, Any]  # the archive's OCI index.json (empty if it has none)
    manifest: dict[str, Any]
    config: dict[str, Any]
    files: dict[str, ImageFile]  # lower-cased path -> file
    layers: tuple[LayerListing, ...] = ()  # base layer first

    def find(self, path: str) -> ImageFile | None:
        return self.files.get(path.lower())

    @cached_property
    def paths(self) -> ImageFiles:
        """The stacked files and directories, as the compatibility checks compare them."""
        files = [f.path for f in self.files.values() if not f.is_dir]
        return ImageFiles.of(files, [f.path for f in self.files.values() if f.is_dir])


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
        listings = []
        labels = layer_labels(manifest, len(entry["Layers"]))
        for layer_path, label in zip(entry["Layers"], labels):
            with _open_layer(outer, layer_path) as stream:
                listings.append(_stack_layer(stream, files, wanted, label))
    return ArchivedImage(index, manifest, config, files, tuple(listings))


def layer_labels(manifest: dict[str, Any], count: int) -> list[str]:
    """`layer 2 of 3 (sha256:0123456789ab…)`: how messages name each layer; the digest is
    the manifest's, when it gives one."""
    descriptors: Sequence[Any] = manifest.get("layers") or ()
    labels = []
    for position in range(count):
        label = f"layer {position + 1} of {count}"
        descriptor = descriptors[position] if position < len(descriptors) else {}
        digest = descriptor.get("digest") if isinstance(descriptor, dict) else None
        if isinstance(digest, str) and digest:
            algorithm, _, hex_digits = digest.partition(":")
            label += f" ({algorithm}:{hex_digits[:_DIGEST_SHOWN]}…)"
        labels.append(label)
    return labels


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


def _stack_layer(
    stream: IO[bytes], files: dict[str, ImageFile], wanted: set[str], label: str = "layer"
) -> LayerListing:
    """Stack one layer's files onto `files`, and return the layer's own listing."""
    entries: list[LayerEntry] = []
    hives: dict[str, bytes] = {}
    with tarfile.open(fileobj=stream, mode="r|") as layer:
        for member in layer:
            entry = layer_entry(member)
            entries.append(entry)
            hive = hive_name(entry.name) if member.isfile() else None
            path = _windows_relative(member.name)
            keep = path is not None and path.lower() in wanted and member.isfile()
            digest = None
            if hive is not None or keep:
                digest, prefix = _read_member(layer.extractfile(member), keep)
                if hive is not None:
                    hives[hive] = prefix
            if path is not None:
                _stack_entry(files, path, member, digest if keep else None)
    return LayerListing(label, tuple(entries), hives)


def layer_entry(member: tarfile.TarInfo) -> LayerEntry:
    """A tar member as the layer rules see it (the tar's own order and names)."""
    link = normalise_name(member.linkname) if member.islnk() or member.issym() else ""
    return LayerEntry(normalise_name(member.name), _kind(member), link)


def _kind(member: tarfile.TarInfo) -> str:
    if member.isfile():
        return "file"
    if member.isdir():
        return "directory"
    if member.islnk():
        return "hardlink"
    if member.issym():
        return "symlink"
    return "other"


def _stack_entry(
    files: dict[str, ImageFile], path: str, member: tarfile.TarInfo, digest: str | None
) -> None:
    """Apply one member under `Files/` to the stacked view."""
    name = PurePosixPath(path).name
    if name.startswith(WHITEOUT_PREFIX):
        _remove(files, str(PurePosixPath(path).parent / name[len(WHITEOUT_PREFIX) :]))
        return
    key = path.lower()
    if member.isdir():
        files[key] = ImageFile(path, True, 0)
    elif member.islnk():
        files[key] = _hard_link(files, path, member.linkname)
    else:
        files[key] = ImageFile(path, False, member.size, digest)


def _hard_link(files: dict[str, ImageFile], path: str, linkname: str) -> ImageFile:
    """A hard link is the file it names (earlier in this layer or below): its size and, if
    that file was hashed, its digest. A streamed layer cannot go back for bytes it did not
    hash, so a link to an unhashed file has no digest."""
    target_path = _windows_relative(linkname)
    target = files.get(target_path.lower()) if target_path is not None else None
    if target is None or target.is_dir:
        return ImageFile(path, False, 0)
    return ImageFile(path, False, target.size, target.sha256)


def _read_member(stream: IO[bytes] | None, digest: bool) -> tuple[str | None, bytes]:
    """Stream a member once: its sha256 if asked, and its first HIVE_PREFIX_BYTES."""
    hasher = hashlib.sha256() if digest else None
    prefix = bytearray()
    while stream is not None:
        chunk = stream.read(_CHUNK if hasher else HIVE_PREFIX_BYTES - len(prefix))
        if not chunk:
            break
        if len(prefix) < HIVE_PREFIX_BYTES:
            prefix += chunk[: HIVE_PREFIX_BYTES - len(prefix)]
        if hasher is not None:
            hasher.update(chunk)
        elif len(prefix) >= HIVE_PREFIX_BYTES:
            break  # the tar stream skips the rest of the member
    return (hasher.hexdigest() if hasher else None), bytes(prefix)


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
