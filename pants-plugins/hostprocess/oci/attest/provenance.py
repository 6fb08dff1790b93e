"""The image's SLSA v1 provenance: an in-toto v1 Statement about the image's manifest digest.

It says how the image was made in this project's `buildType`: the target and the fields that
shaped the image (external parameters), the plugin's settings (internal parameters) and every
input by digest (resolved dependencies: source files, base image, downloads, lockfiles).
Nothing in it depends on the clock: a rebuild of the same inputs gives the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from hostprocess.oci.attest import naming
from hostprocess.oci.attest.inventory import Inventory
from hostprocess.oci.attest.media_types import IN_TOTO_STATEMENT_V1, SLSA_PROVENANCE_V1

BUILD_TYPE = f"{naming.PROJECT_URL}/buildtypes/image/v1"
BUILDER_ID = naming.PROJECT_URL


@dataclass(frozen=True)
class ProvenanceInputs:
    """What the inventory does not hold: the rules' view of the build.

    `external_parameters`: the target's fields that shaped the image (JSON values);
    `internal_parameters`: the plugin and Pants versions and compression settings;
    `lockfiles`: (name, sha256 hex) of each tool lockfile the build resolved from.
    """

    external_parameters: Mapping[str, Any]
    internal_parameters: Mapping[str, Any]
    lockfiles: tuple[tuple[str, str], ...] = ()

    def __hash__(self) -> int:
        """By content, so that a rule can take it as an input (the mappings are not hashable)."""
        parameters = (self.external_parameters, self.internal_parameters)
        return hash((json.dumps(parameters, sort_keys=True), self.lockfiles))


def provenance_statement(
    inventory: Inventory, inputs: ProvenanceInputs, tool_version: str
) -> bytes:
    """The Statement as canonical JSON bytes; its one subject is the image's manifest digest."""
    image = inventory.image
    statement = {
        "_type": IN_TOTO_STATEMENT_V1,
        "subject": [{"name": image.repository, "digest": {"sha256": naming.hex_of(image.digest)}}],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "target": image.address,
                    "fields": dict(inputs.external_parameters),
                    "SOURCE_DATE_EPOCH": image.created,
                },
                "internalParameters": dict(inputs.internal_parameters),
                "resolvedDependencies": resolved_dependencies(inventory, inputs),
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {naming.TOOL_NAME: tool_version}},
                "byproducts": _byproducts(inventory),
            },
        },
    }
    return naming.canonical_json(statement)


def resolved_dependencies(inventory: Inventory, inputs: ProvenanceInputs) -> list[dict[str, Any]]:
    """Source files, the base, downloads and lockfiles: each once, by digest, in a fixed order."""
    return (
        _sources(inventory)
        + [_base(inventory)]
        + [
            {
                "uri": d.url,
                "digest": {"sha256": d.sha256},
                "annotations": {"target": d.target, "path": d.path},
            }
            for d in inventory.downloads
        ]
        + [
            {"name": name, "digest": {"sha256": sha256}, "annotations": {"kind": "lockfile"}}
            for name, sha256 in sorted(set(inputs.lockfiles))
        ]
    )


def _sources(inventory: Inventory) -> list[dict[str, Any]]:
    """Each source file by its repository-relative path, once even if it is in two layers.

    A downloaded file is listed by its URL instead (below), not as a source.
    """
    sources = {
        (f.source, f.sha256)
        for _, _, f in inventory.files()
        if f.source is not None and not naming.downloads_of(inventory, f)
    }
    return [{"name": path, "digest": {"sha256": sha256}} for path, sha256 in sorted(sources)]


def _base(inventory: Inventory) -> dict[str, Any]:
    base = inventory.base
    descriptor: dict[str, Any] = {
        "name": naming.base_name(base),
        "digest": {"sha256": naming.hex_of(base.digest)},
        "annotations": {"kind": f"base ({base.kind})"},
    }
    purl = naming.base_purl(base)
    if purl:
        descriptor["uri"] = purl
    return descriptor


def _byproducts(inventory: Inventory) -> list[dict[str, Any]]:
    """Artifacts Pants packaged on the way into the image (archives, PEXes)."""
    return [
        {
            "name": a.path,
            "digest": {"sha256": a.sha256},
            "annotations": {"target": a.target, "kind": a.kind},
        }
        for a in inventory.packages
    ]
