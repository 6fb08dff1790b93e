"""Signing keys: PEM PKCS#8 ECDSA P-256 and cosign's encrypted `cosign.key`.

Every refusal is a `SigningKeyError` whose message names the problem and never the key or its
password: errors end up in logs and publish records. Underlying library exceptions are
dropped (`from None`), so no traceback carries their text either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any, Mapping

import nacl.exceptions
import nacl.secret
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

# cosign 2 and later write the first, cosign 1 the second; the body is the same envelope.
COSIGN_PEM_TYPES = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
PKCS8_PEM_TYPE = "PRIVATE KEY"
ENCRYPTED_PKCS8_PEM_TYPE = "ENCRYPTED PRIVATE KEY"

# A cosign key's scrypt cost is read from the file: bound it, so a hostile file cannot make
# us allocate gigabytes (cosign writes N=32768, r=8, p=1: 32 MiB).
MAX_SCRYPT_MEMORY = 1 << 30

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)


class SigningKeyError(ValueError):
    """A signing key that cannot be used; the message never holds key material."""


class SigningKey:
    """An ECDSA P-256 private key that signs with SHA-256, as Sigstore's key-based bundles do."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._private_key = private_key
        self._public_der = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def __repr__(self) -> str:
        return f"SigningKey(hint={self.hint!r})"

    def sign(self, data: bytes) -> bytes:
        """A DER ECDSA-SHA256 signature: RFC 6979 (deterministic) where OpenSSL offers it."""
        try:
            algorithm = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
            return self._private_key.sign(data, algorithm)
        except UnsupportedAlgorithm:
            # OpenSSL before 3.2 (a cryptography built against the system's): still valid.
            return self._private_key.sign(data, ec.ECDSA(hashes.SHA256()))

    def public_key_der(self) -> bytes:
        """The DER SubjectPublicKeyInfo, what the hint is a digest of."""
        return self._public_der

    def public_key_pem(self) -> bytes:
        """The PEM public key verifiers are given (`cosign verify --key`)."""
        return self._private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def hint(self) -> str:
        """cosign's public key hint: base64 of the SHA-256 of the DER public key."""
        return base64.b64encode(hashlib.sha256(self._public_der).digest()).decode("ascii")

    @property
    def key_id(self) -> str:
        """The same digest in hex, for listings and file names."""
        return hashlib.sha256(self._public_der).hexdigest()


def load_signing_key(
    pem: bytes, password: bytes | None, *, name: str = "the signing key"
) -> SigningKey:
    """The P-256 key in `pem` (PKCS#8, encrypted PKCS#8, or cosign's encrypted format).

    `name` (a path or setting, never the key) is what error messages call the key.
    `password` is ignored for an unencrypted key, so one environment variable can serve both.
    """
    pem_type, body = _pem_block(pem, name)
    if pem_type in COSIGN_PEM_TYPES:
        der = _decrypt_cosign(body, _required(password, name), name)
        return _p256(_load_der(der, None, name), name)
    if pem_type == ENCRYPTED_PKCS8_PEM_TYPE:
        return _p256(_load_der(body, _required(password, name), name), name)
    if pem_type == PKCS8_PEM_TYPE:
        return _p256(_load_der(body, None, name), name)
    raise SigningKeyError(
        f"{name} is a PEM {pem_type!r} block; expected a PKCS#8 'PRIVATE KEY' or "
        "'ENCRYPTED PRIVATE KEY', or a cosign key ('ENCRYPTED SIGSTORE PRIVATE KEY'). "
        "Convert an 'EC PRIVATE KEY' with `openssl pkcs8 -topk8`."
    )


