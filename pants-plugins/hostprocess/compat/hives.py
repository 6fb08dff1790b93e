"""Is a registry hive file one Windows would load? A check of the regf header and root key.

A parentless Windows layer must carry five hives under `Files/Windows/System32/config/`.
Zero-byte placeholders (v1.0.0 of Microsoft's HostProcess base image) break child-layer
imports (`The configuration registry database is corrupt`) and Windows Server 2025 with the
CimFS snapshotter refuses them outright, so each must be a valid regf file. Only the first
bytes of a hive are read (`HIVE_PREFIX_BYTES`): the base block and the bin holding the root
cell, so an image's layers are still streamed. Written from the regf format specification,
independently of the writer in `hostprocess.oci.windows.hive`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HIVE_NAMES = ("DEFAULT", "SAM", "SECURITY", "SOFTWARE", "SYSTEM")
HIVE_DIRECTORY = "Files/Windows/System32/config"
# The base block (4 KiB) plus the bins that usually hold the root cell (it sits at 0x20).
HIVE_PREFIX_BYTES = 64 * 1024

BASE_BLOCK_SIZE = 4096
HBIN_HEADER_SIZE = 32
BIN_ALIGNMENT = 4096
CELL_ALIGNMENT = 8
REGF_SIGNATURE = b"regf"
HBIN_SIGNATURE = b"hbin"
NK_SIGNATURE = b"nk"
KEY_HIVE_ENTRY = 0x0004
MAJOR_VERSION = 1
MINOR_VERSIONS = range(3, 7)  # 3 to 6, as Windows writes and reads them
FILE_TYPE_PRIMARY = 0
NO_OFFSET = 0xFFFFFFFF
CHECKSUM_OFFSET = 508
CELL_SIZE_FIELD = 4
NK_MIN_DATA = 76  # the fixed part of an nk cell, before its name

# signature, primary and secondary sequence numbers, last written FILETIME, major and minor
# version, file type, file format, root cell offset, hive bins data size.
_BASE_BLOCK = struct.Struct("<4sIIQIIIIII")
# signature, offset of this bin, size of this bin.
_HBIN = struct.Struct("<4sII")
# cell size (negative when allocated), signature, flags.
_CELL_HEAD = struct.Struct("<i2sH")

ZERO_BYTE_PROBLEM = (
    "is a zero-byte file, as in v1.0.0 of Microsoft's HostProcess base image: Windows Server "
    "2025 and the CimFS snapshotter refuse it (`The configuration registry database is "
    "corrupt`), and importing layers on top of it fails on Windows Server 2022 too"
)


@dataclass(frozen=True)
class HiveVerdict:
    """What the first bytes of a hive tell: why Windows would refuse it, or what went unread."""

    problem: str | None = None  # why Windows would refuse the hive
    unchecked: str | None = None  # what lies beyond the bytes read, so was not checked


def hive_path(name: str) -> str:
    """`SAM` -> `Files/Windows/System32/config/SAM`: where a base layer keeps the hive."""
    return f"{HIVE_DIRECTORY}/{name}"


def hive_name(entry_name: str) -> str | None:
    """The upper-case hive name if a layer entry is one of the five hives (case-insensitive,
    as hcsshim finds them on NTFS), else None."""
    directory, _, name = entry_name.rpartition("/")
    if directory.upper() != HIVE_DIRECTORY.upper() or name.upper() not in HIVE_NAMES:
        return None
    return name.upper()


def regf_verdict(data: bytes) -> HiveVerdict:
    """Check a hive's first bytes (`data`, at most `HIVE_PREFIX_BYTES` of it) as Windows would
    load them: the base block, the first bin and the root key cell."""
    if not data:
        return HiveVerdict(ZERO_BYTE_PROBLEM)
    problem = _base_block_problem(data) or _first_bin_problem(data)
    if problem:
        return HiveVerdict(problem)
    return _root_cell_verdict(data)


def _base_block_problem(data: bytes) -> str | None:
    """The 4 KiB header: signature, clean sequence numbers, version, type and checksum."""
    if len(data) < BASE_BLOCK_SIZE + HBIN_HEADER_SIZE:
        return (
            f"is {len(data)} bytes long, shorter than a regf base block ({BASE_BLOCK_SIZE} "
            "bytes) and a hive bin"
        )
    signature, primary, secondary, _, major, minor, file_type, _, _, _ = _BASE_BLOCK.unpack_from(
        data
    )
    if signature != REGF_SIGNATURE:
        return f"does not start with the regf signature (found {signature!r})"
    if primary != secondary:
        # Unequal sequence numbers mark a hive written halfway: Windows must replay its
        # transaction logs (.LOG1/.LOG2), which a layer does not carry.
        return (
            f"has unequal sequence numbers ({primary} and {secondary}): the hive was not "
            "closed cleanly and needs transaction logs the layer does not hold"
        )
    if major != MAJOR_VERSION or minor not in MINOR_VERSIONS:
        return f"has format version {major}.{minor}; Windows loads 1.3 to 1.6"
    if file_type != FILE_TYPE_PRIMARY:
        return f"has file type {file_type}, not 0 (a primary hive file)"
    stored = _u32(data, CHECKSUM_OFFSET)
    expected = base_block_checksum(data)
    if stored != expected:
        return f"has a bad base block checksum (0x{stored:08x} stored, 0x{expected:08x} computed)"
    return None


def base_block_checksum(data: bytes) -> int:
    """XOR of the 127 dwords before the checksum; 0 and 0xFFFFFFFF are stored as 1 and
    0xFFFFFFFE, so that a checksum is never all zero or all one bits."""
    value = 0
    for (dword,) in struct.iter_unpack("<I", data[:CHECKSUM_OFFSET]):
        value ^= dword
    if value == 0:
        return 1
    if value == NO_OFFSET:
        return 0xFFFFFFFE
    return value


def _first_bin_problem(data: bytes) -> str | None:
    """Hive bins start right after the base block, the first at hive offset 0."""
    signature, offset, size = _HBIN.unpack_from(data, BASE_BLOCK_SIZE)
    if signature != HBIN_SIGNATURE:
        return f"has no hive bin at byte {BASE_BLOCK_SIZE} (found {signature!r}, not b'hbin')"
    if offset != 0:
        return f"has a first hive bin that says it is at offset {offset}, not 0"
    if size == 0 or size % BIN_ALIGNMENT:
        return f"has a first hive bin of {size} bytes, not a positive multiple of {BIN_ALIGNMENT}"
    return None


def _root_cell_verdict(data: bytes) -> HiveVerdict:
    """The root cell offset (header byte 36) must lead to an allocated `nk` cell flagged
    KEY_HIVE_ENTRY; Windows opens the hive there."""
    root, bins_size = _u32(data, 36), _u32(data, 40)
    if root == NO_OFFSET or root >= bins_size or root % CELL_ALIGNMENT:
        return HiveVerdict(
            f"has root cell offset 0x{root:x}, which is not an aligned cell inside the "
            f"0x{bins_size:x} bytes of hive bins"
        )
    start = BASE_BLOCK_SIZE + root
    if start + _CELL_HEAD.size > len(data):
        if len(data) >= HIVE_PREFIX_BYTES:
            return HiveVerdict(
                unchecked=f"its root cell (offset 0x{root:x}) lies beyond the first "
                f"{HIVE_PREFIX_BYTES} bytes read, so the root key was not checked"
            )
        return HiveVerdict(f"has root cell offset 0x{root:x}, past the end of the file")
    size, signature, flags = _CELL_HEAD.unpack_from(data, start)
    if size >= 0:
        return HiveVerdict(f"has its root cell (offset 0x{root:x}) marked free, not allocated")
    if -size < CELL_SIZE_FIELD + NK_MIN_DATA or signature != NK_SIGNATURE:
        return HiveVerdict(
            f"has no key node (nk cell) at the root cell offset 0x{root:x} (found {signature!r}"
            f" in a cell of {-size} bytes)"
        )
    if not flags & KEY_HIVE_ENTRY:
        return HiveVerdict(
            f"has a root key (offset 0x{root:x}) without the KEY_HIVE_ENTRY flag (flags "
            f"0x{flags:04x})"
        )
    return HiveVerdict()


def _u32(data: bytes, offset: int) -> int:
    value: int = struct.unpack_from("<I", data, offset)[0]
    return value
