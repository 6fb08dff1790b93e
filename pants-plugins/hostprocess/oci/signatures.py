"""The signatures a push attaches with a signing key: a Sigstore bundle for the image and
one signed attestation per document.

Only a push that signs imports this module (and so `cryptography` and PyNaCl): writing
layers needs neither, so a user resolve for the image tool without them still builds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from hostprocess.oci.attachments import Document
from hostprocess.oci.attest.bundle import (
    BUNDLE_MEDIA_TYPE,
    COSIGN_SIGN_PREDICATE,
    COSIGN_SIGN_PREDICATE_TYPE,
    sign_statement,
    statement,
)
from hostprocess.oci.attest.keys import SigningKey, SigningKeyError, load_signing_key
from hostprocess.oci.attest.media_types import IN_TOTO_MEDIA_TYPE
from hostprocess.oci.registry.referrers import Attachment

# cosign's annotations on a bundle referrer: what it holds and which predicate it signs.
BUNDLE_CONTENT_ANNOTATION = "dev.sigstore.bundle.content"
BUNDLE_PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"


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
