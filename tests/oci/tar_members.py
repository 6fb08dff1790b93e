"""Reading back the tars the core writes, with Python's own tarfile."""
from __future__ import annotations

import tarfile


def member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    """The content of a regular-file member."""
    stream = tar.extractfile(member)
    assert stream is not None, f"{member.name} is not a regular file"
    return stream.read()
