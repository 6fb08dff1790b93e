"""The inventory of an image: the one input every SBOM and provenance document is made from.

The rules gather it (which file came from which target and source, which layer holds it,
what was downloaded or packaged) and hand it over as JSON; the documents never look anywhere
else, so they are pure functions of it. Lists whose order carries no meaning (files of a
layer, downloads, packages, tags) are sorted here, so a producer's order cannot change a
document's bytes; the order of layers is the image's and is kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar, cast

from hostprocess.oci.types import validate_digest

BASE_KINDS = ("builtin", "external", "image")

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_SHA1_HEX = re.compile(r"[0-9a-f]{40}")

T = TypeVar("T")


class InventoryError(ValueError):
    """The inventory JSON is malformed; the message says where (e.g. `layers[0].files[2]`)."""


class _Reader:
    """Typed access to one JSON object, naming its place in the inventory in every error."""

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, Mapping):
            raise InventoryError(f"{where}: expected an object, got {type(value).__name__}")
        self._value = value
        self._where = where

    def _get(self, key: str, kind: type | tuple[type, ...], optional: bool = False) -> Any:
        if key not in self._value:
            if optional:
                return None
            raise InventoryError(f"{self._where}: missing required key {key!r}")
        value = self._value[key]
        if value is None and optional:
            return None
        # bool is an int in Python, but never a size or a time here.
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InventoryError(
                f"{self._where}.{key}: expected {_kind_name(kind)}, got {type(value).__name__}"
            )
        return value

    def text(self, key: str) -> str:
        return self._get(key, str)

    def optional_text(self, key: str) -> Optional[str]:
        return self._get(key, str, optional=True)

    def integer(self, key: str) -> int:
        value: int = self._get(key, int)
        if value < 0:
            raise InventoryError(f"{self._where}.{key}: must not be negative, got {value}")
        return value

    def digest(self, key: str) -> str:
        value = self.text(key)
        try:
            validate_digest(value)
        except ValueError as e:
            raise InventoryError(f"{self._where}.{key}: {e}") from None
        return value

    def hex(self, key: str, pattern: re.Pattern[str], what: str) -> str:
        value = self.text(key)
        if not pattern.fullmatch(value):
            raise InventoryError(f"{self._where}.{key}: {value!r} is not {what}")
        return value

    def objects(self, key: str, parse: Callable[[_Reader], T]) -> tuple[T, ...]:
        items = self._get(key, list)
        where = f"{self._where}.{key}"
        return tuple(parse(_Reader(item, f"{where}[{i}]")) for i, item in enumerate(items))

    def strings(self, key: str) -> tuple[str, ...]:
        items = self._get(key, list)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise InventoryError(f"{self._where}.{key}[{i}]: expected a string")
        return tuple(items)

    def child(self, key: str) -> _Reader:
        return _Reader(self._get(key, Mapping), f"{self._where}.{key}")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", list: "a list", Mapping: "an object"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


@dataclass(frozen=True)
class ImageInfo:
    """The image the documents describe, identified by its manifest digest."""

    address: str
    name: str
    digest: str
    media_type: str
    size: int
    repository: str
    tags: tuple[str, ...]
    architecture: str
    created: int  # SOURCE_DATE_EPOCH, or 0: the documents' only timestamp

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", tuple(sorted(self.tags)))

    @classmethod
    def _read(cls, r: _Reader) -> ImageInfo:
        return cls(
            address=r.text("address"),
            name=r.text("name"),
            digest=r.digest("digest"),
            media_type=r.text("media_type"),
            size=r.integer("size"),
            repository=r.text("repository"),
            tags=r.strings("tags"),
            architecture=r.text("architecture"),
            created=r.integer("created"),
        )

    def to_json(self) -> dict[str, Any]:
        return _fields(self)


@dataclass(frozen=True)
class BaseInfo:
    """What the image is built on: the built-in base layer, a registry image or an image target.

    `digest` is the built-in base's layer digest, or the base image's manifest digest.
    """

    kind: str
    digest: str
    reference: Optional[str] = None  # external: `registry/repository@sha256:...`
    address: Optional[str] = None  # image: the base `hostprocess_image` target

    def __post_init__(self) -> None:
        if self.kind not in BASE_KINDS:
            raise InventoryError(f"base.kind: {self.kind!r} is not one of {', '.join(BASE_KINDS)}")
        if self.kind == "external" and not self.reference:
            raise InventoryError("base: missing required key 'reference' (kind 'external')")
        if self.kind == "image" and not self.address:
            raise InventoryError("base: missing required key 'address' (kind 'image')")

    @classmethod
    def _read(cls, r: _Reader) -> BaseInfo:
        kind = r.text("kind")
        return cls(
            kind=kind,
            digest=r.digest("digest"),
            reference=r.text("reference") if kind == "external" else None,
            address=r.text("address") if kind == "image" else None,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "digest": self.digest}
        if self.kind == "external":
            data["reference"] = self.reference
        if self.kind == "image":
            data["address"] = self.address
        return data


@dataclass(frozen=True)
class FileInfo:
    """One file of a layer; `path` is '/'-separated and relative to `C:\\`."""

    path: str
    sha256: str
    sha1: str
    size: int
    target: Optional[str] = None  # the Pants address that provided it
    source: Optional[str] = None  # its source file, relative to the build root

    @property
    def windows_path(self) -> str:
        return "C:\\" + self.path.replace("/", "\\")

    @classmethod
    def _read(cls, r: _Reader) -> FileInfo:
        return cls(
            path=r.text("path"),
            sha256=r.hex("sha256", _SHA256_HEX, "64 lowercase hex digits"),
            sha1=r.hex("sha1", _SHA1_HEX, "40 lowercase hex digits"),
            size=r.integer("size"),
            target=r.optional_text("target"),
            source=r.optional_text("source"),
        )

    def to_json(self) -> dict[str, Any]:
        return _fields(self)


@dataclass(frozen=True)
class LayerInfo:
    """One layer of the image (the parent image's layers included) and the files it holds."""

    digest: str
    diff_id: str
    size: int
    media_type: str
    label: str
    files: tuple[FileInfo, ...]

    def __post_init__(self) -> None:
        files = tuple(sorted(self.files, key=lambda f: f.path))
        for before, after in zip(files, files[1:]):
            if before.path == after.path:
                raise InventoryError(f"layer {self.digest}: file {before.path!r} listed twice")
        object.__setattr__(self, "files", files)

    @classmethod
    def _read(cls, r: _Reader) -> LayerInfo:
        return cls(
            digest=r.digest("digest"),
            diff_id=r.digest("diff_id"),
            size=r.integer("size"),
            media_type=r.text("media_type"),
            label=r.text("label"),
            files=r.objects("files", FileInfo._read),
        )

    def to_json(self) -> dict[str, Any]:
        return _fields(self)


@dataclass(frozen=True)
class Download:
    """A file an `http_source` fetched, pinned by its sha256."""

    url: str
    sha256: str
    target: str
    path: str

    @classmethod
    def _read(cls, r: _Reader) -> Download:
        return cls(
            url=r.text("url"),
            sha256=r.hex("sha256", _SHA256_HEX, "64 lowercase hex digits"),
            target=r.text("target"),
            path=r.text("path"),
        )

    def to_json(self) -> dict[str, Any]:
        return _fields(self)


@dataclass(frozen=True)
class PackagedArtifact:
    """An artifact Pants packaged into the image (an archive, a PEX)."""

    target: str
    kind: str  # the target type: pex_binary, archive, ...
    path: str
    sha256: str

    @classmethod
    def _read(cls, r: _Reader) -> PackagedArtifact:
        return cls(
            target=r.text("target"),
            kind=r.text("kind"),
            path=r.text("path"),
            sha256=r.hex("sha256", _SHA256_HEX, "64 lowercase hex digits"),
        )

    def to_json(self) -> dict[str, Any]:
        return _fields(self)


@dataclass(frozen=True)
class Inventory:
    """Everything the SBOMs and the provenance say about one image."""

    image: ImageInfo
    base: BaseInfo
    layers: tuple[LayerInfo, ...]
    downloads: tuple[Download, ...] = ()
    packages: tuple[PackagedArtifact, ...] = ()

    def __post_init__(self) -> None:
        downloads = sorted(self.downloads, key=lambda d: (d.url, d.sha256, d.target, d.path))
        packages = sorted(self.packages, key=lambda p: (p.target, p.path, p.kind, p.sha256))
        object.__setattr__(self, "downloads", tuple(downloads))
        object.__setattr__(self, "packages", tuple(packages))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Inventory:
        """Parse and check an inventory; an `InventoryError` names the first bad key."""
        r = _Reader(data, "inventory")
        return cls(
            image=ImageInfo._read(r.child("image")),
            base=BaseInfo._read(r.child("base")),
            layers=r.objects("layers", LayerInfo._read),
            downloads=r.objects("downloads", Download._read),
            packages=r.objects("packages", PackagedArtifact._read),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image.to_json(),
            "base": self.base.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
            "downloads": [d.to_json() for d in self.downloads],
            "packages": [p.to_json() for p in self.packages],
        }

    def files(self) -> Sequence[tuple[int, LayerInfo, FileInfo]]:
        """Every file with its layer and the layer's index (a layer digest may repeat)."""
        return [(i, layer, f) for i, layer in enumerate(self.layers) for f in layer.files]


def _fields(record: Any) -> dict[str, Any]:
    """A record's fields as JSON values (nested records as objects, tuples as lists)."""
    return cast("dict[str, Any]", json.loads(json.dumps(asdict(record))))