def _pem_block(pem: bytes, name: str) -> tuple[str, bytes]:
    """The one PEM block's type and decoded body."""
    blocks = _PEM_BLOCK.findall(pem)
    if len(blocks) != 1:
        found = "no PEM block" if not blocks else f"{len(blocks)} PEM blocks"
        raise SigningKeyError(f"{name} is unreadable: {found} (expected exactly one private key)")
    pem_type, encoded = blocks[0]
    try:
        body = base64.b64decode(b"".join(encoded.split()), validate=True)
    except binascii.Error:
        raise SigningKeyError(f"{name} is unreadable: its PEM body is not base64") from None
    return pem_type.decode("ascii"), body


def _required(password: bytes | None, name: str) -> bytes:
    if password is None:
        raise SigningKeyError(f"{name} is encrypted and no password was given")
    return password


def _load_der(der: bytes, password: bytes | None, name: str) -> Any:
    """A private key object from PKCS#8 DER, refusing with our own error."""
    try:
        return serialization.load_der_private_key(der, password)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        if password is not None:
            reason = "wrong password, or not a PKCS#8 private key"
        else:
            reason = "not a PKCS#8 private key"
        raise SigningKeyError(f"{name} cannot be read: {reason}") from None


def _p256(private_key: Any, name: str) -> SigningKey:
    """Only ECDSA P-256: the one algorithm every Sigstore verifier accepts for key-based bundles."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        if isinstance(private_key.curve, ec.SECP256R1):
            return SigningKey(private_key)
        kind = f"an ECDSA {private_key.curve.name} key"
    else:
        kind = f"a {type(private_key).__name__.lstrip('_')} key"
    raise SigningKeyError(f"{name} is {kind}; signing needs an ECDSA P-256 (secp256r1) key")


def _decrypt_cosign(body: bytes, password: bytes, name: str) -> bytes:
    """The PKCS#8 DER inside cosign's envelope: scrypt derives a NaCl secretbox key."""
    envelope = _cosign_envelope(body, name)
    kdf, cipher = envelope["kdf"], envelope["cipher"]
    secret = _scrypt(password, kdf, name)
    try:
        box = nacl.secret.SecretBox(secret)
        return box.decrypt(_b64(envelope["ciphertext"], name), _b64(cipher["nonce"], name))
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise SigningKeyError(f"{name} cannot be decrypted: wrong password") from None


def _cosign_envelope(body: bytes, name: str) -> Mapping[str, Any]:
    """The JSON envelope (go-securesystemslib's `encrypted` package), checked for its algorithms."""
    try:
        envelope = json.loads(body)
        kdf_name = envelope["kdf"]["name"]
        cipher_name = envelope["cipher"]["name"]
        envelope["ciphertext"]
    except (ValueError, KeyError, TypeError):
        raise SigningKeyError(f"{name} is unreadable: not a cosign key envelope") from None
    if kdf_name != "scrypt" or cipher_name != "nacl/secretbox":
        raise SigningKeyError(
            f"{name} uses {kdf_name!r} with {cipher_name!r}; cosign keys use 'scrypt' with "
            "'nacl/secretbox'"
        )
    return envelope


def _scrypt(password: bytes, kdf: Mapping[str, Any], name: str) -> bytes:
    """The 32-byte secretbox key, with the file's scrypt parameters (bounded)."""
    try:
        params = kdf["params"]
        n, r, p = int(params["N"]), int(params["r"]), int(params["p"])
        salt = _b64(kdf["salt"], name)
    except (KeyError, TypeError, ValueError):
        raise SigningKeyError(f"{name} is unreadable: bad scrypt parameters") from None
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or 128 * n * r * p > MAX_SCRYPT_MEMORY:
        raise SigningKeyError(f"{name} has unusable scrypt parameters N={n} r={r} p={p}")
    return Scrypt(salt=salt, length=nacl.secret.SecretBox.KEY_SIZE, n=n, r=r, p=p).derive(password)


def _b64(value: Any, name: str) -> bytes:
    """Go's encoding of []byte in JSON: standard base64 with padding."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise SigningKeyError(f"{name} is unreadable: a field is not base64") from None
