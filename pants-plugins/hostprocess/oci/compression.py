"""Compressing, hashing sinks that turn an uncompressed layer stream into an OCI blob.

One pass over the data yields the blob, its digest and size, and the diff_id, so
multi-GB layers are never re-read to be hashed.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO, Callable, Protocol

import zstandard
from isal import isal_zlib

from hostprocess.oci.types import Compression, hasher_digest

GZIP_BLOCK_SIZE = 1 << 20
DEFLATE_WINDOW_SIZE = 32 * 1024
# MTIME 0, XFL 0 and OS 255 ("unknown") keep the header independent of host and time.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


@dataclass(frozen=True)
class BlobDigests:
    """Content digest and size of the stored blob, and digest of its uncompressed form."""

    digest: str
    size: int
    diff_id: str


class _Encoder(Protocol):
    """What `BlobSink` needs from a compressor that hands its output to `emit`."""

    def write(self, data: bytes) -> None:
        ...

    def finish(self) -> None:
        ...

    def abort(self) -> None:
        ...


class BlobSink:
    """File-like sink: hashes what it is given, compresses it and writes the blob to `out`.

    Use as a context manager so worker threads stop if writing fails midway;
    `close()` completes the blob and returns its digests.
    """

    def __init__(
        self,
        out: BinaryIO,
        compression: Compression,
        *,
        level: int | None = None,
        threads: int | None = None,
    ) -> None:
        self._out = out
        self._uncompressed = hashlib.sha256()
        self._compressed = hashlib.sha256()
        self._size = 0
        self._encoder = _make_encoder(
            compression,
            compression.default_level if level is None else level,
            _thread_count(threads),
            self._emit,
        )

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Accept uncompressed bytes; mutable buffers are copied, so callers may reuse them."""
        immutable = bytes(data)  # no copy when `data` already is `bytes`
        self._uncompressed.update(immutable)
        self._encoder.write(immutable)
        return len(immutable)

    def close(self) -> BlobDigests:
        """Flush the compressor and return the digests; does not close `out`."""
        self._encoder.finish()
        return BlobDigests(
            digest=hasher_digest(self._compressed),
            size=self._size,
            diff_id=hasher_digest(self._uncompressed),
        )

    def __enter__(self) -> BlobSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._encoder.abort()

    def _emit(self, data: bytes) -> None:
        self._compressed.update(data)
        self._size += len(data)
        self._out.write(data)


def _make_encoder(
    compression: Compression, level: int, threads: int, emit: Callable[[bytes], None]
) -> _Encoder:
    if compression is Compression.GZIP:
        return _ParallelGzipEncoder(emit, level=level, threads=threads)
    if compression is Compression.ZSTD:
        return _ZstdEncoder(emit, level=level, threads=threads)
    return _IdentityEncoder(emit)


def _thread_count(threads: int | None) -> int:
    """Default to every core: compression dominates layer build time."""
    if threads is None:
        return os.cpu_count() or 1
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    return threads


class _IdentityEncoder:
    """Uncompressed blobs: the bytes pass straight through."""

    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self._emit = emit

    def write(self, data: bytes) -> None:
        self._emit(data)

    def finish(self) -> None:
        """Nothing is buffered."""

    def abort(self) -> None:
        """Nothing to release."""


class _ZstdEncoder:
    """One zstd frame, compressed by libzstd worker threads.

    Always in multi-threaded mode (`threads` is at least 1): libzstd's streaming
    multi-threaded output is the same for any worker count, whereas zero workers
    (single-threaded mode) would produce different bytes.
    """

    def __init__(self, emit: Callable[[bytes], None], *, level: int, threads: int) -> None:
        self._emit = emit
        compressor = zstandard.ZstdCompressor(
            level=level, threads=threads, write_content_size=False
        )
        self._stream = compressor.compressobj()

    def write(self, data: bytes) -> None:
        self._emit(self._stream.compress(data))

    def finish(self) -> None:
        self._emit(self._stream.flush())

    def abort(self) -> None:
        """libzstd frees its workers when the compressor is collected."""


class _ParallelGzipEncoder:
    """A single gzip member whose deflate blocks are compressed in parallel, pigz-style.

    Input is cut into fixed-size blocks, each deflated independently but primed
    with the preceding 32 KiB as dictionary and ended with a sync flush, so the
    concatenation is one valid deflate stream whose bytes do not depend on the
    thread count. A separate writer thread emits blocks in order, keeping the
    output hashing off the caller's thread; at most `2 * threads` blocks are in
    flight, bounding memory.
    """

    def __init__(self, emit: Callable[[bytes], None], *, level: int, threads: int) -> None:
        if not 0 <= level <= 3:
            raise ValueError(f"gzip level must be 0-3 (ISA-L levels), got {level}")
        self._emit = emit
        self._level = level
        self._compressors = ThreadPoolExecutor(threads, thread_name_prefix="gzip-deflate")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="gzip-write")
        self._max_in_flight = 2 * threads
        self._in_flight: deque[Future[None]] = deque()
        self._block: list[memoryview] = []
        self._block_size = 0
        self._dictionary = b""
        self._window = b""
        self._crc = 0
        self._length = 0
        emit(_GZIP_HEADER)

    def write(self, data: bytes) -> None:
        """Slice `data` into the current block without copying it."""
        view = memoryview(data)
        while view:
            piece = view[: GZIP_BLOCK_SIZE - self._block_size]
            self._append(piece)
            view = view[len(piece) :]
            if self._block_size == GZIP_BLOCK_SIZE:
                self._submit(final=False)

    def finish(self) -> None:
        """Deflate the (possibly empty) last block, drain, and write the trailer."""
        self._submit(final=True)
        while self._in_flight:
            self._in_flight.popleft().result()
        self._compressors.shutdown()
        self._writer.shutdown()
        self._emit(struct.pack("<II", self._crc, self._length & 0xFFFFFFFF))

    def abort(self) -> None:
        """Drop queued blocks and stop the threads without writing a trailer."""
        self._in_flight.clear()
        self._writer.shutdown(cancel_futures=True)
        self._compressors.shutdown(cancel_futures=True)

    def _append(self, piece: memoryview) -> None:
        """Add to the current block; CRC and window are tracked here, in stream order."""
        self._block.append(piece)
        self._block_size += len(piece)
        self._crc = isal_zlib.crc32(piece, self._crc)
        self._length += len(piece)
        self._window = (self._window + piece[-DEFLATE_WINDOW_SIZE:])[-DEFLATE_WINDOW_SIZE:]

    def _submit(self, *, final: bool) -> None:
        compressed = self._compressors.submit(
            _deflate_block, self._block, self._dictionary, self._level, final
        )
        self._in_flight.append(self._writer.submit(_emit_result, self._emit, compressed))
        self._block = []
        self._block_size = 0
        self._dictionary = self._window
        if len(self._in_flight) > self._max_in_flight:
            self._in_flight.popleft().result()


def _deflate_block(
    pieces: list[memoryview], dictionary: bytes, level: int, final: bool
) -> tuple[bytes, bytes]:
    """Raw deflate of one block; the sync flush byte-aligns it for concatenation.

    The two parts are returned separately to spare a megabyte-sized copy.
    """
    compressor = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15, zdict=dictionary)
    flush_mode = isal_zlib.Z_FINISH if final else isal_zlib.Z_SYNC_FLUSH
    return compressor.compress(b"".join(pieces)), compressor.flush(flush_mode)


def _emit_result(emit: Callable[[bytes], None], compressed: Future[tuple[bytes, bytes]]) -> None:
    for part in compressed.result():
        emit(part)
