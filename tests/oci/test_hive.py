"""Tests for the empty registry hive writer.

Wherever possible the output is checked by independent parsers (hivex's
``hivexml``/``hivexsh`` and the ``regipy`` library) and by structural
assertions written from the regf spec, not by re-running the writer's own
helpers.  Missing tools make the tests fail, never skip.
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import List, Tuple

import pytest
from regipy.registry import RegistryHive
from regipy.utils import calculate_xor32_checksum

from hostprocess.oci.windows.hive import _checksum, empty_hive
from system_tools import system_tool

PROTO_NAME = "$$$PROTO.HIV"
PROTO_SHA256 = "ac58379654a5c6579e77f25d840071423efa08ea54bc12fb4fd5439c4d618e10"
BASE = 4096
HBIN_HEADER_SIZE = 32
CONFIG_HIVES = ["DEFAULT", "SAM", "SECURITY", "SOFTWARE", "SYSTEM"]
NAMES = [PROTO_NAME, *CONFIG_HIVES, "A", "x" * 255]

# Well-known SIDs written out literally (revision, count, authority, RIDs).
SID_BA = bytes.fromhex("0102" "000000000005" "20000000" "20020000")  # S-1-5-32-544
SID_SY = bytes.fromhex("0101" "000000000005" "12000000")  # S-1-5-18
EXPECTED_SD = (
    bytes.fromhex("01000480" "14000000" "24000000" "00000000" "30000000")
    + SID_BA
    + SID_SY
    + bytes.fromhex("02003400" "02000000")  # ACL rev 2, size 52, 2 ACEs
    + bytes.fromhex("00021800" "3f000f00")  # allowed, CI, 24 bytes, KEY_ALL_ACCESS
    + SID_BA
    + bytes.fromhex("00021400" "3f000f00")  # allowed, CI, 20 bytes, KEY_ALL_ACCESS
    + SID_SY
)


def _write(tmp_path: Path, name: str, file_name: str = "hive") -> Path:
    path = tmp_path / file_name
    path.write_bytes(empty_hive(name))
    return path


def _u32(data: bytes, offset: int) -> int:
    return struct.unpack_from("<I", data, offset)[0]


def _walk_cells(data: bytes) -> List[Tuple[int, int]]:
    """Return (hive offset, signed size) for each cell of the single bin."""
    cells = []
    offset = HBIN_HEADER_SIZE
    while offset < 0x1000:
        (size,) = struct.unpack_from("<i", data, BASE + offset)
        assert size != 0 and abs(size) % 8 == 0, (offset, size)
        cells.append((offset, size))
        offset += abs(size)
    assert offset == 0x1000, "cells overrun the bin"
    return cells


# --- Independent parsers ----------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_hivexml_parses_single_empty_root(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, name)
    result = subprocess.run([system_tool("hivexml"), str(path)], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr
    hive = ET.fromstring(result.stdout)
    assert hive.tag == "hive"
    nodes = hive.findall("node")
    assert len(nodes) == 1
    root = nodes[0]
    assert root.get("name") == name
    assert root.get("root") == "1"
    assert root.findall("node") == []
    assert root.findall("value") == []


def test_hivexsh_lists_nothing(tmp_path: Path) -> None:
    path = _write(tmp_path, PROTO_NAME)
    script = tmp_path / "script"
    script.write_text("ls\nlsval\n")
    result = subprocess.run(
        [system_tool("hivexsh"), "-f", str(script), str(path)],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == b""
    assert result.stderr.strip() == b""


def test_hivexsh_can_grow_the_hive(tmp_path: Path) -> None:
    """hivex must be able to allocate in our free cell and reuse our sk."""
    path = _write(tmp_path, "SOFTWARE")
    out = tmp_path / "grown"
    script = tmp_path / "script"
    script.write_text(f"add Sub\ncd Sub\nsetval 1\nVal\nstring:hello\ncommit {out}\n")
    result = subprocess.run(
        [system_tool("hivexsh"), "-w", "-f", str(script), str(path)],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    xml = subprocess.run([system_tool("hivexml"), str(out)], capture_output=True, check=True).stdout
    root = ET.fromstring(xml).find("node")
    assert root is not None
    subs = root.findall("node")
    assert [s.get("name") for s in subs] == ["Sub"]
    assert [v.get("key") for v in subs[0].findall("value")] == ["Val"]


@pytest.mark.parametrize("name", NAMES)
def test_regipy_opens(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, name)
    hive = RegistryHive(str(path))
    header = hive.header
    assert header.signature == b"regf"
    assert header.primary_sequence_num == header.secondary_sequence_num == 1
    assert (header.major_version, header.minor_version) == (1, 3)
    assert header.file_type == 0
    assert header.file_format == 1
    assert header.root_key_offset == 0x20
    assert header.hive_bins_data_size == 0x1000
    assert header.clustering_factor == 1
    assert header.file_name == name[:32]
    assert header.checksum == calculate_xor32_checksum(path.read_bytes()[:508])
    root = hive.root
    assert root.name == name
    assert root.subkey_count == 0
    assert root.values_count == 0
    assert list(root.iter_subkeys()) == []
    assert list(root.iter_values()) == []


def test_regipy_reads_security(tmp_path: Path) -> None:
    info = RegistryHive(str(_write(tmp_path, "SYSTEM"))).root.get_security_key_info()
    assert info["owner"] == "S-1-5-32-544"
    assert info["group"] == "S-1-5-18"
    assert info["sacl"] is None
    dacl = info["dacl"]
    assert [ace["sid"] for ace in dacl] == ["S-1-5-32-544", "S-1-5-18"]
    for ace in dacl:
        assert ace["ace_type"] == "ACCESS_ALLOWED"
        assert ace["flags"]["CONTAINER_INHERIT_ACE"] is True
        assert ace["flags"]["OBJECT_INHERIT_ACE"] is False


# --- Structure, written from the spec ---------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_base_block(name: str) -> None:
    data = empty_hive(name)
    assert len(data) == 8192
    assert data[0:4] == b"regf"
    fields = struct.unpack_from("<IIQIIIIIII", data, 4)
    assert fields == (1, 1, 0, 1, 3, 0, 1, 0x20, 0x1000, 1)
    expected_name = name.encode("utf-16-le")[:64].ljust(64, b"\0")
    assert data[48:112] == expected_name
    assert data[112:508] == bytes(396)
    assert data[512:BASE] == bytes(BASE - 512)


@pytest.mark.parametrize("name", NAMES)
def test_checksum(name: str) -> None:
    data = empty_hive(name)
    xor = 0
    for i in range(0, 508, 4):
        xor ^= _u32(data, i)
    expected = {0: 1, 0xFFFFFFFF: 0xFFFFFFFE}.get(xor, xor)
    assert _u32(data, 508) == expected
    assert _u32(data, 508) == calculate_xor32_checksum(data[:508])


def test_checksum_reserved_values() -> None:
    """0 and -1 are reserved by Windows and must be remapped."""
    assert _checksum(bytes(508)) == 1
    all_ones_once = b"\xff\xff\xff\xff" + bytes(504)
    assert _checksum(all_ones_once) == 0xFFFFFFFE
    assert _checksum(b"\x01\x02\x03\x04" + bytes(504)) == 0x04030201


@pytest.mark.parametrize("name", NAMES)
def test_hbin_header(name: str) -> None:
    data = empty_hive(name)
    assert data[BASE : BASE + 4] == b"hbin"
    assert struct.unpack_from("<II", data, BASE + 4) == (0, 0x1000)
    assert data[BASE + 12 : BASE + 32] == bytes(20)


@pytest.mark.parametrize("name", NAMES)
def test_cells_tile_the_bin(name: str) -> None:
    data = empty_hive(name)
    cells = _walk_cells(data)
    assert len(cells) == 3
    (nk_off, nk_size), (sk_off, sk_size), (free_off, free_size) = cells
    assert nk_off == 0x20 and nk_size < 0
    assert data[BASE + nk_off + 4 : BASE + nk_off + 6] == b"nk"
    assert sk_off == nk_off - nk_size and sk_size < 0
    assert data[BASE + sk_off + 4 : BASE + sk_off + 6] == b"sk"
    assert free_size > 0
    assert sum(abs(size) for _, size in cells) == 4096 - 32
    # Allocated cells are as small as possible, i.e. tight rounding to 8.
    assert -nk_size == (4 + 76 + len(name) + 7) // 8 * 8
    assert -sk_size == (4 + 20 + len(EXPECTED_SD) + 7) // 8 * 8
    # The free cell carries nothing.
    assert data[BASE + free_off + 4 : BASE + 0x1000] == bytes(free_size - 4)


@pytest.mark.parametrize("name", NAMES)
def test_root_nk_cell(name: str) -> None:
    data = empty_hive(name)
    cells = _walk_cells(data)
    sk_off = cells[1][0]
    nk = BASE + 0x20 + 4
    (
        sig,
        flags,
        filetime,
        access,
        parent,
        subkeys,
        volatile_subkeys,
        subkey_list,
        volatile_subkey_list,
        values,
        value_list,
        security,
        class_name,
    ) = struct.unpack_from("<2sHQIIIIIIIIII", data, nk)
    assert sig == b"nk"
    assert flags == 0x002C
    assert filetime == 0
    assert access == 0
    assert parent == 0
    assert (subkeys, volatile_subkeys, values) == (0, 0, 0)
    assert subkey_list == volatile_subkey_list == value_list == 0xFFFFFFFF
    assert class_name == 0xFFFFFFFF
    assert security == sk_off
    assert 0x20 <= security < 0x1000
    assert struct.unpack_from("<5I", data, nk + 52) == (0, 0, 0, 0, 0)
    name_len, class_len = struct.unpack_from("<HH", data, nk + 72)
    assert (name_len, class_len) == (len(name), 0)
    assert data[nk + 76 : nk + 76 + name_len] == name.encode("ascii")


@pytest.mark.parametrize("name", NAMES)
def test_sk_cell_and_security_descriptor(name: str) -> None:
    data = empty_hive(name)
    sk_off = _walk_cells(data)[1][0]
    sk = BASE + sk_off + 4
    sig, reserved, flink, blink, refs, sd_size = struct.unpack_from("<2sHIIII", data, sk)
    assert sig == b"sk"
    assert reserved == 0
    assert flink == blink == sk_off
    assert refs == 1
    assert sd_size == len(EXPECTED_SD) == 100
    sd = data[sk + 20 : sk + 20 + sd_size]
    assert sd == EXPECTED_SD
    # Walk the SD through its own offsets too, not only by position.
    revision, sbz1, control, owner, group, sacl, dacl = struct.unpack_from("<BBHIIII", sd)
    assert (revision, sbz1, control, sacl) == (1, 0, 0x8004, 0)
    assert sd[owner : owner + len(SID_BA)] == SID_BA
    assert sd[group : group + len(SID_SY)] == SID_SY
    acl_rev, _, acl_size, ace_count, _ = struct.unpack_from("<BBHHH", sd, dacl)
    assert (acl_rev, ace_count) == (2, 2)
    assert dacl + acl_size == len(sd)
    # Padding after the SD up to the end of the cell is zero.
    cell_end = BASE + sk_off - _walk_cells(data)[1][1]
    assert data[sk + 20 + sd_size : cell_end] == bytes(cell_end - (sk + 20 + sd_size))


# --- Determinism and validation ---------------------------------------------


def test_deterministic() -> None:
    assert empty_hive(PROTO_NAME) == empty_hive(PROTO_NAME)
    assert empty_hive("SAM") != empty_hive("SYSTEM")


def test_pinned_digest() -> None:
    assert hashlib.sha256(empty_hive(PROTO_NAME)).hexdigest() == PROTO_SHA256


@pytest.mark.parametrize(
    "name",
    ["", "x" * 256, "caf\u00e9", "\u30ad\u30fc", "a\\b", "a\0b"],
    ids=["empty", "too-long", "latin1", "cjk", "backslash", "nul"],
)
def test_bad_names_rejected(name: str) -> None:
    with pytest.raises(ValueError):
        empty_hive(name)
