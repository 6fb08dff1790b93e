"""Tests for the shared OCI vocabulary, against independent sources only: the SHA-256 test
vectors of FIPS 180-2, and the multi-image media types of the OCI image spec
(`image-index.md`) and Docker's image manifest v2 schema 2. The media types of the manifests
we write are checked, as written out by the specs, in test_image.py.
"""
from __future__ import annotations

import hashlib

import pytest

from hostprocess.oci.types import INDEX_MEDIA_TYPES, hasher_digest, sha256_digest, validate_digest

# FIPS 180-2, appendix B.1 and B.2.
ABC = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
TWO_BLOCKS = "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
TWO_BLOCK_MESSAGE = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"


def test_digest_of_bytes_matches_fips_vectors() -> None:
    assert sha256_digest(b"abc") == ABC
    assert sha256_digest(TWO_BLOCK_MESSAGE) == TWO_BLOCKS


def test_digest_of_streamed_hasher_matches_fips_vector() -> None:
    hasher = hashlib.sha256()
    for start in range(0, len(TWO_BLOCK_MESSAGE), 7):
        hasher.update(TWO_BLOCK_MESSAGE[start : start + 7])
    assert hasher_digest(hasher) == TWO_BLOCKS


def test_valid_digest_is_accepted() -> None:
    validate_digest(ABC)


@pytest.mark.parametrize(
    "digest",
    [
        ABC.upper(),
        ABC[:-1],
        ABC + "0",
        "sha512:" + "ab" * 64,
        "sha256:../../../etc/passwd",
        ABC.split(":")[1],
    ],
)
def test_invalid_digest_is_refused(digest: str) -> None:
    with pytest.raises(ValueError, match="must be 'sha256:' and 64 lowercase hex digits"):
        validate_digest(digest)


def test_index_media_types_are_the_specs_multi_image_types() -> None:
    assert sorted(INDEX_MEDIA_TYPES) == [
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ]
