"""What a push attaches to its image as OCI referrers: the SBOMs and the provenance
`package` wrote, and, with a signing key, a signed Sigstore bundle for the image and for
each of them.

The push command hands over `kind=path` pairs; the kinds name their artifact and media
types (`attest/media_types.py`), so every registry sees the same referrer manifests and a
republish finds them already there.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from hostprocess.oci.attest.bundle import (
    BUNDLE_MEDIA_TYPE,
    COSIGN_SIGN_PREDICATE,
    COSIGN_SIGN_PREDICATE_TYPE,
    sign_statement,
    statement,
)
from hostprocess.oci.attest.keys import SigningKey, SigningKeyError, load_signing_key
from hostprocess.oci.attest.media_types import DOCUMENT_KINDS, IN_TOTO_MEDIA_TYPE, DocumentKind
from hostprocess.oci.registry.referrers import Attachment

# cosign's annotations on a bundle referrer: what it holds and which predicate it signs.
BUNDLE_CONTENT_ANNOTATION = "dev.sigstore.bundle.content"
BUNDLE_PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"


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


def read_signing_key(path: str, password_env: str | None) -> SigningKey:
    """The key at `path`, its password from the variable `password_env` (when set).

    Errors name the file and the variable, never the key or the password.
    """
    password = os.environ.get(password_env) if password_env else None
    if password_env and password is None:
        raise SigningKeyError(
            f"the signing key's password variable {password_env} is not set in the environment"
        )
    try:
        pem = Path(path).read_bytes()
    except OSError as e:
        raise SigningKeyError(f"cannot read the signing key {path}: {e.strerror}") from None
    return load_signing_key(
        pem, password.encode() if password is not None else None, name=f"the signing key {path}"
    )


def signature_attachments(
    key: SigningKey, repository: str, image_digest: str, documents: Sequence[Document]
) -> list[tuple[str, Attachment]]:
    """The image's signature and one signed attestation per document, as Sigstore bundles.

    The provenance is already an in-toto statement about the image, so it is signed as it
    is; an SBOM becomes the predicate of a statement about the image. Signing is
    deterministic (RFC 6979), so a republish finds the same bundles there.
    """
    signed = [
        (
            "signature",
            COSIGN_SIGN_PREDICATE_TYPE,
            statement(repository, image_digest, COSIGN_SIGN_PREDICATE_TYPE, COSIGN_SIGN_PREDICATE),
        )
    ]
    for document in documents:
        kind = document.kind
        content = document.path.read_bytes()
        if kind.media_type != IN_TOTO_MEDIA_TYPE:
            content = statement(repository, image_digest, kind.predicate_type, json.loads(content))
        signed.append((f"{kind.name} attestation", kind.predicate_type, content))
    return [
        (name, _bundle(key, predicate_type, payload)) for name, predicate_type, payload in signed
    ]


def _bundle(key: SigningKey, predicate_type: str, payload: bytes) -> Attachment:
    annotations = {
        BUNDLE_CONTENT_ANNOTATION: "dsse-envelope",
        BUNDLE_PREDICATE_ANNOTATION: predicate_type,
    }
    bundle = sign_statement(key, payload)
    return Attachment(BUNDLE_MEDIA_TYPE, BUNDLE_MEDIA_TYPE, bundle, annotations)
