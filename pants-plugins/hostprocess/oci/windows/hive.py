"""Writer for minimal, empty Windows registry hive files (regf format).

Windows Server 2025 refuses to boot a container whose base layer carries
zero-byte files at ``Windows/System32/config/{DEFAULT,SAM,...}``, so the base
layer needs real (if empty) hives.  This module produces them with the
standard library only, byte-for-byte deterministically: every timestamp is
zero and nothing depends on the platform, clock or randomness, so image
digests stay reproducible.

Layout of the produced 8192-byte file::

    0x0000  base block (4096 bytes)
    0x1000  hbin header (32 bytes)          hive offset 0x0000
    0x1020  root nk cell (allocated)        hive offset 0x0020
    ....    sk cell (allocated)             right after the nk cell
    ....    one free cell filling the rest of the bin

All "offsets" inside cells are relative to the start of the hive bins data
(file offset minus 4096) and point at a cell's size field.
"""

from __future__ import annotations

import struct
from typing import List, Tuple

# --- Sizes and layout -------------------------------------------------------

BASE_BLOCK_SIZE = 0x1000
HBIN_SIZE = 0x1000
HBIN_HEADER_SIZE = 0x20
CELL_ALIGNMENT = 8
CELL_SIZE_FIELD = 4
ROOT_CELL_OFFSET = HBIN_HEADER_SIZE
NO_OFFSET = 0xFFFFFFFF

# --- Base block -------------------------------------------------------------

REGF_SIGNATURE = b"regf"
PRIMARY_SEQUENCE_NUMBER = 1
SECONDARY_SEQUENCE_NUMBER = 1  # equal to the primary one: hive is clean
MAJOR_VERSION = 1
MINOR_VERSION = 3
FILE_TYPE_PRIMARY = 0
FILE_FORMAT_DIRECT_MEMORY_LOAD = 1
CLUSTERING_FACTOR = 1
FILE_NAME_OFFSET = 48
FILE_NAME_SIZE = 64
CHECKSUM_OFFSET = 508
CHECKSUM_DWORDS = CHECKSUM_OFFSET // 4  # 127 dwords cover bytes 0..507

# Fixed fields at offsets 0..47, all little-endian.
BASE_BLOCK_HEADER = struct.Struct("<4sIIQIIIIIII")

# --- hbin -------------------------------------------------------------------

HBIN_SIGNATURE = b"hbin"
# signature, offset of this bin, size of this bin, 8 reserved bytes,
# timestamp, spare.
HBIN_HEADER = struct.Struct("<4sII8sQI")

# --- nk (key node) cell -----------------------------------------------------

NK_SIGNATURE = b"nk"
KEY_HIVE_ENTRY = 0x0004
KEY_NO_DELETE = 0x0008
KEY_COMP_NAME = 0x0020
ROOT_KEY_FLAGS = KEY_HIVE_ENTRY | KEY_NO_DELETE | KEY_COMP_NAME
MAX_KEY_NAME_LENGTH = 255
# signature, flags, last written, access bits, parent, subkey count,
# volatile subkey count, subkey list, volatile subkey list, value count,
# value list, security, class name, largest subkey name length, largest
# subkey class length, largest value name length, largest value data size,
# WorkVar, key name length, class name length.  The key name follows.
NK_FIXED = struct.Struct("<2sHQIIIIIIIIIIIIIIIHH")
ROOT_PARENT_OFFSET = 0

# --- sk (security key) cell -------------------------------------------------

SK_SIGNATURE = b"sk"
# signature, reserved, flink, blink, reference count, descriptor size.
SK_FIXED = struct.Struct("<2sHIIII")
SK_REFERENCE_COUNT = 1

# --- Security descriptor ----------------------------------------------------

SD_REVISION = 1
SE_DACL_PRESENT = 0x0004
SE_SELF_RELATIVE = 0x8000
SD_CONTROL = SE_SELF_RELATIVE | SE_DACL_PRESENT
# revision, sbz1, control, owner, group, sacl, dacl offsets.
SD_HEADER = struct.Struct("<BBHIIII")
ACL_REVISION = 2
# revision, sbz1, size, ace count, sbz2.
ACL_HEADER = struct.Struct("<BBHHH")
ACCESS_ALLOWED_ACE_TYPE = 0
CONTAINER_INHERIT_ACE = 0x02
KEY_ALL_ACCESS = 0x000F003F
# type, flags, size, access mask.  The SID follows.
ACE_HEADER = struct.Struct("<BBHI")

