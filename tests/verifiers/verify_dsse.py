"""Verify a Sigstore bundle's DSSE envelope with securesystemslib, independently of the plugin.

Usage: verify_dsse.py BUNDLE PUBLIC_KEY_PEM EXPECTED_SUBJECT_DIGEST [PREDICATE_TYPE]

Prints OK and exits 0 when the envelope's signature verifies with the public key (through
securesystemslib's `dsse.Envelope.verify`), the key hint and keyid are cosign's for that key,
and the in-toto statement names the expected subject digest (`sha256:<hex>`); otherwise
prints FAIL with the reason and exits 1. Built as a PEX in the `verifiers` resolve.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization  # pants: no-infer-dep
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"


class Rejected(Exception):
    pass


def cosign_hint(public_key_pem: bytes) -> str:
    """base64(sha256(DER SubjectPublicKeyInfo)), computed here from the PEM we were given."""
    public_key = serialization.load_pem_public_key(public_key_pem)
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


def verify_signature(envelope_json: dict[str, Any], public_key_pem: bytes) -> None:
    """securesystemslib matches signatures to keys by keyid, so the key is offered under each
    signature's keyid: the cryptographic check decides, and the keyid is checked apart."""
    public_key = serialization.load_pem_public_key(public_key_pem)
    envelope = Envelope.from_dict(json.loads(json.dumps(envelope_json)))
    keys = [
        SSlibKey.from_crypto(public_key, keyid=keyid, scheme="ecdsa-sha2-nistp256")
        for keyid in envelope.signatures
    ]
    if not keys:
        raise Rejected("the envelope has no signature")
    try:
        envelope.verify(keys, 1)
    except Exception as error:  # securesystemslib's VerificationError and its kin
        raise Rejected(f"signature: {type(error).__name__}: {error}") from None


def check_bundle(bundle: dict[str, Any], public_key_pem: bytes, subject_digest: str) -> dict:
    if bundle.get("mediaType") != BUNDLE_MEDIA_TYPE:
        raise Rejected(f"mediaType {bundle.get('mediaType')!r}")
    envelope_json = bundle["dsseEnvelope"]
    verify_signature(envelope_json, public_key_pem)
    hint = cosign_hint(public_key_pem)
    if bundle["verificationMaterial"]["publicKey"]["hint"] != hint:
        raise Rejected("the bundle's public key hint is not this key's")
    if any(s.get("keyid") != hint for s in envelope_json["signatures"]):
        raise Rejected("a signature's keyid is not this key's hint")
    if envelope_json["payloadType"] != IN_TOTO_PAYLOAD_TYPE:
        raise Rejected(f"payloadType {envelope_json['payloadType']!r}")
    statement = json.loads(base64.b64decode(envelope_json["payload"]))
    if statement.get("_type") != STATEMENT_TYPE:
        raise Rejected(f"statement _type {statement.get('_type')!r}")
    algorithm, _, hex_digest = subject_digest.partition(":")
    if not any(s.get("digest", {}).get(algorithm) == hex_digest for s in statement["subject"]):
        raise Rejected(f"subject: no subject has digest {subject_digest}")
    return statement


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    bundle = json.loads(Path(argv[0]).read_bytes())
    try:
        statement = check_bundle(bundle, Path(argv[1]).read_bytes(), argv[2])
        if len(argv) == 4 and statement.get("predicateType") != argv[3]:
            raise Rejected(f"predicateType {statement.get('predicateType')!r}")
    except Rejected as rejection:
        print(f"FAIL {rejection}")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
