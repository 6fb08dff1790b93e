"""Layer blobs for tests' OCI layouts, written by the core's own layer writer.

The stacking tests and the registry test servers both stand images on real layers, written
the way the tool writes them (fixed mtime, one thread) straight into a layout's blobs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from hostprocess.oci.image import Layer
from hostprocess.oci.layout import blob_path
from hostprocess.oci.types import Compression
from hostprocess.oci.windows.layer import LayerFile, write_layer


def write_layer_blob(
    directory: Path, files: Sequence[LayerFile], *, base: bool, compression: Compression
) -> Layer:
    """Write `files` as one layer at `directory`'s blob path for its digest, and describe it."""
    partial = directory / "layer.partial"
    with open(partial, "wb") as out:
        digests = write_layer(
            files,
            out,
            base=base,
            compression=compression,
            level=compression.default_level,
            mtime=0,
            threads=1,
        )
    target = directory / blob_path(digests.digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial.replace(target)
    return Layer(digests.digest, digests.size, digests.diff_id, compression)
