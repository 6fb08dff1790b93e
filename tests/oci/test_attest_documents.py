"""Tests for the SBOMs (SPDX 2.3, CycloneDX 1.6) and the SLSA v1 provenance of an image.

The judges are independent: every document is checked by the `verify-documents` PEX
(tests/verifiers), which runs the SPDX project's parser and validator, CycloneDX's strict JSON
schema validator and in-toto's Statement and SLSA Provenance protobuf messages. Content is
checked against checksums computed here with hashlib, and corrupted documents show that the
verifiers really do refuse what is wrong.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

from hostprocess.oci.attest.cyclonedx import cyclonedx_document
from hostprocess.oci.attest.inventory import Inventory, InventoryError
from hostprocess.oci.attest.provenance import ProvenanceInputs, provenance_statement
from hostprocess.oci.attest.spdx import spdx_document

VERIFIER = Path("tests.verifiers/verify-documents.pex")
VERSION = "0.1.0"
CREATED = 1700000000  # 2023-11-14T22:13:20Z
SPDX_ID = re.compile(r"SPDXRef-[A-Za-z0-9.-]+")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(seed: str) -> str:
    return "sha256:" + sha256(seed.encode())


def file_entry(path: str, content: bytes, target: str | None, source: str | None) -> dict:
    return {
        "path": path,
        "sha256": sha256(content),
        "sha1": hashlib.sha1(content).hexdigest(),
        "size": len(content),
        "target": target,
        "source": source,
    }


def layer(seed: str, label: str, files: list[dict]) -> dict:
    return {
        "digest": digest(seed),
        "diff_id": digest(seed + " uncompressed"),
        "size": 1000 + len(files),
        "media_type": "application/vnd.oci.image.layer.v1.tar+gzip",
        "label": label,
        "files": files,
    }


BASE_LAYER = layer(
    "built-in base",
    "built-in base layer",
    [
        file_entry("License.txt", b"CC0 1.0 Universal\n", None, None),
        file_entry("Windows/System32/config/SYSTEM", b"regf system hive", None, None),
    ],
)
APP_FILES = [
    file_entry(
        "hello-world.ps1", b"Write-Output 'hello'\n", "examples:script", "examples/hello-world.ps1"
    ),
    file_entry(
        "Program Files/Agent/agent config.yaml",
        b"level: info\n",
        "examples:config",
        "examples/config/agent config.yaml",
    ),
    file_entry(
        "données/café.txt", "crème brûlée\n".encode(), "examples:notes", "examples/café.txt"
    ),
    # Three paths whose only difference is a character an SPDX id may not hold.
    file_entry("a b.txt", b"space", "examples:odd", "examples/a b.txt"),
    file_entry("a_b.txt", b"underscore", "examples:odd", "examples/a_b.txt"),
    file_entry("a+b.txt", b"plus", "examples:odd", "examples/a+b.txt"),
    file_entry("agent.exe", b"MZ agent binary", "examples:agent-bin", "agent.exe"),
    file_entry("dashboards.zip", b"PK zip of dashboards", "examples/node-agent:dashboards", None),
    file_entry("agent.pex", b"#!/usr/bin/env python\nPEX", "examples/node-agent:agent", None),
]
APP_LAYER = layer("app", "files layer of examples:hello", APP_FILES)
DOWNLOADS = [
    {
        "url": "https://example.com/agent-1.2.3.exe",
        "sha256": sha256(b"MZ agent binary"),
        "target": "examples:agent-bin",
        "path": "agent.exe",
    }
]
PACKAGES = [
    {
        "target": "examples/node-agent:dashboards",
        "kind": "archive",
        "path": "dashboards.zip",
        "sha256": sha256(b"PK zip of dashboards"),
    },
    {
        "target": "examples/node-agent:agent",
        "kind": "pex_binary",
        "path": "agent.pex",
        "sha256": sha256(b"#!/usr/bin/env python\nPEX"),
    },
]
EXTERNAL_REFERENCE = (
    "mcr.microsoft.com/oss/kubernetes/windows-host-process-containers-base-image:v1.0.0@"
    + digest("external base")
)


def image(name: str = "hello") -> dict:
    return {
        "address": f"examples:{name}",
        "name": name,
        "digest": digest(f"manifest of {name}"),
        "media_type": "application/vnd.oci.image.manifest.v1+json",
        "size": 1234,
        "repository": f"hostprocess/{name}",
        "tags": ["latest", "1.2.3"],
        "architecture": "amd64",
        "created": CREATED,
    }


def builtin_inventory() -> dict:
    return {
        "image": image(),
        "base": {"kind": "builtin", "digest": BASE_LAYER["digest"]},
        "layers": [BASE_LAYER, APP_LAYER],
        "downloads": DOWNLOADS,
        "packages": PACKAGES,
    }


def external_inventory() -> dict:
    return {
        "image": image("external"),
        "base": {
            "kind": "external",
            "reference": EXTERNAL_REFERENCE,
            "digest": digest("external base"),
        },
        "layers": [APP_LAYER],
        "downloads": [],
        "packages": [],
    }


def parent_image_inventory() -> dict:
    org_layer = layer(
        "org tools",
        "files layer of examples/org-base:org-base",
        [
            file_entry(
                "tools/org.ps1",
                b"# org tools",
                "examples/org-base:tools",
                "examples/org-base/org.ps1",
            )
        ],
    )
    return {
        "image": image("node-agent"),
        "base": {
            "kind": "image",
            "address": "examples/org-base:org-base",
            "digest": digest("org-base"),
        },
        "layers": [BASE_LAYER, org_layer, APP_LAYER],
        "downloads": DOWNLOADS,
        "packages": PACKAGES,
    }


INVENTORIES = {
    "builtin": builtin_inventory,
    "external": external_inventory,
    "image": parent_image_inventory,
}

INPUTS = ProvenanceInputs(
    external_parameters={"layers": [":dashboards", ":config"], "entrypoint": ["powershell.exe"]},
    internal_parameters={
        "plugin_version": VERSION,
        "pants_version": "2.17.1",
        "compression": "gzip",
        "compression_level": 1,
    },
    lockfiles=(("3rdparty/python/default.lock", sha256(b"lock")),),
)


def spdx(inventory: Inventory) -> bytes:
    return spdx_document(inventory, VERSION)


def cyclonedx(inventory: Inventory) -> bytes:
    return cyclonedx_document(inventory, VERSION)


def provenance(inventory: Inventory) -> bytes:
    return provenance_statement(inventory, INPUTS, VERSION)


WRITERS: dict[str, Callable[[Inventory], bytes]] = {
    "spdx": spdx,
    "cyclonedx": cyclonedx,
    "provenance": provenance,
}
SUFFIXES = {"spdx": ".spdx.json", "cyclonedx": ".cdx.json", "provenance": ".intoto.json"}


def verify(kind: str, document: bytes | dict, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run the independent verifier PEX on a document written to disk."""
    assert (
        VERIFIER.is_file()
    ), f"{VERIFIER} missing: runtime_package_dependencies in tests/oci/BUILD"
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    path = tmp_path / f"document{SUFFIXES[kind]}"
    path.write_bytes(data)
    return subprocess.run(
        [str(VERIFIER.resolve()), kind, str(path)], capture_output=True, text=True, timeout=120
    )


