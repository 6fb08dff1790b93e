"""The OCI vocabulary the core shares: media types, sha256 digests and layer compression.

After go-containerregistry's `pkg/v1/types`: every media type is spelled once here and
grouped into the two families a manifest may use, and every digest is formatted and
validated by the functions below.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import Enum
from typing import Mapping


class Compression(Enum):
    """Layer compression, named as in OCI layer media type suffixes."""

    GZIP = "gzip"
    ZSTD = "zstd"
    NONE = "none"

    @property
    def default_level(self) -> int:
        """Fast levels: layers are built often and pulled over fast networks."""
        return {"gzip": 1, "zstd": 3, "none": 0}[self.value]


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"

# Multi-image wrappers: a HostProcess image must never be one, nor be built on one.
INDEX_MEDIA_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)


@dataclass(frozen=True)
class MediaTypes:
    """One media-type family: a manifest never mixes OCI and Docker types."""

    manifest: str
    config: str
    layers: tuple[tuple[Compression, str], ...]  # pairs rather than a dict: hashable

    def layer(self, compression: Compression) -> str:
        return dict(self.layers)[compression]


MEDIA_TYPES: Mapping[str, MediaTypes] = {
    "oci": MediaTypes(
        manifest=OCI_MANIFEST,
        config=OCI_CONFIG,
        layers=(
            (Compression.GZIP, OCI_LAYER_GZIP),
            (Compression.ZSTD, OCI_LAYER_ZSTD),
            (Compression.NONE, OCI_LAYER),
        ),
    ),
    "docker": MediaTypes(
        manifest=DOCKER_MANIFEST,
        config=DOCKER_CONFIG,
        layers=(
            (Compression.GZIP, DOCKER_LAYER_GZIP),
            (Compression.ZSTD, DOCKER_LAYER_ZSTD),
            (Compression.NONE, DOCKER_LAYER),
        ),
    ),
}

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def sha256_digest(data: bytes) -> str:
    """The digest of `data` held in memory."""
    return hasher_digest(hashlib.sha256(data))


def hasher_digest(hasher: hashlib._Hash) -> str:
    """The digest of everything fed to a sha256 hasher, for content hashed as it streams."""
    return "sha256:" + hasher.hexdigest()


def validate_digest(digest: str) -> None:
    """Refuse anything but a sha256 digest; this also keeps a digest's blob path inside a
    layout."""
    if not _DIGEST.fullmatch(digest):
        raise ValueError(f"digest {digest!r} must be 'sha256:' and 64 lowercase hex digits")
