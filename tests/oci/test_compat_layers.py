"""The layer-import rules and the hive check (`hostprocess.compat.layers`), read through the
image-test runner's own archive reader.

Bad layers are crafted with Python's tarfile (PAX), not with our writer, one per rule: each
must break exactly its rule. Hives are checked against hivex, an independent regf parser
(missing tools fail, never skip). Layers our writer produces must pass every rule, by
construction, over generated file sets.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Sequence

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hostprocess.compat.catalog import CHECKS, Finding
from hostprocess.compat.hives import HIVE_NAMES, HIVE_PREFIX_BYTES
from hostprocess.compat.layers import (
    LAYER_CHECKS,
    LayerListing,
    hive_caveats,
    hive_findings,
    layer_findings,
)
from hostprocess.oci.types import Compression
from hostprocess.oci.windows.base import HIVE_ROOT_KEY, base_layer_files
from hostprocess.oci.windows.hive import empty_hive
from hostprocess.oci.windows.layer import LayerFile, write_layer
from hostprocess.oci.windows.paths import find_path_problems
from hostprocess.structure_test.archive_reader import read_archive
from oci.tar_members import write_tar
from system_tools import run_tool, system_tool

# --- Crafting layers and archives ------------------------------------------------------------


@dataclass(frozen=True)
class E:
    """One tar entry to craft: a file (content), a directory, a hard link or a symlink."""

    name: str
    kind: str = "file"
    data: bytes = b"x"
    link: str = ""


def D(name: str) -> E:
    return E(name, "directory")


def L(name: str, target: str) -> E:
    return E(name, "hardlink", link=target)


_TYPES = {"file": tarfile.REGTYPE, "directory": tarfile.DIRTYPE, "hardlink": tarfile.LNKTYPE}


def pax_layer(entries: Sequence[E]) -> bytes:
    """An uncompressed PAX layer tar holding `entries` in order, written by tarfile."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = _TYPES[entry.kind]
            info.linkname = entry.link
            attributes = "16" if entry.kind == "directory" else "32"
            info.pax_headers = {"MSWINDOWS.fileattr": attributes}
            if entry.kind == "file":
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                tar.addfile(info)
    return out.getvalue()


def docker_archive(directory: Path, layers: Sequence[bytes]) -> Path:
    """A docker archive (manifest.json, OCI index and blobs) as `package` writes one."""
    config = json.dumps({"os": "windows", "architecture": "amd64", "config": {}}).encode()
    blobs = {_sha(blob): blob for blob in [config, *layers]}
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"digest": f"sha256:{_sha(config)}", "size": len(config)},
            "layers": [{"digest": f"sha256:{_sha(b)}", "size": len(b)} for b in layers],
        }
    ).encode()
    blobs[_sha(manifest)] = manifest
    members = {
        "manifest.json": json.dumps(
            [
                {
                    "Config": f"blobs/sha256/{_sha(config)}",
                    "Layers": [f"blobs/sha256/{_sha(b)}" for b in layers],
                }
            ]
        ).encode(),
        "index.json": json.dumps(
            {"schemaVersion": 2, "manifests": [{"digest": f"sha256:{_sha(manifest)}"}]}
        ).encode(),
        **{f"blobs/sha256/{digest}": blob for digest, blob in blobs.items()},
    }
    return write_tar(directory / "image.docker.tar", members)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def listings(directory: Path, layers: Sequence[bytes]) -> tuple[LayerListing, ...]:
    """The layers' listings as the image-test runner reads them from an archive."""
    return read_archive(docker_archive(directory, layers)).layers


def failing(found: dict[str, list[Finding]]) -> set[str]:
    return {check for check, findings in found.items() if findings}


# --- One crafted layer per rule --------------------------------------------------------------

BASE = [D("Files"), D("Files/app"), E("Files/app/a.txt"), E("Files/b.txt")]
CHILD = [D("Hives"), D("Files")]


@dataclass(frozen=True)
class Case:
    layers: tuple[tuple[E, ...], ...]  # base first
    check: str | None  # the one rule the top layer breaks; None: it passes every rule
    offender: str = ""  # the tar entry the finding must name


def case(*layers: list[E], check: str | None = None, offender: str = "") -> Case:
    return Case(tuple(tuple(layer) for layer in layers), check, offender)


