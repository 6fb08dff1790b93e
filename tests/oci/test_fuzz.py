"""Fuzz tests of the two byte-format writers, read back by independent parsers.

The hive writer gets random root key names: the ones it accepts must parse with hivex's
`hivexml` and with regipy under exactly that name, the others must raise ValueError. The
tar writer gets random entries (long and non-ASCII names, sizes around the 512-byte block,
random pax records) that Python's `tarfile` must read back exactly. Missing tools fail,
never skip.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from regipy.registry import RegistryHive

from hostprocess.oci.tar import MAX_OCTAL_SIZE, TarWriter
from hostprocess.oci.windows.hive import empty_hive
from oci.tar_members import member_bytes
from system_tools import system_tool

# No example database; deadlines that a loaded two-core machine cannot miss.
FUZZ = settings(
    max_examples=200,
    deadline=timedelta(seconds=10),
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
PARSERS = settings(FUZZ, max_examples=100)

# --- Hive root key names ----------------------------------------------------------------

# Every ASCII character a key name may hold: all but NUL and the backslash separator.
KEY_CHARACTERS = [chr(code) for code in range(1, 128) if chr(code) != "\\"]
# XML 1.0 cannot hold these, yet hivexml writes them raw; they are mapped to private-use
# characters so that ElementTree can parse its output, and mapped back afterwards.
XML_ILLEGAL = {code: 0xE000 + code for code in range(32) if chr(code) not in "\t\n\r"}
XML_RESTORE = {private: code for code, private in XML_ILLEGAL.items()}

valid_key_names = st.one_of(
    st.text(st.sampled_from(KEY_CHARACTERS), min_size=1, max_size=255),
    st.sampled_from(["$$$PROTO.HIV", "x" * 255, "<&>\"'", "a\tb\nc\rd"]),
)
invalid_key_names = st.one_of(
    st.just(""),
    st.integers(256, 600).map(lambda length: "k" * length),
    st.tuples(
        st.text(st.sampled_from(KEY_CHARACTERS), max_size=20),
        st.sampled_from(["\\", "\0", "\u00e9", "\u65e5", "\U0001f600", "\x80", "\udc80"]),
        st.text(st.sampled_from(KEY_CHARACTERS), max_size=20),
    ).map("".join),
)


def _hivexml_root_name(hive: Path) -> Optional[str]:
    result = subprocess.run([system_tool("hivexml"), str(hive)], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr
    document = ET.fromstring(result.stdout.decode("utf-8").translate(XML_ILLEGAL))
    nodes = document.findall("node")
    assert len(nodes) == 1 and nodes[0].get("root") == "1"
    assert nodes[0].findall("node") == [] and nodes[0].findall("value") == []
    name = nodes[0].get("name")
    return None if name is None else name.translate(XML_RESTORE)


@PARSERS
@given(valid_key_names)
def test_accepted_root_names_parse_back(name: str) -> None:
    data = empty_hive(name)
    assert len(data) == 8192
    with tempfile.TemporaryDirectory() as directory:
        hive = Path(directory, "hive")
        hive.write_bytes(data)
        assert _hivexml_root_name(hive) == name
        root = RegistryHive(str(hive)).root
        assert (root.name, root.subkey_count, root.values_count) == (name, 0, 0)


@FUZZ
@given(invalid_key_names)
def test_refused_root_names_raise_value_error(name: str) -> None:
    with pytest.raises(ValueError):
        empty_hive(name)


# --- Tar entries -----------------------------------------------------------------------

NAME_CHARACTERS = list("abcXYZ019-_. ~") + ["\u00e9", "\u00df", "\u65e5", "\U0001f600", "\n"]
BLOCK_SIZES = [0, 1, 511, 512, 513, 1023, 1024, 1025, 4095, 4096, 4097]
KEY_CHARACTERS_PAX = list("abcXYZ019._- ") + ["\u00e9", "\u65e5"]
VALUE_CHARACTERS = list("abc019=. :/\\\n\t") + ["\u00e9", "\u65e5", "\U0001f600"]

component = st.text(st.sampled_from(NAME_CHARACTERS), min_size=1, max_size=12)
entry_names = st.one_of(
    st.lists(component, min_size=1, max_size=6).map("/".join),
    # Around the 100-byte ustar name field, and far beyond it.
    st.sampled_from([99, 100, 101, 255, 256, 1000]).map(lambda length: "n" * length),
    st.tuples(st.sampled_from([98, 99, 100]), st.sampled_from(["\u00e9", "x"])).map(
        lambda pair: "d/" * (pair[0] // 2) + pair[1]
    ),
)
record_keys = st.one_of(
    st.sampled_from(["MSWINDOWS.fileattr", "LIBARCHIVE.creationtime", "MSWINDOWS.rawsd"]),
    st.text(st.sampled_from(KEY_CHARACTERS_PAX), min_size=1, max_size=20).map("X.".__add__),
)
# Value lengths around the points where a record's length field gains a digit.
record_values = st.one_of(
    st.text(st.sampled_from(VALUE_CHARACTERS), max_size=40),
    st.one_of(st.integers(80, 100), st.integers(980, 1000)).map(lambda length: "v" * length),
)
records = st.dictionaries(record_keys, record_values, max_size=4)


@dataclass(frozen=True)
class Entry:
    name: str
    directory: bool
    data: bytes
    mtime: int
    records: Dict[str, str]
    on_disk: bool


entries = st.builds(
    Entry,
    name=entry_names,
    directory=st.booleans(),
    data=st.one_of(
        st.binary(max_size=3000),
        st.sampled_from(BLOCK_SIZES).flatmap(lambda size: st.binary(min_size=size, max_size=size)),
    ),
    mtime=st.one_of(st.integers(0, MAX_OCTAL_SIZE), st.sampled_from([0, MAX_OCTAL_SIZE])),
    records=records,
    on_disk=st.booleans(),
)


def _write_archive(items: List[Entry], directory: Path) -> bytes:
    out = io.BytesIO()
    writer = TarWriter(out)
    for index, entry in enumerate(items):
        if entry.directory:
            writer.add_directory(entry.name, mtime=entry.mtime, pax_records=entry.records)
        elif entry.on_disk:
            source = directory / f"source{index}"
            source.write_bytes(entry.data)
            writer.add_file(entry.name, source, mtime=entry.mtime, pax_records=entry.records)
        else:
            writer.add_bytes(entry.name, entry.data, mtime=entry.mtime, pax_records=entry.records)
    writer.close()
    return out.getvalue()


@FUZZ
@given(st.lists(entries, max_size=6))
def test_tarfile_reads_back_every_entry(items: List[Entry]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        archive = _write_archive(items, Path(directory))
    assert len(archive) % 512 == 0
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        members = tar.getmembers()
        contents = [member_bytes(tar, member) if member.isfile() else None for member in members]
    assert len(members) == len(items)
    for entry, member, content in zip(items, members, contents):
        assert member.name == entry.name
        assert member.isdir() == entry.directory and member.isfile() != entry.directory
        assert (member.mtime, member.uid, member.gid) == (entry.mtime, 0, 0)
        assert member.mode == (0o755 if entry.directory else 0o644)
        own_records = {k: v for k, v in member.pax_headers.items() if k not in ("path", "size")}
        assert own_records == entry.records
        if not entry.directory:
            assert (member.size, content) == (len(entry.data), entry.data)


@FUZZ
@given(
    st.one_of(st.sampled_from(["", "/abs", "dir/", "a\0b"]), entry_names),
    st.one_of(
        st.dictionaries(
            st.sampled_from(["path", "size", "", "a=b", "a\nb", "a\0b"]), st.just("v"), min_size=1
        ),
        st.dictionaries(record_keys, st.just("nul\0inside"), min_size=1),
        records,
    ),
)
def test_invalid_names_and_records_are_refused(name: str, pax_records: Dict[str, str]) -> None:
    """Either the entry is written whole, or ValueError is raised before any byte."""
    invalid_name = name in ("", "/abs", "dir/", "a\0b")
    invalid_records = any(
        key in ("path", "size", "") or any(c in key for c in "=\n\0") or "\0" in value
        for key, value in pax_records.items()
    )
    out = io.BytesIO()
    writer = TarWriter(out)
    if invalid_name or invalid_records:
        with pytest.raises(ValueError):
            writer.add_bytes(name, b"data", mtime=0, pax_records=pax_records)
        assert out.getvalue() == b""
    else:
        writer.add_bytes(name, b"data", mtime=0, pax_records=pax_records)
        writer.close()
        with tarfile.open(fileobj=io.BytesIO(out.getvalue()), mode="r:") as tar:
            [member] = tar.getmembers()
            assert (member.name, member_bytes(tar, member)) == (name, b"data")
