from __future__ import annotations

import dataclasses
import gzip
import io
import random
import re
import subprocess
import threading
import zlib
from pathlib import Path

import pytest
import zstandard
from digests import sha256_of

from hostprocess.oci.compression import GZIP_BLOCK_SIZE, BlobDigests, BlobSink
from hostprocess.oci.types import Compression

MIB = 1024 * 1024
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def _mixed_data(size: int, seed: int = 0) -> bytes:
    """Half random bytes, half compressible text, not a multiple of the block size."""
    rng = random.Random(seed)
    words = [bytes(rng.choices(b"abcdefghij", k=rng.randint(2, 9))) for _ in range(300)]
    lines = [b" ".join(rng.choices(words, k=8)) + b"\n" for _ in range(2000)]
    text = b"".join(rng.choices(lines, k=size // 80 + 1))[: size - size // 2]
    return rng.randbytes(size // 2) + text


DATA = _mixed_data(3 * MIB + 4321)


def _compress(
    data: bytes,
    compression: Compression,
    *,
    level: int | None = None,
    threads: int = 2,
    chunk: int = 100_000,
) -> tuple[bytes, BlobDigests]:
    out = io.BytesIO()
    with BlobSink(out, compression, level=level, threads=threads) as sink:
        for start in range(0, len(data), chunk):
            sink.write(data[start : start + chunk])
        digests = sink.close()
    return out.getvalue(), digests


@pytest.mark.parametrize("compression", list(Compression))
def test_digests_describe_blob_and_uncompressed_stream(compression: Compression) -> None:
    blob, digests = _compress(DATA, compression)
    assert DIGEST.match(digests.digest) and DIGEST.match(digests.diff_id)
    assert digests.digest == sha256_of(blob)
    assert digests.size == len(blob)
    assert digests.diff_id == sha256_of(DATA)


@pytest.mark.parametrize(
    "name, decompress",
    [("gzip", ["gzip", "-dc"]), ("zstd", ["zstd", "-dc"]), ("none", ["cat"])],
)
def test_each_compression_name_gives_the_format_it_names(
    tmp_path: Path, name: str, decompress: list[str]
) -> None:
    """The names users write (`compression = "zstd"`) give what the named tool reads back."""
    blob, _ = _compress(DATA, Compression(name))
    path = tmp_path / "blob"
    path.write_bytes(blob)
    result = subprocess.run([*decompress, str(path)], check=True, capture_output=True)
    assert result.stdout == DATA


@pytest.mark.parametrize(
    "compression, documented, other", [(Compression.GZIP, 1, 0), (Compression.ZSTD, 3, 1)]
)
def test_default_level_is_the_documented_one(
    compression: Compression, documented: int, other: int
) -> None:
    """The `[hostprocess].compression_level` help names these defaults."""
    default, _ = _compress(DATA, compression)
    assert default == _compress(DATA, compression, level=documented)[0]
    assert default != _compress(DATA, compression, level=other)[0]


def test_blob_digests_is_frozen() -> None:
    digests = BlobDigests(digest="sha256:" + "0" * 64, size=1, diff_id="sha256:" + "1" * 64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        digests.size = 2  # type: ignore[misc]


def test_uncompressed_blob_is_the_input() -> None:
    blob, digests = _compress(DATA, Compression.NONE)
    assert blob == DATA
    assert digests.digest == digests.diff_id


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_gzip_is_one_standard_member(level: int) -> None:
    blob, _ = _compress(DATA, Compression.GZIP, level=level)
    assert blob[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = zlib.crc32(DATA).to_bytes(4, "little") + len(DATA).to_bytes(4, "little")
    assert blob[-8:] == trailer
    member = zlib.decompressobj(wbits=31)
    assert member.decompress(blob) == DATA
    assert member.eof and member.unused_data == b""
    assert gzip.decompress(blob) == DATA


def test_system_gzip_accepts_the_blob(tmp_path: Path) -> None:
    blob, _ = _compress(DATA, Compression.GZIP)
    path = tmp_path / "blob.gz"
    path.write_bytes(blob)
    subprocess.run(["gzip", "-t", str(path)], check=True)
    assert (
        subprocess.run(["gzip", "-dc", str(path)], check=True, capture_output=True).stdout == DATA
    )


def test_gzip_of_empty_input_is_valid() -> None:
    blob, digests = _compress(b"", Compression.GZIP)
    assert gzip.decompress(blob) == b""
    assert digests.diff_id == sha256_of(b"")


def test_gzip_bytes_do_not_depend_on_threads_or_write_sizes() -> None:
    reference, _ = _compress(DATA, Compression.GZIP, threads=1, chunk=len(DATA))
    assert _compress(DATA, Compression.GZIP, threads=4, chunk=512)[0] == reference
    assert _compress(DATA, Compression.GZIP, threads=2, chunk=GZIP_BLOCK_SIZE + 1)[0] == reference


def test_gzip_blocks_see_the_previous_window() -> None:
    """Data repeated across a block boundary must compress as a back-reference."""
    repeated = random.Random(1).randbytes(20_000)
    data = bytes(GZIP_BLOCK_SIZE - len(repeated)) + repeated + repeated
    blob, _ = _compress(data, Compression.GZIP)
    assert gzip.decompress(blob) == data
    assert len(blob) < 25_000


def test_gzip_streams_with_bounded_buffering() -> None:
    threads = 2
    data = random.Random(2).randbytes(20 * MIB)
    out = io.BytesIO()
    with BlobSink(out, Compression.GZIP, level=1, threads=threads) as sink:
        sink.write(data)
        written_before_close = len(out.getvalue())
        sink.close()
    # At most 2 * threads blocks are still in flight; random data barely shrinks.
    assert written_before_close >= (20 - 2 * threads - 1) * MIB


def test_gzip_rejects_levels_outside_isal_range() -> None:
    with pytest.raises(ValueError, match="0-3"):
        BlobSink(io.BytesIO(), Compression.GZIP, level=4)


def test_threads_must_be_positive() -> None:
    with pytest.raises(ValueError, match="threads"):
        BlobSink(io.BytesIO(), Compression.GZIP, threads=0)


def test_failure_inside_the_sink_stops_its_threads() -> None:
    with pytest.raises(RuntimeError), BlobSink(io.BytesIO(), Compression.GZIP, threads=3) as sink:
        sink.write(DATA)
        raise RuntimeError("tar failed")
    assert not [t for t in threading.enumerate() if t.name.startswith("gzip")]


def test_zstd_is_one_frame_readable_by_zstandard_and_cli(tmp_path: Path) -> None:
    blob, _ = _compress(DATA, Compression.ZSTD)
    frame = zstandard.ZstdDecompressor().decompressobj()
    assert frame.decompress(blob) == DATA
    assert frame.eof and frame.unused_data == b""
    path = tmp_path / "blob.zst"
    path.write_bytes(blob)
    decompressed = subprocess.run(["zstd", "-dc", str(path)], check=True, capture_output=True)
    assert decompressed.stdout == DATA


def test_zstd_bytes_do_not_depend_on_threads() -> None:
    # Large enough for libzstd to split the frame into several parallel jobs.
    data = _mixed_data(24 * MIB + 17, seed=3)
    reference, _ = _compress(data, Compression.ZSTD, threads=1, chunk=MIB)
    assert _compress(data, Compression.ZSTD, threads=4, chunk=300_000)[0] == reference
    assert _compress(data, Compression.ZSTD, threads=1, chunk=MIB)[0] == reference


def test_zstd_level_changes_output() -> None:
    fast, _ = _compress(DATA, Compression.ZSTD, level=1)
    strong, _ = _compress(DATA, Compression.ZSTD, level=12)
    assert fast != strong
    assert zstandard.ZstdDecompressor().decompressobj().decompress(strong) == DATA


def test_sink_copies_mutable_buffers() -> None:
    buffer = bytearray(DATA[: GZIP_BLOCK_SIZE // 2])
    out = io.BytesIO()
    with BlobSink(out, Compression.GZIP, threads=2) as sink:
        sink.write(buffer)
        buffer[:] = bytes(len(buffer))
        digests = sink.close()
    assert gzip.decompress(out.getvalue()) == DATA[: GZIP_BLOCK_SIZE // 2]
    assert digests.diff_id == sha256_of(DATA[: GZIP_BLOCK_SIZE // 2])
