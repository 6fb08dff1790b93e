"""Expected digests, computed with `hashlib` alone: a test never checks the plugin's digests
against the plugin's own `hostprocess.oci.types`."""
from __future__ import annotations

import hashlib


def sha256_of(data: bytes) -> str:
    """The OCI digest of `data`: `sha256:` and the hex of its SHA-256."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