def load(kind: str, name: str = "builtin") -> dict:
    return json.loads(WRITERS[kind](Inventory.from_json(INVENTORIES[name]())))


# -- The inventory ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(INVENTORIES))
def test_inventory_round_trips(name: str) -> None:
    data = INVENTORIES[name]()
    inventory = Inventory.from_json(data)
    assert Inventory.from_json(inventory.to_json()) == inventory
    assert json.loads(json.dumps(inventory.to_json())) == inventory.to_json()
    # Only the order of unordered lists may change; layers keep the image's order.
    assert [lay["digest"] for lay in inventory.to_json()["layers"]] == [
        lay["digest"] for lay in data["layers"]
    ]
    assert sorted(inventory.to_json()["image"]["tags"]) == sorted(data["image"]["tags"])


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (
            lambda d: d["layers"][1]["files"][0].pop("sha1"),
            r"inventory\.layers\[1\]\.files\[0\]: missing required key 'sha1'",
        ),
        (lambda d: d.pop("downloads"), r"inventory: missing required key 'downloads'"),
        (lambda d: d["image"].pop("digest"), r"inventory\.image: missing required key 'digest'"),
        (lambda d: d["base"].update(kind="scratch"), r"base\.kind: 'scratch' is not one of"),
        (
            lambda d: d["image"].update(size="12"),
            r"inventory\.image\.size: expected an integer, got str",
        ),
        (
            lambda d: d["image"].update(digest="sha256:abc"),
            r"inventory\.image\.digest: digest 'sha256:abc'",
        ),
        (
            lambda d: d["layers"][0]["files"][0].update(sha256="XYZ"),
            r"files\[0\]\.sha256: 'XYZ' is not 64",
        ),
        (lambda d: d["layers"][1]["files"].append(d["layers"][1]["files"][0]), r"listed twice"),
    ],
)
def test_inventory_refuses_bad_json_naming_the_key(
    corrupt: Callable[[dict], Any], message: str
) -> None:
    data = copy.deepcopy(builtin_inventory())
    corrupt(data)
    with pytest.raises(InventoryError, match=message):
        Inventory.from_json(data)


