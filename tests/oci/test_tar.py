from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from hostprocess.oci.tar import (
    TYPE_FILE,
    FileChangedError,
    TarWriter,
    entry_headers,
    entry_pax_records,
    pax_record,
)
from oci.tar_members import member_bytes

EIGHT_GIB = 8 * 1024**3
ATTR = {"MSWINDOWS.fileattr": "32"}
LONG_NAME = "deep/" + "d" * 120 + "/" + "f" * 90 + ".txt"
UNICODE_NAME = "données/über/файл.txt"
# Pinned so that a change in the byte format (or in Python) cannot slip by unnoticed.
GOLDEN_SHA256 = "1b8f040b073cb9ba69ae055b572e1df3ab843da2f14405def5b4dfc5d74b73b8"


def _write_sample(tmp_path: Path) -> tuple[bytes, bytes]:
    """A small archive covering every entry kind; returns (archive, streamed file content)."""
    streamed = os.urandom(3 * 1024 * 1024 + 123)
    source = tmp_path / "big.bin"
    source.write_bytes(streamed)
    out = io.BytesIO()
    writer = TarWriter(out)
    writer.add_directory("dir", mtime=1234, pax_records={"MSWINDOWS.fileattr": "16"})
    writer.add_bytes("dir/small.txt", b"hello\n", mtime=1234, pax_records=ATTR)
    writer.add_file("dir/big.bin", source, mtime=1234, pax_records=ATTR)
    writer.add_bytes(LONG_NAME, b"long", mtime=1234, pax_records=ATTR)
    writer.add_bytes(UNICODE_NAME, b"unicode", mtime=1234, pax_records=ATTR)
    writer.add_bytes("empty", b"", mtime=1234, pax_records={})
    writer.close()
    return out.getvalue(), streamed


