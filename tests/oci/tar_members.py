"""Reading back the tars the core writes, with Python's own tarfile."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Mapping


def member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    """The content of a regular-file member."""
    stream = tar.extractfile(member)
    assert stream is not None, f"{member.name} is not a regular file"
    return stream.read()


def write_tar(path: Path, members: Mapping[str, bytes]) -> Path:
    """A plain tar of regular files, in the order given (an archive or layer made by hand)."""
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