def test_external_base_needs_its_reference() -> None:
    data = external_inventory()
    del data["base"]["reference"]
    with pytest.raises(InventoryError, match=r"inventory\.base: missing required key 'reference'"):
        Inventory.from_json(data)


# -- Every document passes its independent verifier ---------------------------------------------


@pytest.mark.parametrize("name", sorted(INVENTORIES))
@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_documents_pass_the_independent_verifiers(kind: str, name: str, tmp_path: Path) -> None:
    inventory = Inventory.from_json(INVENTORIES[name]())
    result = verify(kind, WRITERS[kind](inventory), tmp_path)
    assert result.returncode == 0, result.stderr
    files = sum(len(layer["files"]) for layer in INVENTORIES[name]()["layers"])
    others = len(inventory.downloads) + len(inventory.packages)
    expected = {
        # The image and its base, and a package for each download and artifact.
        "spdx": f"SPDX 2.3 valid: {2 + others} packages, {files} files",
        # The image is metadata.component; the base, files, downloads and artifacts follow.
        "cyclonedx": f"CycloneDX 1.6 valid: {1 + files + others} components",
        "provenance": "SLSA v1 provenance valid: 1 subject(s)",
    }[kind]
    assert result.stdout.startswith(expected), result.stdout


# -- What the SPDX document says ------------------------------------------------------------------


def all_files() -> list[tuple[dict, dict]]:
    return [(lay, f) for lay in builtin_inventory()["layers"] for f in lay["files"]]


def test_spdx_describes_the_image_by_its_manifest_digest() -> None:
    document = load("spdx")
    assert document["spdxVersion"] == "SPDX-2.3"
    assert document["creationInfo"] == {
        "created": "2023-11-14T22:13:20Z",
        "creators": [f"Tool: pants-backend-hostprocess-{VERSION}"],
    }
    packages = {p["SPDXID"]: p for p in document["packages"]}
    described = [
        r["relatedSpdxElement"]
        for r in document["relationships"]
        if r["spdxElementId"] == "SPDXRef-DOCUMENT" and r["relationshipType"] == "DESCRIBES"
    ]
    assert len(described) == 1
    image = packages[described[0]]
    image_hex = builtin_inventory()["image"]["digest"].split(":")[1]
    assert image["checksums"] == [{"algorithm": "SHA256", "checksumValue": image_hex}]
    assert image["primaryPackagePurpose"] == "CONTAINER"
    assert image["externalRefs"][0]["referenceLocator"] == (
        f"pkg:oci/hello@sha256%3A{image_hex}?arch=amd64&repository_url=hostprocess/hello"
    )
    # SPDX 2.3 §7.9, restated: SHA-1 over the sorted, concatenated SHA-1s of its files.
    sha1s = "".join(sorted(f["sha1"] for _, f in all_files()))
    assert image["packageVerificationCode"]["packageVerificationCodeValue"] == (
        hashlib.sha1(sha1s.encode()).hexdigest()
    )


