"""What the rules hand the `documents` command: an image's inventory, except that each
layer names its `files.json` (written by the layer's process) and `origins.json` (written
by the rules) instead of listing its files.

Joining them here, in the tool's process, keeps per-file lists out of Pants' memory: the
process reads both and builds the inventory the documents are made from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from hostprocess.oci.attest.inventory import Inventory
from hostprocess.oci.attest.provenance import ProvenanceInputs
from hostprocess.oci.file_digests import FileDigest, read_files_json

Json = dict[str, Any]


@dataclass(frozen=True)
class DocumentsRequest:
    inventory: Inventory
    provenance: ProvenanceInputs
    tool_version: str  # the plugin's, named as the documents' creator

    @classmethod
    def read(cls, path: Path) -> DocumentsRequest:
        """The request at `path`; the files it names are relative to the working directory
        (the sandbox root, where the rules put them)."""
        request = json.loads(path.read_bytes())
        inventory = Inventory.from_json(inventory_json(request, lambda p: Path(p).read_bytes()))
        provenance = request["provenance"]
        inputs = ProvenanceInputs(
            external_parameters=provenance["external_parameters"],
            internal_parameters=provenance["internal_parameters"],
            lockfiles=tuple((lock["name"], lock["sha256"]) for lock in provenance["lockfiles"]),
        )
        return cls(inventory, inputs, request["tool"]["version"])


def inventory_json(request: Mapping[str, Any], read: Callable[[str], bytes]) -> Json:
    """The inventory (see `attest.inventory`) for `request`; `read(path)` gives a file's bytes."""
    layers: list[Json] = []
    downloads: list[Json] = []
    packages: list[Json] = []
    address = request["image"]["address"]
    for layer in request["layers"]:
        digests = read_files_json(read(layer["files_json"]))
        origins = json.loads(read(layer["origins_json"]))["origins"]
        files = []
        for digest in digests:
            origin = origins.get(digest.path, {})
            if "url" in origin and "target" not in origin:
                # A Dockerfile's ADD of a URL: the image's own download.
                origin = {**origin, "target": address}
            files.append(_file(digest, origin))
            if "url" in origin:
                downloads.append(_download(digest, origin))
            if "package" in origin:
                packages.append(_package(digest, origin))
        described = {key: value for key, value in layer.items() if not key.endswith("_json")}
        layers.append({**described, "files": files})
    return {
        "image": request["image"],
        "base": request["base"],
        "layers": layers,
        "downloads": _unique(downloads),
        "packages": _unique(packages),
    }


def _file(digest: FileDigest, origin: Mapping[str, str]) -> Json:
    return {
        "path": digest.path,
        "size": digest.size,
        "sha1": digest.sha1,
        "sha256": digest.sha256,
        "target": origin.get("target"),
        "source": origin.get("source") or origin.get("url"),
    }


def _download(digest: FileDigest, origin: Mapping[str, str]) -> Json:
    return {
        "url": origin["url"],
        "sha256": digest.sha256,
        "target": origin["target"],
        "path": digest.path,
    }


def _package(digest: FileDigest, origin: Mapping[str, str]) -> Json:
    return {
        "target": origin["package"],
        "kind": origin.get("package_kind", ""),
        "path": digest.path,
        "sha256": digest.sha256,
    }


def _unique(records: list[Json]) -> list[Json]:
    """A file in two layers is one download or artifact; sorted, so the order is fixed."""
    keyed = {json.dumps(record, sort_keys=True): record for record in records}
    return [keyed[key] for key in sorted(keyed)]
