"""What a push attaches to its image as OCI referrers: the SBOMs and the provenance
`package` wrote (the signatures are `oci/signatures.py`'s).

The push command hands over `kind=path` pairs; the kinds name their artifact and media
types (`attest/media_types.py`), so every registry sees the same referrer manifests and a
republish finds them already there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from hostprocess.oci.attest.media_types import DOCUMENT_KINDS, DocumentKind
from hostprocess.oci.registry.referrers import Attachment


@dataclass(frozen=True)
class Document:
    kind: DocumentKind
    path: Path

    @classmethod
    def parse(cls, spec: str) -> Document:
        """`kind=path`, as `PushCommand.attach` holds it."""
        kind, sep, path = spec.partition("=")
        if not sep or kind not in DOCUMENT_KINDS or not path:
            raise ValueError(
                f"--attach {spec!r} must be kind=path with a kind of {sorted(DOCUMENT_KINDS)}"
            )
        return cls(DOCUMENT_KINDS[kind], Path(path))

    def attachment(self) -> Attachment:
        return Attachment.from_file(self.path, self.kind.artifact_type, self.kind.media_type)


def document_attachments(documents: Sequence[Document]) -> list[tuple[str, Attachment]]:
    """Each document, with the name it is reported under."""
    return [(document.kind.name, document.attachment()) for document in documents]