def test_spdx_lists_every_file_with_checksums_path_and_origin() -> None:
    document = load("spdx")
    files = document["files"]
    assert len(files) == len(all_files()) == 11
    by_name = {f["fileName"]: f for f in files}
    for lay, entry in all_files():
        element = by_name["./" + entry["path"]]
        assert element["checksums"] == [
            {"algorithm": "SHA1", "checksumValue": entry["sha1"]},
            {"algorithm": "SHA256", "checksumValue": entry["sha256"]},
        ]
        assert "C:\\" + entry["path"].replace("/", "\\") in element["comment"]
        assert lay["digest"] in element["comment"]
        if entry["target"]:
            assert entry["target"] in element["comment"]
    cafe = by_name["./données/café.txt"]
    assert cafe["checksums"][1]["checksumValue"] == sha256("crème brûlée\n".encode())
    assert "C:\\données\\café.txt" in cafe["comment"]
    assert "examples/café.txt" in cafe["comment"]
    assert "C:\\Program Files\\Agent\\agent config.yaml" in (
        by_name["./Program Files/Agent/agent config.yaml"]["comment"]
    )


def test_spdx_ids_are_valid_and_unique_even_for_paths_that_differ_in_refused_characters() -> None:
    document = load("spdx")
    ids = [e["SPDXID"] for e in document["packages"] + document["files"]]
    assert all(SPDX_ID.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    odd = [
        f["SPDXID"]
        for f in document["files"]
        if f["fileName"] in ("./a b.txt", "./a_b.txt", "./a+b.txt")
    ]
    assert len(set(odd)) == 3


def test_spdx_relationships_tie_files_to_image_base_downloads_and_artifacts() -> None:
    document = load("spdx")
    ids = {p["name"]: p["SPDXID"] for p in document["packages"]}
    file_ids = {f["fileName"]: f["SPDXID"] for f in document["files"]}
    relations = {
        (r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"])
        for r in document["relationships"]
    }
    image, base = ids["hello"], ids["hostprocess built-in base layer"]
    assert (image, "DESCENDANT_OF", base) in relations
    assert all((image, "CONTAINS", file_id) in relations for file_id in file_ids.values())
    assert (base, "CONTAINS", file_ids["./License.txt"]) in relations
    assert (base, "CONTAINS", file_ids["./hello-world.ps1"]) not in relations
    download = ids["agent-1.2.3.exe"]
    assert (download, "BUILD_DEPENDENCY_OF", image) in relations
    assert (file_ids["./agent.exe"], "GENERATED_FROM", download) in relations
    assert (file_ids["./agent.pex"], "GENERATED_FROM", ids["agent.pex"]) in relations
    assert (file_ids["./dashboards.zip"], "GENERATED_FROM", ids["dashboards.zip"]) in relations
    assert (image, "CONTAINS", ids["agent.pex"]) in relations
    packages = {p["name"]: p for p in document["packages"]}
    assert packages["agent-1.2.3.exe"]["downloadLocation"] == "https://example.com/agent-1.2.3.exe"
    assert packages["agent-1.2.3.exe"]["checksums"] == [
        {"algorithm": "SHA256", "checksumValue": sha256(b"MZ agent binary")}
    ]
    assert packages["agent.pex"]["primaryPackagePurpose"] == "APPLICATION"
    assert packages["dashboards.zip"]["primaryPackagePurpose"] == "ARCHIVE"


def test_spdx_names_an_external_base_by_reference_and_digest() -> None:
    document = load("spdx", "external")
    base = next(p for p in document["packages"] if p["SPDXID"] == "SPDXRef-Base")
    repository = "mcr.microsoft.com/oss/kubernetes/windows-host-process-containers-base-image"
    assert base["name"] == repository
    base_hex = digest("external base").split(":")[1]
    assert base["checksums"] == [{"algorithm": "SHA256", "checksumValue": base_hex}]
    assert base["externalRefs"][0]["referenceLocator"] == (
        f"pkg:oci/windows-host-process-containers-base-image@sha256%3A{base_hex}?repository_url={repository}"
    )
    assert base["filesAnalyzed"] is False  # its files are unknown


def test_spdx_names_a_parent_image_base_by_address_and_digest() -> None:
    document = load("spdx", "image")
    base = next(p for p in document["packages"] if p["SPDXID"] == "SPDXRef-Base")
    assert base["name"] == "examples/org-base:org-base"
    assert base["versionInfo"] == digest("org-base")
    assert "./tools/org.ps1" in {f["fileName"] for f in document["files"]}


# -- What the CycloneDX document says -------------------------------------------------------------


def test_cyclonedx_has_the_image_as_container_and_every_file_with_both_hashes() -> None:
    document = load("cyclonedx")
    assert document["specVersion"] == "1.6"
    hello_digest = builtin_inventory()["image"]["digest"]
    assert document["serialNumber"] == "urn:uuid:" + str(
        uuid.uuid5(
            uuid.NAMESPACE_URL,
            f"https://github.com/hostprocess/pants-backend-hostprocess/cyclonedx/{hello_digest}",
        )
    )
    assert document["metadata"]["timestamp"] == "2023-11-14T22:13:20Z"
    image = document["metadata"]["component"]
    assert (image["type"], image["version"]) == ("container", hello_digest)
    assert image["hashes"] == [{"alg": "SHA-256", "content": hello_digest.split(":")[1]}]
    files = {
        c["name"]: c for c in document["components"] if "hostprocess:layer_digest" in json.dumps(c)
    }
    assert len(files) == 11
    for lay, entry in all_files():
        component = files[entry["path"]]
        assert component["type"] == "file"
        assert component["hashes"] == [
            {"alg": "SHA-1", "content": entry["sha1"]},
            {"alg": "SHA-256", "content": entry["sha256"]},
        ]
        properties = {p["name"]: p["value"] for p in component["properties"]}
        assert properties["hostprocess:windows_path"] == "C:\\" + entry["path"].replace("/", "\\")
        assert properties["hostprocess:layer_digest"] == lay["digest"]
        assert properties.get("hostprocess:target") == entry["target"]
        assert properties.get("hostprocess:source") == entry["source"]


def test_cyclonedx_dependencies_and_ids_match_the_spdx_document() -> None:
    cdx, spdx_doc = load("cyclonedx"), load("spdx")
    refs = [c["bom-ref"] for c in cdx["components"]] + [cdx["metadata"]["component"]["bom-ref"]]
    assert len(set(refs)) == len(refs)
    spdx_ids = {e["SPDXID"] for e in spdx_doc["packages"] + spdx_doc["files"]}
    assert {"SPDXRef-" + r for r in refs} == spdx_ids
    dependencies = {d["ref"]: d["dependsOn"] for d in cdx["dependencies"]}
    components = {c["bom-ref"]: c for c in cdx["components"]}
    # Not files (a packaged artifact's file has the artifact's name): base, downloads, artifacts.
    named = {
        c["name"]: ref
        for ref, c in components.items()
        if not any(p["name"] == "hostprocess:layer_digest" for p in c["properties"])
    }
    assert set(dependencies["Image"]) == {
        "Base",
        named["agent-1.2.3.exe"],
        named["agent.pex"],
        named["dashboards.zip"],
    }
    download = components[named["agent-1.2.3.exe"]]
    assert download["externalReferences"][0]["url"] == "https://example.com/agent-1.2.3.exe"
    assert all(dep in refs for deps in dependencies.values() for dep in deps)


# -- What the provenance says ---------------------------------------------------------------------


def test_provenance_subject_build_type_parameters_and_dependencies() -> None:
    statement = load("provenance")
    hello = builtin_inventory()["image"]
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["subject"] == [
        {"name": "hostprocess/hello", "digest": {"sha256": hello["digest"].split(":")[1]}}
    ]
    definition = statement["predicate"]["buildDefinition"]
    assert (
        definition["buildType"]
        == "https://github.com/hostprocess/pants-backend-hostprocess/buildtypes/image/v1"
    )
    assert definition["externalParameters"] == {
        "target": "examples:hello",
        "fields": {"layers": [":dashboards", ":config"], "entrypoint": ["powershell.exe"]},
        "SOURCE_DATE_EPOCH": CREATED,
    }
    assert definition["internalParameters"]["compression"] == "gzip"
    dependencies = definition["resolvedDependencies"]
    by_name = {d.get("name") or d.get("uri"): d for d in dependencies}
    for _, entry in all_files():
        if entry["source"] and entry["target"] != "examples:agent-bin":  # a download: by URL
            assert by_name[entry["source"]]["digest"] == {"sha256": entry["sha256"]}
    assert by_name["hostprocess built-in base layer"]["digest"] == {
        "sha256": BASE_LAYER["digest"].split(":")[1]
    }
    assert by_name["https://example.com/agent-1.2.3.exe"]["digest"] == {
        "sha256": sha256(b"MZ agent binary")
    }
    assert by_name["3rdparty/python/default.lock"]["digest"] == {"sha256": sha256(b"lock")}
    builder = statement["predicate"]["runDetails"]["builder"]
    assert builder == {
        "id": "https://github.com/hostprocess/pants-backend-hostprocess",
        "version": {"pants-backend-hostprocess": VERSION},
    }


def test_provenance_names_an_external_base_by_purl() -> None:
    statement = load("provenance", "external")
    base = next(
        d
        for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        if "base" in json.dumps(d.get("annotations"))
    )
    assert base["uri"].startswith("pkg:oci/windows-host-process-containers-base-image@sha256%3A")
    assert base["digest"] == {"sha256": digest("external base").split(":")[1]}


# -- Determinism ---------------------------------------------------------------------------------


def reordered(data: dict) -> dict:
    """The same inventory with every unordered list reversed (layers keep their order)."""
    data = copy.deepcopy(data)
    data["image"]["tags"].reverse()
    for lay in data["layers"]:
        lay["files"].reverse()
    data["downloads"].reverse()
    data["packages"].reverse()
    return data


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_documents_are_the_same_bytes_for_the_same_inventory(kind: str) -> None:
    write = WRITERS[kind]
    data = builtin_inventory()
    first = write(Inventory.from_json(data))
    assert write(Inventory.from_json(builtin_inventory())) == first
    assert write(Inventory.from_json(reordered(data))) == first
    later = copy.deepcopy(data)
    later["image"]["created"] = CREATED + 1
    assert write(Inventory.from_json(later)) != first


# -- The verifiers refuse what is wrong ----------------------------------------------------------


def drop_a_file_sha1(document: dict) -> None:
    document["files"][0]["checksums"] = document["files"][0]["checksums"][1:]


def duplicate_an_spdx_id(document: dict) -> None:
    document["files"][1]["SPDXID"] = document["files"][0]["SPDXID"]


def break_a_relationship(document: dict) -> None:
    document["relationships"][0]["relatedSpdxElement"] = "SPDXRef-Nowhere"


def misspell_a_hash_algorithm(document: dict) -> None:
    document["components"][1]["hashes"][0]["alg"] = "SHA1"


def add_an_unknown_cyclonedx_field(document: dict) -> None:
    document["metadata"]["component"]["layers"] = 2


def drop_the_subject_digest(document: dict) -> None:
    document["subject"][0]["digest"] = {}


def add_an_unknown_provenance_field(document: dict) -> None:
    document["predicate"]["buildDefinition"]["buildTypo"] = "x"


def drop_the_build_type(document: dict) -> None:
    del document["predicate"]["buildDefinition"]["buildType"]


@pytest.mark.parametrize(
    "kind, corrupt, complaint",
    [
        ("spdx", drop_a_file_sha1, "SHA1"),
        ("spdx", duplicate_an_spdx_id, "must be unique"),
        ("spdx", break_a_relationship, "SPDXRef-Nowhere"),
        ("cyclonedx", misspell_a_hash_algorithm, "SHA1"),
        ("cyclonedx", add_an_unknown_cyclonedx_field, "layers"),
        ("provenance", drop_the_subject_digest, "digest"),
        ("provenance", add_an_unknown_provenance_field, "buildTypo"),
        ("provenance", drop_the_build_type, "buildType"),
    ],
)
def test_the_verifiers_refuse_a_corrupted_document(
    kind: str, corrupt: Callable[[dict], None], complaint: str, tmp_path: Path
) -> None:
    document = load(kind)
    corrupt(document)
    result = verify(kind, document, tmp_path)
    assert result.returncode == 1, result.stdout
    assert complaint in result.stderr, result.stderr


def test_provenance_lists_a_downloaded_file_by_its_url_not_as_a_source() -> None:
    statement = load("provenance")
    dependencies = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert [d for d in dependencies if d.get("name") == "agent.exe"] == []
    downloads = [d for d in dependencies if d.get("uri") == "https://example.com/agent-1.2.3.exe"]
    assert len(downloads) == 1


def test_provenance_inputs_are_hashable_by_content() -> None:
    again = ProvenanceInputs(
        external_parameters=dict(INPUTS.external_parameters),
        internal_parameters=dict(INPUTS.internal_parameters),
        lockfiles=INPUTS.lockfiles,
    )
    assert again == INPUTS and hash(again) == hash(INPUTS)
    assert {INPUTS, again} == {INPUTS}
