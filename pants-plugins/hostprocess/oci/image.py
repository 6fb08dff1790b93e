"""Image config, manifest and descriptors for platform-free Windows HostProcess images.

containerd pulls a HostProcess image on every Windows Server version only when it is a
single manifest without platform information, so nothing here ever writes a platform,
an `os.version` or an index wrapper; the config still names `os` and `architecture`
because the unpacker reads them to pick the Windows snapshotter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from hostprocess.oci.types import MEDIA_TYPES, Compression, MediaTypes, sha256_digest

ARCHITECTURES = ("amd64", "arm64")


def canonical_json(value: Any) -> bytes:
    """Serialise deterministically: the bytes are hashed, so key order and spacing matter."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


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
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class Layer:
    """A built layer blob plus what the config's rootfs records about it.

    How the layer was made is history, passed beside it to `build_image`, so a layer's
    bytes and cache key never depend on that text.
    """

    digest: str
    size: int
    diff_id: str
    compression: Compression

    def descriptor(self, media_types: MediaTypes) -> Descriptor:
        return Descriptor(media_types.layer(self.compression), self.digest, self.size)

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "size": self.size,
            "diff_id": self.diff_id,
            "compression": self.compression.value,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Layer:
        return cls(
            digest=data["digest"],
            size=data["size"],
            diff_id=data["diff_id"],
            compression=Compression(data["compression"]),
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


def merge_runtime(base: Mapping[str, Any], runtime: RuntimeConfig) -> dict[str, Any]:
    """A base image's `config` object overridden and extended by `runtime`.

    Env and Labels merge (env names case-insensitively, as Windows compares them); the
    other settings replace the base's when set. As in a Dockerfile, a new entrypoint drops
    an inherited Cmd, since those arguments were meant for the old program.
    """
    out = dict(base)
    ours = runtime.to_json()
    if "Entrypoint" in ours and "Cmd" not in ours:
        out.pop("Cmd", None)
    if "Entrypoint" in ours or "Cmd" in ours:
        # Ours are exec-form lists: an inherited "already a command line" flag would make
        # containerd run the first element unquoted.
        out.pop("ArgsEscaped", None)
    for key in ("Entrypoint", "Cmd", "WorkingDir", "User"):
        if key in ours:
            out[key] = ours[key]
    if runtime.env:
        out["Env"] = _merge_env(base.get("Env") or [], runtime.env)
    if runtime.labels:
        out["Labels"] = {**(base.get("Labels") or {}), **runtime.labels}
    return out


def _merge_env(base: Sequence[str], env: Mapping[str, str]) -> list[str]:
    merged: dict[str, str] = {}  # upper-cased name -> "NAME=value", in first-seen order
    for entry in [*base, *(f"{key}={value}" for key, value in env.items())]:
        merged[entry.split("=", 1)[0].upper()] = entry
    return list(merged.values())


def build_config(
    runtime: RuntimeConfig,
    layers: Sequence[Layer],
    *,
    architecture: str,
    created: int,
    history: Sequence[str] = (),
    parent_config: Mapping[str, Any] | None = None,
) -> bytes:
    """The image config: Windows, an architecture, and deliberately no `os.version`.

    `history` holds each layer's `created_by`, in the order of `layers` (as
    go-containerregistry's `mutate.Addendum` pairs a layer with its history entry). With a
    parent, its history and diff_ids come first and its runtime settings are inherited;
    anything else it carried (such as an `os.version`) is left behind.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}: expected one of {ARCHITECTURES}")
    if len(history) != len(layers):
        raise ValueError(f"{len(history)} history entries for {len(layers)} layers: give one each")
    parent = parent_config or {}
    timestamp = rfc3339(created)
    return canonical_json(
        {
            "created": timestamp,
            "architecture": architecture,
            "os": "windows",
            "config": merge_runtime(parent.get("config") or {}, runtime),
            "rootfs": {
                "type": "layers",
                "diff_ids": [
                    *parent.get("rootfs", {}).get("diff_ids", []),
                    *(layer.diff_id for layer in layers),
                ],
            },
            "history": [
                *parent.get("history", []),
                *({"created": timestamp, "created_by": created_by} for created_by in history),
            ],
        }
    )


class BaseImageError(ValueError):
    """The base is not something a HostProcess image can be built on; the message says why."""


def check_windows_platform(
    config: Mapping[str, Any], architecture: str, explain: Callable[[str, Any], str]
) -> None:
    """Refuse a base config that is not Windows on `architecture`.

    `explain(key, found)` words the refusal for the caller (`key` is "os" or "architecture").
    """
    for key, wanted in (("os", "windows"), ("architecture", architecture)):
        if config.get(key) != wanted:
            raise BaseImageError(explain(key, config.get(key)))


def _parent_config(parent: Image, architecture: str) -> Mapping[str, Any]:
    config = json.loads(parent.config)

    def explain(key: str, found: Any) -> str:
        if key == "os":
            return f"the base image is for {found!r}, not Windows: use a Windows image as a base"
        return (
            f"the base image is for {found!r}, but this image is for {architecture!r}: set "
            f"`architecture` to match, or use a base for {architecture!r}"
        )

    check_windows_platform(config, architecture, explain)
    return config


def build_image(
    runtime: RuntimeConfig,
    layers: Sequence[Layer],
    *,
    architecture: str,
    created: int,
    history: Sequence[str] = (),
    media_family: str = "oci",
    annotations: Mapping[str, str] | None = None,
    parent: Image | None = None,
) -> Image:
    """Assemble config and a single, platform-free manifest over `layers` (base first).

    With a `parent`, the image is the parent's layers followed by `layers`, and its config
    derives from the parent's, history included (see `build_config`).
    """
    media_types = MEDIA_TYPES[media_family]
    parent_config = _parent_config(parent, architecture) if parent else None
    config = build_config(
        runtime,
        layers,
        architecture=architecture,
        created=created,
        history=history,
        parent_config=parent_config,
    )
    all_layers = (*(parent.layers if parent else ()), *layers)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_types.manifest,
        "config": Descriptor.of(media_types.config, config).to_json(),
        "layers": [layer.descriptor(media_types).to_json() for layer in all_layers],
    }
    if annotations:
        if media_family != "oci":
            raise ValueError("manifest annotations need OCI media types (Docker schema 2 has none)")
        manifest["annotations"] = dict(annotations)
    return Image(config, canonical_json(manifest), media_types, all_layers)


def compression_of(media_type: str) -> Compression:
    """The compression a layer media type names, in either family."""
    for family in MEDIA_TYPES.values():
        for compression, candidate in family.layers:
            if candidate == media_type:
                return compression
    raise BaseImageError(
        f"unsupported layer media type {media_type!r}: only OCI and Docker tar, tar+gzip and "
        f"tar+zstd layers can be built on (not foreign or non-distributable layers)"
    )


def manifest_family(manifest: Mapping[str, Any]) -> str | None:
    """`oci` or `docker` for an image manifest, None for anything else (e.g. an index).

    OCI makes the top-level `mediaType` optional, so without it the shape decides.
    """
    media_type = manifest.get("mediaType")
    if media_type is None and "config" in manifest and "layers" in manifest:
        return "oci"
    return next((name for name, types in MEDIA_TYPES.items() if types.manifest == media_type), None)


def image_from_manifest(manifest: bytes, config: bytes) -> Image:
    """An existing image (e.g. a pulled base) as an `Image` to build on."""
    parsed = json.loads(manifest)
    family = manifest_family(parsed)
    if family is None or "layers" not in parsed:
        raise BaseImageError(
            f"not a single image manifest (media type {parsed.get('mediaType')!r})"
        )
    diff_ids = json.loads(config).get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(parsed["layers"]):
        raise BaseImageError(
            f"the config lists {len(diff_ids)} diff_ids for {len(parsed['layers'])} layers"
        )
    layers = tuple(
        Layer(d["digest"], d["size"], diff_id, compression_of(d["mediaType"]))
        for d, diff_id in zip(parsed["layers"], diff_ids)
    )
    return Image(config, manifest, MEDIA_TYPES[family], layers)
