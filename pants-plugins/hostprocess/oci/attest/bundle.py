"""Sigstore bundles v0.3 over in-toto statements: what cosign 3 writes and verifies.

One format serves the image signature and the attestations: a DSSE envelope over an in-toto
Statement v1 whose subject is the image digest. The bundles are key-based and offline: the
verification material is the public key's hint, with no transparency log entry, certificate
or timestamp (none of those services is reachable where the plugin runs).
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from hostprocess.oci.attest.dsse import Signer, sign_envelope
from hostprocess.oci.attest.media_types import (
    BUNDLE_MEDIA_TYPE,
    IN_TOTO_MEDIA_TYPE,
    IN_TOTO_STATEMENT_V1,
)

# cosign 3's image signature: a statement with this predicate type and an empty predicate
# (cosign's `pkg/types` and `cmd/cosign/cli/sign`).
COSIGN_SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"
COSIGN_SIGN_PREDICATE: Mapping[str, Any] = {}

_SHA256_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")


def statement(
    subject_name: str, subject_digest: str, predicate_type: str, predicate: Mapping[str, Any]
) -> bytes:
    """An in-toto Statement v1 about one subject, as canonical bytes (sorted keys, compact).

    `subject_digest` is an OCI digest, `sha256:<hex>`: the image's manifest digest.
    """
    match = _SHA256_DIGEST.fullmatch(subject_digest)
    if not match:
        raise ValueError(f"subject digest must be sha256:<64 hex digits>, got {subject_digest!r}")
    document = {
        "_type": IN_TOTO_STATEMENT_V1,
        "subject": [{"name": subject_name, "digest": {"sha256": match.group(1)}}],
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sign_statement(key: Signer, statement_bytes: bytes) -> bytes:
    """The bundle JSON (UTF-8, indented, newline-terminated) signing `statement_bytes`."""
    _check_statement(statement_bytes)
    envelope = sign_envelope(key, IN_TOTO_MEDIA_TYPE, statement_bytes)
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key.hint}, "tlogEntries": []},
        "dsseEnvelope": envelope.to_json(),
    }
    return (json.dumps(bundle, indent=2) + "\n").encode("utf-8")


def _check_statement(statement_bytes: bytes) -> None:
    """Refuse to sign anything but an in-toto v1 statement: a verifier would reject it later."""
    try:
        document = json.loads(statement_bytes)
    except ValueError:
        raise ValueError("the payload to sign is not JSON") from None
    if not isinstance(document, dict) or document.get("_type") != IN_TOTO_STATEMENT_V1:
        raise ValueError(
            f"the payload to sign is not an in-toto Statement v1 ({IN_TOTO_STATEMENT_V1})"
        )