BAD = {
    "whiteout in the base layer": case(
        [*BASE, E("Files/.wh.b.txt", data=b"")],
        check="layer-whiteouts",
        offender="Files/.wh.b.txt",
    ),
    "whiteout outside Files/": case(
        BASE,
        [*CHILD, E("Hives/.wh.Software_Delta", data=b"")],
        check="layer-whiteouts",
        offender="Hives/.wh.Software_Delta",
    ),
    "whiteout of Files itself": case(
        BASE,
        [D("Hives"), E(".wh.Files", data=b"")],
        check="layer-whiteouts",
        offender=".wh.Files",
    ),
    "opaque whiteout": case(
        BASE,
        [*CHILD, D("Files/app"), E("Files/app/.wh..wh..opq", data=b"")],
        check="layer-whiteouts",
        offender="Files/app/.wh..wh..opq",
    ),
    "duplicate entry": case(
        BASE,
        [*CHILD, E("Files/c.txt"), E("Files/c.txt")],
        check="layer-duplicates",
        offender="Files/c.txt",
    ),
    "case-only duplicate": case(
        BASE,
        [*CHILD, E("Files/c.txt"), E("Files/C.TXT")],
        check="layer-duplicates",
        offender="Files/C.TXT",
    ),
    "repeated directory": case(
        [D("Files"), D("Files/app"), E("Files/app/a.txt"), D("Files/APP")],
        check="layer-duplicates",
        offender="Files/APP",
    ),
    "hard link leaving Files/": case(
        BASE,
        [*CHILD, E("Hives/System_Delta"), L("Files/link", "Hives/System_Delta")],
        check="layer-hard-links",
        offender="Files/link",
    ),
    "hard link named outside Files/": case(
        BASE,
        [*CHILD, L("Hives/link", "Files/b.txt")],
        check="layer-hard-links",
        offender="Hives/link",
    ),
    "hard link to nothing": case(
        BASE,
        [*CHILD, L("Files/link", "Files/missing.txt")],
        check="layer-hard-links",
        offender="Files/missing.txt",
    ),
    "hard link to a directory": case(
        BASE,
        [*CHILD, L("Files/link", "Files/app")],
        check="layer-hard-links",
        offender="Files/link",
    ),
    "hard link to a file whited-out below": case(
        BASE,
        [*CHILD, E("Files/.wh.b.txt", data=b"")],
        [*CHILD, L("Files/link", "Files/b.txt")],
        check="layer-hard-links",
        offender="Files/link",
    ),
    "hard link into a whited-out directory": case(
        BASE,
        [*CHILD, E("Files/.wh.app", data=b"")],
        [*CHILD, L("Files/link", "Files/APP/a.txt")],
        check="layer-hard-links",
        offender="deleted by a whiteout",
    ),
    "hard link to a later entry": case(
        BASE,
        [*CHILD, L("Files/link", "Files/c.txt"), E("Files/c.txt")],
        check="layer-hard-links",
        offender="Files/link",
    ),
    "hard link to this layer's file in another case": case(
        BASE,
        [*CHILD, E("Files/c.txt"), L("Files/link", "Files/C.txt")],
        check="layer-hard-links",
        offender="Files/link",
    ),
    "UtilityVM/ in an upper layer without one below": case(
        BASE,
        [*CHILD, D("UtilityVM"), D("UtilityVM/Files")],
        check="layer-utility-vm",
        offender="UtilityVM/Files",
    ),
    "hard link at the top level": case(
        BASE, [*CHILD, L("link", "Files/b.txt")], check="layer-hard-links", offender="'link'"
    ),
    "top-level etc/passwd": case(
        BASE, [*CHILD, D("etc"), E("etc/passwd")], check="layer-roots", offender="etc/passwd"
    ),
    "root in the wrong case": case(
        [D("files"), E("files/a.txt")], check="layer-roots", offender="files/a.txt"
    ),
}

GOOD = {
    "base layer alone": case(BASE),
    "whiteout in an upper layer": case(BASE, [*CHILD, E("Files/app/.wh.a.txt", data=b"")]),
    "whiteout of a directory, then written again": case(
        BASE, [*CHILD, E("Files/.wh.app", data=b"")], [*CHILD, D("Files/app"), E("Files/app/a.txt")]
    ),
    "hard link to a lower layer's file": case(BASE, [*CHILD, L("Files/link", "Files/b.txt")]),
    "hard link to a lower layer's file, any case": case(
        BASE, [*CHILD, L("Files/link", "Files/APP/A.TXT")]
    ),
    "hard link to an earlier entry of the layer": case(
        BASE, [*CHILD, E("Files/c.txt"), L("Files/link", "Files/c.txt")]
    ),
    "hard link in the base layer": case([*BASE, L("Files/link", "Files/b.txt")]),
    "file written again in an upper layer": case(BASE, [*CHILD, E("Files/B.TXT", data=b"new")]),
    "UtilityVM/ above a layer that has it": case(
        [*BASE, D("UtilityVM"), D("UtilityVM/Files")],
        [*CHILD, D("UtilityVM"), D("UtilityVM/Files"), E("UtilityVM/Files/x.dll")],
    ),
}


