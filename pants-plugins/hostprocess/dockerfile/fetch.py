"""Fetch `ADD --checksum=sha256:... <url>` content, refusing bytes that do not match.

Runs in the sandboxed parser PEX as a cached process: the checksum pins the output, so
serving the result from Pants' cache is as good as fetching it again.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request

CHUNK = 1 << 20
TIMEOUT_SECONDS = 60


class ChecksumMismatch(ValueError):
    pass


def fetch(url: str, sha256: str, out: str) -> None:
    """Download `url` to `out` (written only if its sha256 is `sha256`)."""
    digest = hashlib.sha256()
    partial = out + ".partial"
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, open(partial, "wb") as f:
        while True:
            chunk = response.read(CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            f.write(chunk)
    if digest.hexdigest() != sha256:
        os.unlink(partial)
        raise ChecksumMismatch(
            f"{url} has sha256:{digest.hexdigest()}, but the Dockerfile pins sha256:{sha256}"
        )
    os.replace(partial, out)
