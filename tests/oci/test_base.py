"""Tests for the built-in base layer.

The layer's digest is pinned (the end-to-end test pins the same value), as is the digest
of the notice it ships; its hives are parsed by hivex's `hivexml`, its tar by Python's
tarfile and GNU tar (which also reads the notice out of it), and the legal code it ships is
compared with Debian's copy of CC0 1.0. A missing tool or file fails the test.
"""
from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from digests import sha256_of

from hostprocess.oci.compression import BlobDigests
from hostprocess.oci.types import Compression
from hostprocess.oci.windows.base import base_layer_files
from hostprocess.oci.windows.layer import write_layer
from system_tools import system_tool

BASE_LAYER_DIGEST = "sha256:b9c41e1613838cb61d8a93d81084d0ec01fcd3e458faf73343cccaa36b6ab218"
# Files/License.txt, the CC0 notice: pinned so that its words cannot change unnoticed.
LICENSE_DIGEST = "sha256:3892f7bf20db6a63a1ab4c1a683040e5a3e762f5366f77f1fd60e052857e903a"
DEBIAN_CC0 = Path("/usr/share/common-licenses/CC0-1.0")
HIVES = ["DEFAULT", "SAM", "SECURITY", "SOFTWARE", "SYSTEM"]
HIVE_DIR = "Windows/System32/config"
EXPECTED_PATHS = ["License.txt", "cc0-legalcode.txt", *[f"{HIVE_DIR}/{h}" for h in HIVES]]
EXPECTED_MEMBERS = [
    "Files",
    "Files/License.txt",
    "Files/Windows",
    "Files/Windows/System32",
    "Files/Windows/System32/config",
    *[f"Files/{HIVE_DIR}/{h}" for h in HIVES],
    "Files/cc0-legalcode.txt",
]


@pytest.fixture(scope="module")
def cc0(cc0_path: Path) -> bytes:
    return cc0_path.read_bytes()


def _build(cc0: bytes, threads: int = 1) -> Tuple[bytes, BlobDigests]:
    out = io.BytesIO()
    digests = write_layer(
        base_layer_files(cc0),
        out,
        base=True,
        compression=Compression.GZIP,
        level=1,
        mtime=0,
        threads=threads,
    )
    return out.getvalue(), digests


@pytest.fixture(scope="module")
def built(cc0: bytes) -> Tuple[bytes, BlobDigests]:
    return _build(cc0)


