"""The publish record, `dist/<output_path>.publish.json`: what an image's pushes moved.

Push steps merge the references they moved into it (reference -> digest, one JSON object);
a DaemonSet's publish step reads it before writing a manifest that pins one of them. Both
sides are here, so the format has one owner. What a push attached to an image (SBOMs,
provenance, signatures) is listed under the key `attachments`, by the image's reference.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

RECORD_SUFFIX = ".publish.json"
ATTACHMENTS = "attachments"


def update_record(path: Path, references: Mapping[str, str], uncertain: Sequence[str]) -> None:
    """Merge pushed references into the record, atomically.

    `uncertain` references (a tag whose push failed: it may have moved unseen) are dropped,
    so that the record only ever shows what is known to hold.
    """
    record = _read(path)
    record.update(references)
    for reference in uncertain:
        record.pop(reference, None)
    write_atomically(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def update_attachments(path: Path, image: str, attached: Sequence[Mapping[str, str]]) -> None:
    """Record what is attached to `image` (`host/repo@digest`): kind, artifact type, reference
    and digest of each referrer, replacing what an earlier push recorded for it."""
    record = _read(path)
    record.setdefault(ATTACHMENTS, {})[image] = [dict(entry) for entry in attached]
    write_atomically(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def shows_pushed(path: Path, reference: str, digest: str) -> bool:
    """Whether the record shows `reference` pushed as `digest` (no record: nothing pushed)."""
    return _read(path).get(reference) == digest


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def write_atomically(path: Path, content: str | bytes) -> None:
    """Write through a `.<name>.partial` file beside `path`: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    if isinstance(content, bytes):
        tmp.write_bytes(content)
    else:
        tmp.write_text(content)
    os.replace(tmp, path)
