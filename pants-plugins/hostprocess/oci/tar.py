"""A streaming POSIX (pax) tar writer with byte-for-byte reproducible output.

Written by hand rather than with `tarfile`, whose output has changed between
Python versions; image layer digests must not depend on the build machine.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, Callable, Optional, Protocol

BLOCK_SIZE = 512
READ_CHUNK_SIZE = 1 << 20
NAME_FIELD_SIZE = 100
MAX_OCTAL_SIZE = 8**11 - 1
DIRECTORY_MODE = 0o755
FILE_MODE = 0o644
TYPE_FILE = b"0"
TYPE_DIRECTORY = b"5"
TYPE_PAX = b"x"
_RESERVED_KEYS = frozenset({"path", "size"})


class ByteSink(Protocol):
    """Where the archive goes: anything with a binary `write`."""

    def write(self, data: bytes) -> object:
        ...


# Called with each chunk of a file's data as it is written (e.g. to hash the file).
DataObserver = Optional[Callable[[bytes], object]]


class FileChangedError(OSError):
    """A streamed file grew or shrank while it was being archived."""


def pax_record(key: str, value: str) -> bytes:
    """Encode one `"<len> key=value\\n"` record, `len` counting its own digits."""
    body = f" {key}={value}\n".encode("utf-8")
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode("ascii") + body


def entry_pax_records(name: str, size: int, extra: Mapping[str, str]) -> dict[str, str]:
    """The records an entry needs: the caller's plus what ustar cannot express."""
    _check_record_keys(extra)
    records = dict(extra)
    if not _fits_ustar_name(name):
        records["path"] = name
    if size > MAX_OCTAL_SIZE:
        records["size"] = str(size)
    return records


def entry_headers(
    name: str, typeflag: bytes, size: int, mtime: int, extra: Mapping[str, str]
) -> bytes:
    """The pax extended header plus the ustar header that precede an entry's data."""
    _check_name(name)
    payload = _encode_pax_records(entry_pax_records(name, size, extra))
    mode = DIRECTORY_MODE if typeflag == TYPE_DIRECTORY else FILE_MODE
    pax_header = _ustar_header(_pax_header_name(name), TYPE_PAX, FILE_MODE, len(payload), 0)
    header = _ustar_header(name, typeflag, mode, size, mtime)
    return pax_header + payload + _padding(len(payload)) + header


class TarWriter:
    """Writes entries to a sink one at a time; file data is streamed, never held whole."""

    def __init__(self, sink: ByteSink) -> None:
        self._sink = sink
        self._closed = False

    def add_directory(self, name: str, *, mtime: int, pax_records: Mapping[str, str]) -> None:
        """Add a directory entry (`name` has no trailing slash)."""
        self._write(entry_headers(name, TYPE_DIRECTORY, 0, mtime, pax_records))

    def add_bytes(
        self,
        name: str,
        data: bytes,
        *,
        mtime: int,
        pax_records: Mapping[str, str],
        observe: DataObserver = None,
    ) -> None:
        """Add a regular file whose (small) content is already in memory."""
        self._write(entry_headers(name, TYPE_FILE, len(data), mtime, pax_records))
        if observe:
            observe(data)
        self._write(data)
        self._write(_padding(len(data)))

    def add_file(
        self,
        name: str,
        source: Path,
        *,
        mtime: int,
        pax_records: Mapping[str, str],
        observe: DataObserver = None,
    ) -> None:
        """Add a regular file streamed from disk in bounded chunks."""
        # O_NONBLOCK so that a FIFO is refused below instead of blocking the open.
        with open(os.open(source, os.O_RDONLY | os.O_NONBLOCK), "rb") as stream:
            size = _regular_file_size(stream, source)
            self._write(entry_headers(name, TYPE_FILE, size, mtime, pax_records))
            self._copy_exactly(stream, size, source, observe)
        self._write(_padding(size))

    def close(self) -> None:
        """Write the end-of-archive marker; the sink itself stays open."""
        self._write(bytes(2 * BLOCK_SIZE))
        self._closed = True

    def _copy_exactly(
        self, stream: BinaryIO, size: int, source: Path, observe: DataObserver
    ) -> None:
        """Copy `size` bytes, failing if the file turns out shorter or longer."""
        remaining = size
        while remaining:
            chunk = stream.read(min(READ_CHUNK_SIZE, remaining))
            if not chunk:
                raise FileChangedError(f"{source} shrank while being archived")
            if observe:
                observe(chunk)
            self._write(chunk)
            remaining -= len(chunk)
        if stream.read(1):
            raise FileChangedError(f"{source} grew while being archived")

    def _write(self, data: bytes) -> None:
        if self._closed:
            raise ValueError("TarWriter is closed")
        self._sink.write(data)


