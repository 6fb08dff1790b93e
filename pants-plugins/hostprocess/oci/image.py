"""Image config, manifest and descriptors for platform-free Windows HostProcess images.

containerd pulls a HostProcess image on every Windows Server version only when it is a
single manifest without platform information, so nothing here ever writes a platform,
an `os.version` or an index wrapper; the config still names `os` and `architecture`
because the unpacker reads them to pick the Windows snapshotter.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from hostprocess.oci.compression import Compression

ARCHITECTURES = ("amd64", "arm64")


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
        manifest="application/vnd.oci.image.manifest.v1+json",
        config="application/vnd.oci.image.config.v1+json",
        layers=(
            (Compression.GZIP, "application/vnd.oci.image.layer.v1.tar+gzip"),
            (Compression.ZSTD, "application/vnd.oci.image.layer.v1.tar+zstd"),
            (Compression.NONE, "application/vnd.oci.image.layer.v1.tar"),
        ),
    ),
    "docker": MediaTypes(
        manifest="application/vnd.docker.distribution.manifest.v2+json",
        config="application/vnd.docker.container.image.v1+json",
        layers=(
            (Compression.GZIP, "application/vnd.docker.image.rootfs.diff.tar.gzip"),
            (Compression.ZSTD, "application/vnd.docker.image.rootfs.diff.tar.zstd"),
            (Compression.NONE, "application/vnd.docker.image.rootfs.diff.tar"),
        ),
    ),
}


def canonical_json(value: Any) -> bytes:
    """Serialise deterministically: the bytes are hashed, so key order and spacing matter."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rfc3339(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, media_type: str, data: bytes) -> Descriptor:
        return cls(media_type, sha256_digest(data), len(data))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class Layer:
    """A built layer blob plus what the config records about it."""

    digest: str
    size: int
    diff_id: str
    compression: Compression
    created_by: str

    def descriptor(self, media_types: MediaTypes) -> Descriptor:
        return Descriptor(media_types.layer(self.compression), self.digest, self.size)

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "size": self.size,
            "diff_id": self.diff_id,
            "compression": self.compression.value,
            "created_by": self.created_by,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Layer:
        return cls(
            digest=data["digest"],
            size=data["size"],
            diff_id=data["diff_id"],
            compression=Compression(data["compression"]),
            created_by=data["created_by"],
        )


@dataclass(frozen=True)
class RuntimeConfig:
    """What the container runs with: the OCI config's `config` object."""

    entrypoint: Sequence[str] = ()
    cmd: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str = ""
    user: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.entrypoint:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            out["Cmd"] = list(self.cmd)
        if self.env:
            out["Env"] = [f"{key}={value}" for key, value in self.env.items()]
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.user:
            out["User"] = self.user
        if self.labels:
            out["Labels"] = dict(self.labels)
        return out


@dataclass(frozen=True)
class Image:
    """A complete image: its serialised config and manifest, ready to write or push."""

    config: bytes
    manifest: bytes
    media_types: MediaTypes
    layers: Sequence[Layer]

    @property
    def config_descriptor(self) -> Descriptor:
        return Descriptor.of(self.media_types.config, self.config)

    @property
    def manifest_descriptor(self) -> Descriptor:
        return Descriptor.of(self.media_types.manifest, self.manifest)

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)


def build_config(
    runtime: RuntimeConfig, layers: Sequence[Layer], *, architecture: str, created: int
) -> bytes:
    """The image config: Windows, an architecture, and deliberately no `os.version`."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}: expected one of {ARCHITECTURES}")
    timestamp = rfc3339(created)
    return canonical_json(
        {
            "created": timestamp,
            "architecture": architecture,
            "os": "windows",
            "config": runtime.to_json(),
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": [{"created": timestamp, "created_by": layer.created_by} for layer in layers],
        }
    )


def build_image(
    runtime: RuntimeConfig,
    layers: Sequence[Layer],
    *,
    architecture: str,
    created: int,
    media_family: str = "oci",
    annotations: Mapping[str, str] | None = None,
) -> Image:
    """Assemble config and a single, platform-free manifest over `layers` (base first)."""
    media_types = MEDIA_TYPES[media_family]
    config = build_config(runtime, layers, architecture=architecture, created=created)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_types.manifest,
        "config": Descriptor.of(media_types.config, config).to_json(),
        "layers": [layer.descriptor(media_types).to_json() for layer in layers],
    }
    if annotations:
        if media_family != "oci":
            raise ValueError("manifest annotations need OCI media types (Docker schema 2 has none)")
        manifest["annotations"] = dict(annotations)
    return Image(config, canonical_json(manifest), media_types, tuple(layers))