def _found(tmp_path: Path, layers: tuple[tuple[E, ...], ...]) -> dict[str, list[Finding]]:
    return layer_findings(listings(tmp_path, [pax_layer(layer) for layer in layers]))


@pytest.mark.parametrize("name", BAD)
def test_a_bad_layer_breaks_exactly_its_rule(tmp_path: Path, name: str) -> None:
    bad = BAD[name]
    found = _found(tmp_path, bad.layers)
    assert set(found) == set(LAYER_CHECKS)
    assert failing(found) == {bad.check}, found
    [finding] = found[str(bad.check)]
    assert finding.check == bad.check and bad.check in CHECKS
    top = len(bad.layers)
    assert finding.message.startswith(f"layer {top} of {top} (sha256:"), finding.message
    assert bad.offender in finding.message, finding.message


@pytest.mark.parametrize("name", GOOD)
def test_a_good_layer_passes_every_rule(tmp_path: Path, name: str) -> None:
    found = _found(tmp_path, GOOD[name].layers)
    assert set(found) == set(LAYER_CHECKS)
    assert failing(found) == set(), found


def test_each_layer_is_reported_under_its_own_label(tmp_path: Path) -> None:
    layers = [[*BASE, D("etc")], [*CHILD, D("usr")], [*CHILD, E("Files/ok.txt")]]
    [first, second] = _found(tmp_path, tuple(tuple(layer) for layer in layers))["layer-roots"]
    assert first.message.startswith("layer 1 of 3 (sha256:") and "'etc'" in first.message
    assert second.message.startswith("layer 2 of 3 (sha256:") and "'usr'" in second.message


def test_offenders_are_listed_up_to_twenty_then_counted(tmp_path: Path) -> None:
    layer = [*BASE, *(E(f"top{number:02}.txt") for number in range(25))]
    [finding] = _found(tmp_path, (tuple(layer),))["layer-roots"]
    assert "'top19.txt'" in finding.message and "'top20.txt'" not in finding.message
    assert finding.message.endswith("... and 5 more")


# --- The reader's listing --------------------------------------------------------------------


def test_the_listing_keeps_tar_order_names_and_links(tmp_path: Path) -> None:
    layer = pax_layer([D("./Files/"), E("./Files/a.txt"), L("./Files/l", "./Files/a.txt")])
    [listing] = listings(tmp_path, [layer])
    assert [(e.name, e.kind, e.link) for e in listing.entries] == [
        ("Files", "directory", ""),
        ("Files/a.txt", "file", ""),
        ("Files/l", "hardlink", "Files/a.txt"),
    ]
    assert listing.label == f"layer 1 of 1 (sha256:{_sha(layer)[:12]}…)"