def _encode_pax_records(records: Mapping[str, str]) -> bytes:
    """Concatenate records sorted by key, so the output never depends on dict order."""
    return b"".join(pax_record(key, records[key]) for key in sorted(records))


def _ustar_header(name: str, typeflag: bytes, mode: int, size: int, mtime: int) -> bytes:
    """One 512-byte ustar header; fields ustar cannot hold are left to pax records."""
    fields = [
        _ustar_name(name),
        _octal(mode, 8),
        _octal(0, 8),  # uid
        _octal(0, 8),  # gid
        _octal(size if size <= MAX_OCTAL_SIZE else 0, 12),
        _octal(mtime, 12),
        b" " * 8,  # checksum placeholder
        typeflag,
        bytes(100),  # linkname
        b"ustar\0",
        b"00",
        bytes(32),  # uname
        bytes(32),  # gname
        _octal(0, 8),  # devmajor
        _octal(0, 8),  # devminor
        bytes(155),  # prefix
    ]
    header = b"".join(fields).ljust(BLOCK_SIZE, b"\0")
    checksum = b"%06o\0 " % sum(header)
    return header[:148] + checksum + header[156:]


def _regular_file_size(stream: BinaryIO, source: Path) -> int:
    """Size from the open file; FIFOs and devices could block or never end."""
    status = os.fstat(stream.fileno())
    if not stat.S_ISREG(status.st_mode):
        raise ValueError(f"{source} is not a regular file")
    return status.st_size


def _check_name(name: str) -> None:
    """Reject names no reader would extract as a plain relative path."""
    if not name or name.startswith("/") or name.endswith("/") or "\0" in name:
        raise ValueError(f"invalid tar entry name: {name!r}")


def _check_record_keys(records: Mapping[str, str]) -> None:
    """Keys the writer owns or that would corrupt the record syntax are refused."""
    for key, value in records.items():
        if key in _RESERVED_KEYS or not key or any(c in key for c in "=\n\0"):
            raise ValueError(f"invalid pax record key: {key!r}")
        if "\0" in value:
            raise ValueError(f"pax record {key!r} contains NUL")


def _fits_ustar_name(name: str) -> bool:
    return name.isascii() and len(name) <= NAME_FIELD_SIZE


def _ustar_name(name: str) -> bytes:
    """ASCII stand-in for the name; readers take the real one from the `path` record."""
    return name.encode("ascii", "replace")[:NAME_FIELD_SIZE].ljust(NAME_FIELD_SIZE, b"\0")


def _pax_header_name(name: str) -> str:
    """Conventional `PaxHeaders/<basename>`; `_ustar_name` truncates it to fit."""
    return "PaxHeaders/" + name.rsplit("/", 1)[-1]


def _octal(value: int, width: int) -> bytes:
    """Zero-padded octal digits plus a NUL, filling a field of `width` bytes."""
    if not 0 <= value < 8 ** (width - 1):
        raise ValueError(f"{value} does not fit a {width}-byte octal field")
    return b"%0*o\0" % (width - 1, value)


def _padding(size: int) -> bytes:
    return bytes(-size % BLOCK_SIZE)