SID_REVISION = 1
SECURITY_NT_AUTHORITY = 5
SECURITY_BUILTIN_DOMAIN_RID = 32
DOMAIN_ALIAS_RID_ADMINS = 544
SECURITY_LOCAL_SYSTEM_RID = 18
BUILTIN_ADMINISTRATORS: Tuple[int, ...] = (
    SECURITY_BUILTIN_DOMAIN_RID,
    DOMAIN_ALIAS_RID_ADMINS,
)  # S-1-5-32-544
LOCAL_SYSTEM: Tuple[int, ...] = (SECURITY_LOCAL_SYSTEM_RID,)  # S-1-5-18


def _align(size: int) -> int:
    """Round a cell size up to the 8-byte granularity cells must have."""
    return (size + CELL_ALIGNMENT - 1) // CELL_ALIGNMENT * CELL_ALIGNMENT


def _cell(data: bytes) -> bytes:
    """Wrap cell data in an allocated cell (negative size), zero-padded."""
    size = _align(CELL_SIZE_FIELD + len(data))
    return struct.pack("<i", -size) + data.ljust(size - CELL_SIZE_FIELD, b"\0")


def _free_cell(size: int) -> bytes:
    """Return a free cell (positive size) so the cells tile the bin exactly."""
    if size < CELL_ALIGNMENT or size % CELL_ALIGNMENT:
        raise ValueError(f"free cell size {size} is not a positive multiple of 8")
    return struct.pack("<i", size) + bytes(size - CELL_SIZE_FIELD)


def _validate_key_name(name: str) -> bytes:
    """Check the root key name and return its compressed (ASCII) form.

    KEY_COMP_NAME means the name is stored one byte per character, so only
    ASCII is accepted; backslash is the key path separator and NUL ends
    strings in many consumers, so neither may appear in a key name.
    """
    if not 1 <= len(name) <= MAX_KEY_NAME_LENGTH:
        raise ValueError(f"key name must be 1..{MAX_KEY_NAME_LENGTH} characters, got {len(name)}")
    if not name.isascii():
        raise ValueError(f"key name must be ASCII: {name!r}")
    if "\\" in name or "\0" in name:
        raise ValueError(f"key name must not contain backslash or NUL: {name!r}")
    return name.encode("ascii")


def _sid(sub_authorities: Tuple[int, ...]) -> bytes:
    """Encode an NT-authority SID in its binary form."""
    return (
        struct.pack("<BB", SID_REVISION, len(sub_authorities))
        + SECURITY_NT_AUTHORITY.to_bytes(6, "big")
        + struct.pack(f"<{len(sub_authorities)}I", *sub_authorities)
    )


def _access_allowed_ace(sid: bytes) -> bytes:
    """Grant KEY_ALL_ACCESS to ``sid``, inherited by subkeys created later."""
    size = ACE_HEADER.size + len(sid)
    return (
        ACE_HEADER.pack(ACCESS_ALLOWED_ACE_TYPE, CONTAINER_INHERIT_ACE, size, KEY_ALL_ACCESS) + sid
    )


def _dacl(sids: List[bytes]) -> bytes:
    """Build an ACL that gives each SID full control of the key."""
    aces = b"".join(_access_allowed_ace(sid) for sid in sids)
    size = ACL_HEADER.size + len(aces)
    return ACL_HEADER.pack(ACL_REVISION, 0, size, len(sids), 0) + aces


