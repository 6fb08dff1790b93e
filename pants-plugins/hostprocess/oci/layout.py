"""OCI image layout, OCI archive and docker-archive outputs of one image.

The layout's index lists the image manifest once per tag (the tag in
`org.opencontainers.image.ref.name`, as skopeo and containerd read it) and never carries
a platform. Archives are tars of the layout written with fixed metadata, so their bytes
depend only on the image; the docker-archive adds Docker's `manifest.json` beside the
layout, which is what `docker load` reads and what Microsoft's own build script emits.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from hostprocess.oci.image import Descriptor, Image, canonical_json
from hostprocess.oci.tar import TarWriter
from hostprocess.oci.types import OCI_INDEX, sha256_digest, validate_digest

OCI_LAYOUT = canonical_json({"imageLayoutVersion": "1.0.0"})
REF_NAME = "org.opencontainers.image.ref.name"


def blob_path(digest: str) -> str:
    algorithm, _, hex_digest = digest.partition(":")
    return f"blobs/{algorithm}/{hex_digest}"


def index_json(image: Image, tags: Sequence[str]) -> bytes:
    manifest = image.manifest_descriptor
    if tags:
        entries = [
            Descriptor(
                manifest.media_type, manifest.digest, manifest.size, {REF_NAME: tag}
            ).to_json()
            for tag in tags
        ]
    else:
        entries = [manifest.to_json()]
    return canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})


def layout_files(image: Image, tags: Sequence[str]) -> dict[str, bytes]:
    """The small files of an OCI layout; the layer blobs are placed beside them by the caller."""
    return {
        "oci-layout": OCI_LAYOUT,
        "index.json": index_json(image, tags),
        blob_path(image.digest): image.manifest,
        blob_path(image.config_descriptor.digest): image.config,
    }


def docker_manifest_json(manifest: Mapping[str, Any], repo_tags: Sequence[str]) -> bytes:
    """Docker's `manifest.json` for an image manifest: config and layers by archive path."""
    return canonical_json(
        [
            {
                "Config": blob_path(manifest["config"]["digest"]),
                "RepoTags": list(repo_tags),
                "Layers": [blob_path(layer["digest"]) for layer in manifest["layers"]],
            }
        ]
    )


def read_manifest(layout: Path) -> tuple[str, bytes]:
    """The digest and exact bytes of the (single) image manifest a layout's index points at."""
    try:
        index = json.loads((layout / "index.json").read_bytes())
        digests = {entry["digest"] for entry in index["manifests"]}
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{layout} is not a readable OCI image layout: {error}") from None
    if len(digests) != 1:
        raise ValueError(f"{layout} holds {len(digests)} images; expected exactly one")
    digest = digests.pop()
    validate_digest(digest)  # also keeps the blob path inside the layout
    manifest = (layout / blob_path(digest)).read_bytes()
    if sha256_digest(manifest) != digest:
        raise ValueError(f"{layout}: manifest blob {digest} does not match its digest")
    return digest, manifest


def fail_on_walk_error(error: OSError) -> None:
    """os.walk's error hook: an unreadable directory is an error, not an empty one."""
    raise error


def _layout_entries(layout: Path) -> list[str]:
    """Every path under `layout`, relative and sorted so directories precede their contents."""
    paths: list[str] = []
    for dirpath, dirnames, filenames in os.walk(layout, onerror=fail_on_walk_error):
        dirnames.sort()
        rel = Path(dirpath).relative_to(layout)
        paths.extend(str(rel / name) if str(rel) != "." else name for name in dirnames + filenames)
    return sorted(paths, key=lambda p: p.split("/"))


def write_archive(
    layout: Path,
    out: Path,
    *,
    extra_files: Mapping[str, bytes] | None = None,
    mtime: int = 0,
) -> None:
    """Tar the layout directory (plus `extra_files` at its root) into `out`, atomically."""
    if not layout.is_dir():
        raise FileNotFoundError(f"no OCI layout directory at {layout}")
    tmp = out.with_name(f".{out.name}.partial")
    try:
        with open(tmp, "wb") as sink:
            _write_archive_entries(TarWriter(sink), layout, extra_files or {}, mtime)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_archive_entries(
    tar: TarWriter, layout: Path, extra_files: Mapping[str, bytes], mtime: int
) -> None:
    for name, data in sorted(extra_files.items()):
        tar.add_bytes(name, data, mtime=mtime, pax_records={})
    for rel in _layout_entries(layout):
        path = layout / rel
        if path.is_dir():
            tar.add_directory(rel, mtime=mtime, pax_records={})
        else:
            tar.add_file(rel, path, mtime=mtime, pax_records={})
    tar.close()