@pytest.fixture(scope="module")
def license_txt(
    built: Tuple[bytes, BlobDigests], tmp_path_factory: pytest.TempPathFactory
) -> bytes:
    """`Files/License.txt` as GNU tar extracts it from the built layer."""
    path = tmp_path_factory.mktemp("base") / "base.tar.gz"
    path.write_bytes(built[0])
    result = subprocess.run(
        [system_tool("tar"), "-xzOf", str(path), "Files/License.txt"],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def _contents(blob: bytes) -> Tuple[List[tarfile.TarInfo], Dict[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        members = tar.getmembers()
        contents = {m.name: tar.extractfile(m).read() for m in members if m.isfile()}  # type: ignore[union-attr]
    return members, contents


# --- base_layer_files ---------------------------------------------------------------


def test_cc0_legalcode_is_debians_cc0(cc0: bytes) -> None:
    assert DEBIAN_CC0.is_file(), f"{DEBIAN_CC0} missing (Debian package base-files)"
    assert cc0 == DEBIAN_CC0.read_bytes(), "cc0-legalcode.txt differs from Debian's CC0-1.0"
    assert b"Creative Commons Legal Code" in cc0
    assert b"CC0 1.0 Universal" in cc0


def test_base_layer_files_paths(cc0: bytes) -> None:
    assert [f.path for f in base_layer_files(cc0)] == EXPECTED_PATHS


def test_base_layer_files_contents(cc0: bytes) -> None:
    sources = {f.path: f.source for f in base_layer_files(cc0)}
    files = {path: data for path, data in sources.items() if isinstance(data, bytes)}
    assert files.keys() == sources.keys()  # every source is in memory, none a file on disk
    assert files["cc0-legalcode.txt"] == cc0
    assert sha256_of(files["License.txt"]) == LICENSE_DIGEST
    hives = [files[f"{HIVE_DIR}/{h}"] for h in HIVES]
    assert all(hive == hives[0] for hive in hives)
    assert hives[0][:4] == b"regf"
    assert len(hives[0]) > 0 and len(hives[0]) % 4096 == 0, len(hives[0])


def test_license_text_mentions_cc0(license_txt: bytes) -> None:
    text = license_txt.decode("ascii")
    assert "CC0 1.0 Universal" in text
    assert "cc0-legalcode.txt" in text
    assert "Windows\\System32\\config" in text


def test_license_text_uses_crlf(license_txt: bytes) -> None:
    assert license_txt.endswith(b"\r\n")
    assert license_txt.count(b"\n") == license_txt.count(b"\r\n"), "bare LF in License.txt"
    assert b"\r\r" not in license_txt


def test_legal_code_is_passed_through_unchanged() -> None:
    marker = b"any bytes\n\x00\xff"
    assert {f.path: f.source for f in base_layer_files(marker)}["cc0-legalcode.txt"] == marker


# --- the built layer ------------------------------------------------------------------


def test_base_layer_digest_is_pinned(built: Tuple[bytes, BlobDigests]) -> None:
    blob, digests = built
    assert digests.digest == BASE_LAYER_DIGEST, (
        "the base layer's bytes changed; every image built on it changes digest "
        "(tests/e2e pins the same value)"
    )
    assert sha256_of(blob) == BASE_LAYER_DIGEST
    assert digests.size == len(blob)
    assert digests.diff_id == sha256_of(gzip.decompress(blob))


def test_base_layer_digest_independent_of_threads(cc0: bytes) -> None:
    assert _build(cc0, threads=4)[1].digest == BASE_LAYER_DIGEST


def test_base_layer_holds_files_only(built: Tuple[bytes, BlobDigests]) -> None:
    members, _ = _contents(built[0])
    names = [m.name for m in members]
    assert names == EXPECTED_MEMBERS
    assert not any(n == "Hives" or n.startswith("Hives/") for n in names), names
    for member in members:
        assert member.isdir() or member.isfile(), member.name
        assert member.pax_headers.get("MSWINDOWS.fileattr") == ("16" if member.isdir() else "32")
        assert (member.mtime, member.uid, member.gid) == (0, 0, 0), member.name


def test_base_layer_contents(
    built: Tuple[bytes, BlobDigests], cc0: bytes, license_txt: bytes
) -> None:
    _, contents = _contents(built[0])
    assert contents["Files/cc0-legalcode.txt"] == DEBIAN_CC0.read_bytes()
    assert contents["Files/cc0-legalcode.txt"] == cc0
    assert b"CC0" in contents["Files/License.txt"]
    assert contents["Files/License.txt"] == license_txt
    assert sha256_of(contents["Files/License.txt"]) == LICENSE_DIGEST


@pytest.mark.parametrize("hive", HIVES)
def test_hive_parses_with_hivexml(
    built: Tuple[bytes, BlobDigests], tmp_path: Path, hive: str
) -> None:
    _, contents = _contents(built[0])
    path = tmp_path / hive
    path.write_bytes(contents[f"Files/{HIVE_DIR}/{hive}"])
    result = subprocess.run([system_tool("hivexml"), str(path)], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    root = ET.fromstring(result.stdout)
    assert root.tag == "hive"
    nodes = root.findall("node")
    assert len(nodes) == 1, result.stdout
    assert nodes[0].get("name") == "$$$PROTO.HIV"
    assert nodes[0].get("root") == "1"
    assert nodes[0].findall("node") == [] and nodes[0].findall("value") == []


def test_gnu_tar_lists_base_layer(built: Tuple[bytes, BlobDigests], tmp_path: Path) -> None:
    path = tmp_path / "base.tar.gz"
    path.write_bytes(built[0])
    result = subprocess.run(
        [system_tool("tar"), "-tvzf", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    # GNU tar does not know Windows' attribute record; it must be its only complaint.
    for line in result.stderr.splitlines():
        assert "unknown extended header keyword 'MSWINDOWS.fileattr'" in line, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[-1] for line in lines] == EXPECTED_MEMBERS
    directories = {"Files", "Files/Windows", "Files/Windows/System32", f"Files/{HIVE_DIR}"}
    for line in lines:
        kind = "d" if line.split()[-1] in directories else "-"
        assert line.startswith(kind), line
