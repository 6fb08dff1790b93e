from __future__ import annotations

import gzip
import io
import os
import re
import subprocess
import tarfile
import tracemalloc
from pathlib import Path

import pytest
import zstandard
from digests import sha256_of

from hostprocess.oci.compression import BlobDigests
from hostprocess.oci.types import Compression
from hostprocess.oci.windows.layer import LayerFile, write_layer
from oci.tar_members import member_bytes

MIB = 1024 * 1024
LONG_PATH = "tools/" + "x" * 130 + ".dll"


def _write(
    files: list[LayerFile],
    *,
    base: bool = False,
    compression: Compression = Compression.GZIP,
    threads: int = 2,
    mtime: int = 0,
) -> tuple[bytes, BlobDigests]:
    out = io.BytesIO()
    digests = write_layer(
        files, out, base=base, compression=compression, level=1, mtime=mtime, threads=threads
    )
    return out.getvalue(), digests


def _members(blob: bytes) -> tuple[list[tarfile.TarInfo], dict[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob)), mode="r:") as tar:
        members = tar.getmembers()
        contents = {m.name: member_bytes(tar, m) for m in members if m.isfile()}
    return members, contents


@pytest.fixture
def sample(tmp_path: Path) -> tuple[list[LayerFile], bytes]:
    agent = os.urandom(3 * MIB + 7)
    (tmp_path / "agent.exe").write_bytes(agent)
    files = [
        LayerFile("tools/agent.exe", tmp_path / "agent.exe"),
        LayerFile("a-b", b"dash"),
        LayerFile("a/b", b"slash"),
        LayerFile("tools/conf/agent.yaml", b"key: value\n"),
        LayerFile(LONG_PATH, b"long"),
        LayerFile("Programme/Überwachung/日本.txt", "ünïcode".encode()),
    ]
    return files, agent


def test_child_layer_entries_in_order_with_every_parent_once(
    sample: tuple[list[LayerFile], bytes],
) -> None:
    files, _ = sample
    members, _ = _members(_write(files)[0])
    assert [m.name for m in members] == [
        "Hives",
        "Files",
        "Files/Programme",
        "Files/Programme/Überwachung",
        "Files/Programme/Überwachung/日本.txt",
        "Files/a",
        "Files/a/b",
        "Files/a-b",
        "Files/tools",
        "Files/tools/agent.exe",
        "Files/tools/conf",
        "Files/tools/conf/agent.yaml",
        "Files/" + LONG_PATH,
    ]


def test_base_layer_has_files_only(sample: tuple[list[LayerFile], bytes]) -> None:
    files, _ = sample
    members, _ = _members(_write(files, base=True)[0])
    names = [m.name for m in members]
    assert names[0] == "Files"
    assert all(name == "Files" or name.startswith("Files/") for name in names)
    assert len(names) == 12


def test_entry_metadata_and_contents(sample: tuple[list[LayerFile], bytes]) -> None:
    files, agent = sample
    members, contents = _members(_write(files, mtime=1700000000)[0])
    for member in members:
        expected_attr = "16" if member.isdir() else "32"
        assert member.pax_headers["MSWINDOWS.fileattr"] == expected_attr
        assert member.isdir() or member.isfile()
        assert (member.uid, member.gid, member.mtime) == (0, 0, 1700000000)
    assert contents["Files/tools/agent.exe"] == agent
    assert contents["Files/a/b"] == b"slash"
    assert contents["Files/a-b"] == b"dash"
    assert contents["Files/" + LONG_PATH] == b"long"
    assert contents["Files/Programme/Überwachung/日本.txt"] == "ünïcode".encode()
    sizes = {m.name: m.size for m in members}
    assert sizes["Files/tools/agent.exe"] == len(agent)
    assert sizes["Files/tools"] == 0


