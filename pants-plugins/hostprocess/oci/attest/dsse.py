"""DSSE v1 envelopes (github.com/secure-systems-lab/dsse): what a Sigstore bundle signs.

The signature covers the pre-authentication encoding (PAE) of the payload type and payload,
never the JSON around them, so the envelope's own serialization cannot change its meaning.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


class Signer(Protocol):
    """What signs an envelope (a `keys.SigningKey`): a DER ECDSA signature and a key hint."""

    @property
    def hint(self) -> str:
        ...

    def sign(self, data: bytes) -> bytes:
        ...


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def to_json(self) -> dict[str, Any]:
        """The envelope's JSON form (also the bundle protobuf's JSON mapping of it)."""
        return {
            "payload": _b64(self.payload),
            "payloadType": self.payload_type,
            "signatures": [{"sig": _b64(s.sig), "keyid": s.keyid} for s in self.signatures],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Envelope:
        signatures = tuple(
            Signature(keyid=s.get("keyid", ""), sig=base64.b64decode(s["sig"]))
            for s in data["signatures"]
        )
        return cls(data["payloadType"], base64.b64decode(data["payload"]), signatures)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSEv1 pre-authentication encoding: lengths are decimal byte counts."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def sign_envelope(signer: Signer, payload_type: str, payload: bytes) -> Envelope:
    """An envelope with one signature, whose keyid is the signer's hint (as cosign writes)."""
    signature = Signature(keyid=signer.hint, sig=signer.sign(pae(payload_type, payload)))
    return Envelope(payload_type, payload, (signature,))


def verify_envelope(envelope: Envelope, public_key_pem: bytes) -> bool:
    """Whether any signature verifies with the key: our own round-trip check (tests only;
    users verify with cosign or sigstore-js)."""
    public_key = serialization.load_pem_public_key(public_key_pem)
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return False
    signed = pae(envelope.payload_type, envelope.payload)
    for signature in envelope.signatures:
        try:
            public_key.verify(signature.sig, signed, ec.ECDSA(hashes.SHA256()))
            return True
        except InvalidSignature:
            continue
    return False


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