def _security_descriptor() -> bytes:
    """Self-relative SD: owner Administrators, group SYSTEM, both full control.

    This mirrors what Windows puts on freshly created system hives, so the
    OS can open and later populate the keys without access errors.
    """
    owner = _sid(BUILTIN_ADMINISTRATORS)
    group = _sid(LOCAL_SYSTEM)
    dacl = _dacl([owner, group])
    owner_offset = SD_HEADER.size
    group_offset = owner_offset + len(owner)
    dacl_offset = group_offset + len(group)
    header = SD_HEADER.pack(SD_REVISION, 0, SD_CONTROL, owner_offset, group_offset, 0, dacl_offset)
    return header + owner + group + dacl


def _sk_cell(own_offset: int, descriptor: bytes) -> bytes:
    """Build the sk cell; flink/blink point at itself as it is the only one."""
    fixed = SK_FIXED.pack(
        SK_SIGNATURE, 0, own_offset, own_offset, SK_REFERENCE_COUNT, len(descriptor)
    )
    return _cell(fixed + descriptor)


def _nk_size(name: bytes) -> int:
    """Size of the root nk cell, needed to place the sk cell after it."""
    return _align(CELL_SIZE_FIELD + NK_FIXED.size + len(name))


def _nk_cell(name: bytes, security_offset: int) -> bytes:
    """Build the root key node: no subkeys, no values, no class name."""
    fixed = NK_FIXED.pack(
        NK_SIGNATURE,
        ROOT_KEY_FLAGS,
        0,  # last written timestamp
        0,  # access bits
        ROOT_PARENT_OFFSET,
        0,  # subkey count
        0,  # volatile subkey count
        NO_OFFSET,  # subkey list
        NO_OFFSET,  # volatile subkey list
        0,  # value count
        NO_OFFSET,  # value list
        security_offset,
        NO_OFFSET,  # class name
        0,  # largest subkey name length
        0,  # largest subkey class length
        0,  # largest value name length
        0,  # largest value data size
        0,  # WorkVar
        len(name),
        0,  # class name length
    )
    return _cell(fixed + name)


def _hbin(cells: bytes) -> bytes:
    """Wrap cells in the single hive bin, ending with a free cell."""
    header = HBIN_HEADER.pack(HBIN_SIGNATURE, 0, HBIN_SIZE, bytes(8), 0, 0)
    used = len(header) + len(cells)
    return header + cells + _free_cell(HBIN_SIZE - used)


def _checksum(block: bytes) -> int:
    """XOR of the first 127 dwords, remapping the two values Windows reserves."""
    value = 0
    for (dword,) in struct.iter_unpack("<I", block[: CHECKSUM_DWORDS * 4]):
        value ^= dword
    if value == 0:
        return 1
    if value == 0xFFFFFFFF:
        return 0xFFFFFFFE
    return value


def _base_block(file_name: str) -> bytes:
    """Build the 4096-byte header describing one clean, single-bin hive."""
    header = BASE_BLOCK_HEADER.pack(
        REGF_SIGNATURE,
        PRIMARY_SEQUENCE_NUMBER,
        SECONDARY_SEQUENCE_NUMBER,
        0,  # last written timestamp
        MAJOR_VERSION,
        MINOR_VERSION,
        FILE_TYPE_PRIMARY,
        FILE_FORMAT_DIRECT_MEMORY_LOAD,
        ROOT_CELL_OFFSET,
        HBIN_SIZE,
        CLUSTERING_FACTOR,
    )
    # The file name is for debugging only; it may fill all 64 bytes unterminated.
    name = file_name.encode("utf-16-le")[:FILE_NAME_SIZE].ljust(FILE_NAME_SIZE, b"\0")
    block = bytearray(BASE_BLOCK_SIZE)
    block[: len(header)] = header
    block[FILE_NAME_OFFSET : FILE_NAME_OFFSET + FILE_NAME_SIZE] = name
    struct.pack_into("<I", block, CHECKSUM_OFFSET, _checksum(bytes(block)))
    return bytes(block)


def empty_hive(root_key_name: str) -> bytes:
    """Return an 8192-byte regf hive with one empty root key; byte-for-byte deterministic."""
    name = _validate_key_name(root_key_name)
    sk_offset = ROOT_CELL_OFFSET + _nk_size(name)
    cells = _nk_cell(name, sk_offset) + _sk_cell(sk_offset, _security_descriptor())
    return _base_block(root_key_name) + _hbin(cells)