def test_hive_prefixes_are_read_up_to_the_limit_only(tmp_path: Path) -> None:
    big = bytes(range(256)) * (HIVE_PREFIX_BYTES // 128)  # twice the limit
    layer = [
        D("Files"),
        E("Files/WINDOWS/system32/Config/sam", data=big),
        E("Files/Windows/System32/config/SYSTEM.LOG1", data=b"log"),
        E("Files/Windows/System32/config/SYSTEM", data=b"short"),
    ]
    image = read_archive(
        docker_archive(tmp_path, [pax_layer(layer)]), ["windows/system32/config/sam"]
    )
    [listing] = image.layers
    assert dict(listing.hives) == {"SAM": big[:HIVE_PREFIX_BYTES], "SYSTEM": b"short"}
    sam = image.find("Windows/System32/config/SAM")
    assert sam is not None and sam.sha256 == _sha(big)  # hashed in full all the same


def test_a_hard_link_stacks_as_the_file_it_names(tmp_path: Path) -> None:
    base = pax_layer([D("Files"), E("Files/a.txt", data=b"hello")])
    top = pax_layer([*CHILD, L("Files/l.txt", "Files/A.TXT")])
    image = read_archive(docker_archive(tmp_path, [base, top]), ["a.txt"])
    link = image.find("l.txt")
    assert link is not None and not link.is_dir and link.size == 5
    assert link.sha256 == _sha(b"hello")


# --- base-hives ------------------------------------------------------------------------------

HIVE = empty_hive(HIVE_ROOT_KEY)


def _with_checksum(data: bytearray) -> bytes:
    """Recompute the base block checksum (written out here from the regf specification)."""
    value = 0
    for (dword,) in struct.iter_unpack("<I", bytes(data[:508])):
        value ^= dword
    value = {0: 1, 0xFFFFFFFF: 0xFFFFFFFE}.get(value, value)
    struct.pack_into("<I", data, 508, value)
    return bytes(data)


def _patched(offset: int, fmt: str, value: object, checksum: bool = True) -> bytes:
    data = bytearray(HIVE)
    struct.pack_into(fmt, data, offset, value)
    return _with_checksum(data) if checksum else bytes(data)


def _sk_offset() -> int:
    """The cell after the root nk cell: the writer's sk cell."""
    (size,) = struct.unpack_from("<i", HIVE, 4096 + 0x20)
    return 0x20 - size


# name -> (the hive bytes, does hivex accept it too?)
CORRUPT: dict[str, tuple[bytes, bool]] = {
    "zero-byte file": (b"", False),
    "wrong signature": (_patched(0, "4s", b"rexf"), False),
    "bad checksum": (_patched(508, "<I", 0x12345678, checksum=False), False),
    # hivex accepts a hive whose sequence numbers differ (it only notes that the hive was not
    # closed cleanly); Windows must replay transaction logs (.LOG1/.LOG2) for such a hive,
    # and a layer carries none, so the stricter rule stays.
    "sequence mismatch": (_patched(8, "<I", 2), True),
    "root offset at a non-nk cell": (_patched(36, "<I", _sk_offset()), False),
    "root offset past the bins": (_patched(36, "<I", 0x2000), False),
    "minor version 7": (_patched(24, "<I", 7), True),
    "no first hive bin": (_patched(4096, "4s", b"hbix", checksum=False), False),
    # hivex does not look at the root key's flags; the regf specification requires
    # KEY_HIVE_ENTRY on the root key, which is how Windows finds it.
    "root key without KEY_HIVE_ENTRY": (_patched(4096 + 0x20 + 6, "<H", 0x28), True),
}


def base_with_hives(hives: dict[str, bytes]) -> bytes:
    directories = [
        "Files",
        "Files/Windows",
        "Files/Windows/System32",
        "Files/Windows/System32/config",
    ]
    entries = [D(name) for name in directories]
    entries += [E(f"Files/Windows/System32/config/{n}", data=d) for n, d in hives.items()]
    return pax_layer(entries)


def _hivex_accepts(tmp_path: Path, data: bytes) -> bool:
    path = tmp_path / "hive"
    path.write_bytes(data)
    result = subprocess.run([system_tool("hivexml"), str(path)], capture_output=True, timeout=60)
    return result.returncode == 0


def test_our_base_layer_hives_pass(tmp_path: Path, cc0_path: Path) -> None:
    out = io.BytesIO()
    write_layer(
        base_layer_files(cc0_path.read_bytes()),
        out,
        base=True,
        compression=Compression.GZIP,
        level=1,
        mtime=0,
        threads=1,
    )
    [base] = listings(tmp_path, [out.getvalue()])
    assert set(base.hives) == set(HIVE_NAMES)
    assert hive_findings(base) == [] and hive_caveats(base) == []
    assert failing(layer_findings([base])) == set()
    assert _hivex_accepts(tmp_path, base.hives["SAM"])


def test_a_hive_hivex_wrote_passes(tmp_path: Path) -> None:
    """hivexsh edits our empty hive (a subkey, a value, a new bin), then writes it back:
    hivex's own writer, so a hive our writer did not produce."""
    path = tmp_path / "edited"
    path.write_bytes(HIVE)
    script = "add Software\ncd Software\nadd Vendor\ncd Vendor\nsetval 1\nName\nstring:hi\ncommit\n"
    result = subprocess.run(
        [system_tool("hivexsh"), "-w", str(path)], input=script.encode(), capture_output=True
    )
    assert result.returncode == 0, result.stderr
    edited = path.read_bytes()
    assert edited != HIVE and len(edited) > len(HIVE)
    run_tool("hivexml", str(path))  # hivex reads back what it wrote
    [base] = listings(tmp_path, [base_with_hives({name: edited for name in HIVE_NAMES})])
    assert hive_findings(base) == []


@pytest.mark.parametrize("name", CORRUPT)
def test_a_corrupt_hive_fails(tmp_path: Path, name: str) -> None:
    data, hivex_accepts = CORRUPT[name]
    hives = {hive: HIVE for hive in HIVE_NAMES} | {"SECURITY": data}
    [base] = listings(tmp_path, [base_with_hives(hives)])
    [finding] = hive_findings(base)
    assert finding.check == "base-hives"
    assert "Files/Windows/System32/config/SECURITY" in finding.message
    assert "config/SAM" not in finding.message  # the good ones are not listed
    assert _hivex_accepts(tmp_path, data) is hivex_accepts
    assert failing(layer_findings([base])) == set()  # the layer itself is fine


def test_a_zero_byte_hive_names_the_nodes_that_refuse_it(tmp_path: Path) -> None:
    [base] = listings(tmp_path, [base_with_hives({name: b"" for name in HIVE_NAMES})])
    [finding] = hive_findings(base)
    assert finding.message.count("zero-byte") == len(HIVE_NAMES)
    assert "Windows Server 2025" in finding.message and "CimFS" in finding.message


def test_a_missing_hive_fails(tmp_path: Path) -> None:
    hives = {name: HIVE for name in HIVE_NAMES if name != "SOFTWARE"}
    [base] = listings(tmp_path, [base_with_hives(hives)])
    [finding] = hive_findings(base)
    assert finding.check == "base-hives"
    assert "config/SOFTWARE is missing" in finding.message


def test_a_root_cell_beyond_the_bytes_read_is_not_failed(tmp_path: Path) -> None:
    """A root cell past HIVE_PREFIX_BYTES cannot be checked: a caveat, not a failure. In a
    file shorter than that, the same offset is past the end: a failure."""
    data = bytearray(_patched(40, "<I", 0x30000))  # hive bins claim 192 KiB
    struct.pack_into("<I", data, 36, 0x20000)
    long_hive = _with_checksum(data) + bytes(0x30000)
    short_hive = _with_checksum(data)
    [base] = listings(tmp_path, [base_with_hives({n: long_hive for n in HIVE_NAMES})])
    assert hive_findings(base) == []
    assert len(hive_caveats(base)) == len(HIVE_NAMES)
    [base] = listings(tmp_path, [base_with_hives({n: short_hive for n in HIVE_NAMES})])
    [finding] = hive_findings(base)
    assert "past the end of the file" in finding.message


# --- By construction: what our writer produces passes ----------------------------------------

SETTINGS = settings(
    max_examples=40,
    deadline=timedelta(seconds=20),
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
# Spaces and periods inside names, never at their end (Windows would drop them).
NAME = st.builds(
    str.__add__,
    st.text(alphabet="abcXYZ019-_éß. ", max_size=5),
    st.text(alphabet="abcXYZ019-_éß", min_size=1, max_size=2),
)
PATHS = st.lists(
    st.lists(NAME, min_size=1, max_size=3).map("/".join), min_size=1, max_size=12, unique=True
)


def _layer_bytes(files: list[LayerFile], base: bool, compression: Compression) -> bytes:
    out = io.BytesIO()
    write_layer(files, out, base=base, compression=compression, level=1, mtime=0, threads=1)
    return out.getvalue()


def _valid(paths: list[str]) -> list[str]:
    assume(not find_path_problems(paths))
    return paths


@SETTINGS
@given(
    extra=PATHS,
    children=st.lists(PATHS, min_size=1, max_size=3),
    compression=st.sampled_from(list(Compression)),
)
def test_layers_our_writer_produces_pass_every_rule(
    cc0_path: Path, extra: list[str], children: list[list[str]], compression: Compression
) -> None:
    builtin = base_layer_files(cc0_path.read_bytes())
    base_paths = _valid([f.path for f in builtin] + extra)
    base = builtin + [LayerFile(p, p.encode()) for p in base_paths[len(builtin) :]]
    layers = [_layer_bytes(base, True, compression)]
    for paths in children:
        files = [LayerFile(p, p.encode()) for p in _valid(paths)]
        layers.append(_layer_bytes(files, False, compression))
    with tempfile.TemporaryDirectory() as directory:
        read = listings(Path(directory), layers)
    assert len(read) == len(layers)
    assert failing(layer_findings(read)) == set()
    assert hive_findings(read[0]) == []