def test_digests_match_independent_hashes(
    sample: tuple[list[LayerFile], bytes], tmp_path: Path
) -> None:
    files, _ = sample
    blob, digests = _write(files)
    path = tmp_path / "layer.tar.gz"
    path.write_bytes(blob)
    subprocess.run(["gzip", "-t", str(path)], check=True)
    tar_bytes = subprocess.run(["gzip", "-dc", str(path)], check=True, capture_output=True).stdout
    assert digests.digest == sha256_of(path.read_bytes())
    assert digests.size == path.stat().st_size
    assert digests.diff_id == sha256_of(tar_bytes)


def test_system_tar_lists_the_layer(sample: tuple[list[LayerFile], bytes], tmp_path: Path) -> None:
    files, agent = sample
    path = tmp_path / "layer.tar"
    path.write_bytes(gzip.decompress(_write(files)[0]))
    listing = subprocess.run(
        ["tar", "-tvf", str(path)], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert re.match(r"^drwxr-xr-x 0/0 +0 .* Hives$", listing[0])
    assert re.match(r"^drwxr-xr-x 0/0 +0 .* Files$", listing[1])
    assert any(
        re.match(rf"^-rw-r--r-- 0/0 +{len(agent)} .* Files/tools/agent\.exe$", line)
        for line in listing
    )
    assert listing[-1].endswith("Files/" + LONG_PATH)


@pytest.mark.parametrize("compression", [Compression.ZSTD, Compression.NONE])
def test_other_compressions_hold_the_same_tar(
    sample: tuple[list[LayerFile], bytes], compression: Compression
) -> None:
    files, _ = sample
    gzip_blob, gzip_digests = _write(files)
    blob, digests = _write(files, compression=compression)
    tar_bytes = (
        zstandard.ZstdDecompressor().decompressobj().decompress(blob)
        if compression is Compression.ZSTD
        else blob
    )
    assert tar_bytes == gzip.decompress(gzip_blob)
    assert digests.diff_id == gzip_digests.diff_id
    assert digests.digest == sha256_of(blob)


def test_output_is_deterministic_across_runs_and_threads(
    sample: tuple[list[LayerFile], bytes],
) -> None:
    files, _ = sample
    first, digests = _write(files, threads=1)
    assert _write(files, threads=1) == (first, digests)
    assert _write(files, threads=4) == (first, digests)
    assert _write(list(reversed(files)), threads=4) == (first, digests)


def test_empty_child_layer_holds_only_the_roots() -> None:
    members, _ = _members(_write([])[0])
    assert [(m.name, m.isdir()) for m in members] == [("Hives", True), ("Files", True)]


@pytest.mark.parametrize(
    "path",
    [
        "/abs/file",
        "C:/Windows/file",
        "c:file",
        "a//b",
        "a/",
        "",
        "./a",
        "a/./b",
        "a/../b",
        "..",
        "a\\b",
    ],
)
def test_structurally_invalid_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(path))):
        _write([LayerFile(path, b"")])


@pytest.mark.parametrize(
    ("paths", "offender"),
    [
        (["a", "A/b"], "'a'"),
        (["x.txt", "X.TXT"], "'x.txt'"),
        (["Tools/a", "tools/b"], "'tools'"),
        (["a", "a/b"], "'a'"),
        (["dir/f", "dir/f"], "'dir/f'"),
        (["straße", "STRASSE"], None),
    ],
)
def test_collisions_are_refused(paths: list[str], offender: str | None) -> None:
    files = [LayerFile(path, b"") for path in paths]
    if offender is None:
        # NTFS upcases per character, so these are distinct names on Windows.
        _write(files)
        return
    out = io.BytesIO()
    with pytest.raises(ValueError, match=re.escape(offender)):
        write_layer(files, out, base=False, compression=Compression.GZIP, level=1, mtime=0)
    assert out.getvalue() == b""


def test_large_files_are_streamed_not_loaded(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as stream:
        for _ in range(48):
            stream.write(os.urandom(MIB))
    tracemalloc.start()
    try:
        with (tmp_path / "layer.tar.gz").open("wb") as out:
            write_layer(
                [LayerFile("big.bin", big)],
                out,
                base=True,
                compression=Compression.GZIP,
                level=1,
                mtime=0,
                threads=2,
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * MIB