def test_entries_round_trip_through_tarfile(tmp_path: Path) -> None:
    archive, streamed = _write_sample(tmp_path)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        members = tar.getmembers()
        contents = {m.name: member_bytes(tar, m) for m in members if m.isfile()}
    assert [m.name for m in members] == [
        "dir",
        "dir/small.txt",
        "dir/big.bin",
        LONG_NAME,
        UNICODE_NAME,
        "empty",
    ]
    assert members[0].isdir() and members[0].mode == 0o755
    assert all(m.isfile() and m.mode == 0o644 for m in members[1:])
    assert all((m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", 1234) for m in members)
    assert members[0].pax_headers["MSWINDOWS.fileattr"] == "16"
    assert members[2].pax_headers["MSWINDOWS.fileattr"] == "32"
    assert members[2].size == len(streamed)
    assert contents["dir/small.txt"] == b"hello\n"
    assert contents["dir/big.bin"] == streamed
    assert contents[LONG_NAME] == b"long"
    assert contents[UNICODE_NAME] == b"unicode"
    assert contents["empty"] == b""
    assert members[3].pax_headers["path"] == LONG_NAME
    assert "path" not in members[1].pax_headers


def test_raw_layout_pax_then_ustar_with_valid_checksums(tmp_path: Path) -> None:
    archive, _ = _write_sample(tmp_path)
    pax_block = archive[:512]
    payload_blocks = -(-int(pax_block[124:135], 8) // 512)
    header = archive[512 * (1 + payload_blocks) : 512 * (2 + payload_blocks)]
    assert pax_block[156:157] == b"x"
    assert pax_block[:100].rstrip(b"\0") == b"PaxHeaders/dir"
    assert int(pax_block[136:147], 8) == 0
    assert archive[512 : 512 + 25] == b"25 MSWINDOWS.fileattr=16\n"
    for block in (pax_block, header):
        assert block[257:263] == b"ustar\0" and block[263:265] == b"00"
        expected = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
        assert block[148:156] == b"%06o\0 " % expected
    assert header[:100].rstrip(b"\0") == b"dir"
    assert header[156:157] == b"5"


def test_archive_ends_with_exactly_two_zero_blocks(tmp_path: Path) -> None:
    out = io.BytesIO()
    writer = TarWriter(out)
    writer.add_bytes("a", b"x" * 700, mtime=0, pax_records=ATTR)
    writer.close()
    data = out.getvalue()
    # pax header + payload block, ustar header, two data blocks, two end blocks.
    assert len(data) == 512 * 7
    assert data[-1024:] == bytes(1024)
    assert data[-1536:-1024] != bytes(512)


def test_system_tar_lists_entries(tmp_path: Path) -> None:
    archive, streamed = _write_sample(tmp_path)
    path = tmp_path / "sample.tar"
    path.write_bytes(archive)
    listing = subprocess.run(
        ["tar", "-tvf", str(path)], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert len(listing) == 6
    assert listing[0].startswith("drwxr-xr-x") and listing[0].endswith(" dir")
    assert listing[2].startswith("-rw-r--r--") and f" {len(streamed)} " in listing[2]
    assert listing[3].endswith(LONG_NAME)
    assert listing[4].endswith(UNICODE_NAME)


def test_pax_record_length_counts_its_own_digits() -> None:
    for value_length in range(0, 120):
        record = pax_record("k", "v" * value_length)
        length, rest = record.split(b" ", 1)
        assert int(length) == len(record)
        assert rest == b"k=" + b"v" * value_length + b"\n"
    assert pax_record("path", "é") == b"11 path=\xc3\xa9\n"


def test_size_record_only_from_8_gib() -> None:
    assert "size" not in entry_pax_records("f", EIGHT_GIB - 1, {})
    assert entry_pax_records("f", EIGHT_GIB, {})["size"] == str(EIGHT_GIB)


def test_path_record_only_when_ustar_name_cannot_hold_it() -> None:
    assert "path" not in entry_pax_records("a" * 100, 0, {})
    assert entry_pax_records("a" * 101, 0, {})["path"] == "a" * 101
    assert entry_pax_records("é", 0, {})["path"] == "é"


def test_huge_size_header_is_read_by_tarfile() -> None:
    headers = entry_headers("huge.bin", TYPE_FILE, EIGHT_GIB + 5, 7, ATTR)
    with tarfile.open(fileobj=io.BytesIO(headers), mode="r:") as tar:
        member = tar.next()
    assert member is not None
    assert (member.name, member.size, member.mtime) == ("huge.bin", EIGHT_GIB + 5, 7)
    assert member.pax_headers["size"] == str(EIGHT_GIB + 5)


def test_records_are_sorted_by_key() -> None:
    headers = entry_headers("é", TYPE_FILE, 0, 0, {"zeta": "1", "MSWINDOWS.fileattr": "32"})
    payload = headers[512:1024].rstrip(b"\0")
    assert payload == b"25 MSWINDOWS.fileattr=32\n" + b"11 path=\xc3\xa9\n" + b"9 zeta=1\n"


def test_output_is_deterministic_and_stable(tmp_path: Path) -> None:
    def build() -> bytes:
        out = io.BytesIO()
        writer = TarWriter(out)
        writer.add_directory("d", mtime=1700000000, pax_records={"MSWINDOWS.fileattr": "16"})
        writer.add_bytes("d/" + "n" * 150, b"payload", mtime=1700000000, pax_records=ATTR)
        writer.add_bytes("d/ü", b"", mtime=1700000000, pax_records=ATTR)
        writer.close()
        return out.getvalue()

    first = build()
    assert first == build()
    assert hashlib.sha256(first).hexdigest() == GOLDEN_SHA256


def test_file_that_grows_while_read_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "growing"
    source.write_bytes(b"x" * 1000)

    class GrowingSink(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            with source.open("ab") as stream:
                stream.write(b"more")
            return super().write(data)

    with pytest.raises(FileChangedError, match="grew"):
        TarWriter(GrowingSink()).add_file("g", source, mtime=0, pax_records={})


def test_file_that_shrinks_while_read_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "shrinking"
    source.write_bytes(b"x" * 1000)

    class ShrinkingSink(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            source.write_bytes(b"x" * 10)
            return super().write(data)

    with pytest.raises(FileChangedError, match="shrank"):
        TarWriter(ShrinkingSink()).add_file("s", source, mtime=0, pax_records={})


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        TarWriter(io.BytesIO()).add_file("f", fifo, mtime=0, pax_records={})


@pytest.mark.parametrize("name", ["", "/abs", "dir/", "nul\0byte"])
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        TarWriter(io.BytesIO()).add_bytes(name, b"", mtime=0, pax_records={})


@pytest.mark.parametrize("key", ["path", "size", "a=b", "", "new\nline"])
def test_reserved_or_malformed_record_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError):
        TarWriter(io.BytesIO()).add_bytes("f", b"", mtime=0, pax_records={key: "v"})


def test_mtime_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError):
        TarWriter(io.BytesIO()).add_bytes("f", b"", mtime=8**11, pax_records={})


def test_writer_refuses_entries_after_close() -> None:
    writer = TarWriter(io.BytesIO())
    writer.close()
    with pytest.raises(ValueError):
        writer.add_directory("d", mtime=0, pax_records={})
