"""Signing: keys, DSSE envelopes and Sigstore bundles, checked by independent verifiers.

Keys come from `openssl` (PKCS#8 P-256, encrypted PKCS#8, and the keys we must refuse). No
program that writes cosign's encrypted key format is installable here (cosign is not packaged
for these machines), so those keys are built below from the format's definition
(go-securesystemslib's `encrypted` package: scrypt, then NaCl secretbox), with hashlib's
scrypt and PyNaCl rather than the code under test's. Bundles are verified by sigstore-js
(`@sigstore/verify`, installed from its npm lockfile) and by securesystemslib's DSSE
verification (a PEX in the `verifiers` resolve); both must also reject a tampered payload, a
wrong key and a wrong subject.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import traceback
from dataclasses import dataclass
from pathlib import Path

import nacl.secret
import pytest

from hostprocess.oci.attest.bundle import (
    BUNDLE_MEDIA_TYPE,
    COSIGN_SIGN_PREDICATE_TYPE,
    sign_statement,
    statement,
)
from hostprocess.oci.attest.dsse import Envelope, pae, sign_envelope, verify_envelope
from hostprocess.oci.attest.keys import SigningKey, SigningKeyError, load_signing_key
from verifiers.npm_verifier import NpmVerifier

VERIFY_DSSE_PEX = Path("tests.verifiers/verify-dsse.pex")
PASSWORD = b"correct horse 7f3a battery"
IMAGE_DIGEST = "sha256:" + hashlib.sha256(b"an image manifest").hexdigest()
OTHER_DIGEST = "sha256:" + hashlib.sha256(b"another image manifest").hexdigest()
PROVENANCE_TYPE = "https://slsa.dev/provenance/v1"


# --- keys made by independent producers ----------------------------------------------------


def openssl(*args: str, env: dict[str, str] | None = None) -> bytes:
    result = subprocess.run(["openssl", *args], capture_output=True, env=env)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def genpkey(*options: str) -> bytes:
    """A fresh PKCS#8 PEM private key from `openssl genpkey`."""
    return openssl("genpkey", *options)


def encrypted_pkcs8(pem: bytes, directory: Path) -> bytes:
    """PKCS#8 encrypted with PBES2/AES-256 by openssl; the password passes through the
    environment, never argv."""
    source = directory / "plain.pem"
    source.write_bytes(pem)
    env = {**os.environ, "KEY_PASSWORD": PASSWORD.decode()}
    args = ["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", str(source), "-passout"]
    return openssl(*args, "env:KEY_PASSWORD", env=env)


def public_pem(private_pem: bytes, directory: Path) -> bytes:
    source = directory / "for-public.pem"
    source.write_bytes(private_pem)
    return openssl("pkey", "-in", str(source), "-pubout")


def pkcs8_der(private_pem: bytes, directory: Path) -> bytes:
    source = directory / "for-der.pem"
    source.write_bytes(private_pem)
    return openssl("pkcs8", "-topk8", "-nocrypt", "-in", str(source), "-outform", "DER")


def cosign_key(
    der: bytes, password: bytes, pem_type: str = "ENCRYPTED SIGSTORE PRIVATE KEY"
) -> bytes:
    """cosign's `cosign.key`, from the format's definition: JSON naming scrypt (N=32768, r=8,
    p=1, as cosign writes) and nacl/secretbox, []byte fields in Go's base64, PEM-wrapped."""
    salt, nonce = os.urandom(32), os.urandom(24)
    secret = hashlib.scrypt(password, salt=salt, n=32768, r=8, p=1, maxmem=64 << 20, dklen=32)
    sealed = nacl.secret.SecretBox(secret).encrypt(der, nonce).ciphertext
    envelope = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": 32768, "r": 8, "p": 1},
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    body = base64.b64encode(json.dumps(envelope).encode()).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join(
        [f"-----BEGIN {pem_type}-----", *lines, f"-----END {pem_type}-----", ""]
    ).encode()


@dataclass(frozen=True)
class KeyPair:
    private_pem: bytes
    public_pem: bytes
    password: bytes | None


@pytest.fixture(scope="module")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def p256(keydir: Path) -> KeyPair:
    private = genpkey("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
    return KeyPair(private, public_pem(private, keydir), None)


@pytest.fixture(scope="module")
def other_p256(keydir: Path) -> KeyPair:
    private = genpkey("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
    return KeyPair(private, public_pem(private, keydir), None)


@pytest.fixture(scope="module")
def key_formats(keydir: Path, p256: KeyPair) -> dict[str, KeyPair]:
    """One P-256 key in every accepted format."""
    der = pkcs8_der(p256.private_pem, keydir)
    return {
        "pkcs8": p256,
        "encrypted-pkcs8": KeyPair(
            encrypted_pkcs8(p256.private_pem, keydir), p256.public_pem, PASSWORD
        ),
        "cosign-2": KeyPair(cosign_key(der, PASSWORD), p256.public_pem, PASSWORD),
        "cosign-1": KeyPair(
            cosign_key(der, PASSWORD, "ENCRYPTED COSIGN PRIVATE KEY"), p256.public_pem, PASSWORD
        ),
    }


# --- the verifiers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def npm_verifier(tmp_path_factory: pytest.TempPathFactory) -> NpmVerifier:
    return NpmVerifier(tmp_path_factory.mktemp("sigstore-js"))


@dataclass
class Verifiers:
    npm: NpmVerifier
    directory: Path

    def run(self, bundle: bytes, public_key: bytes, digest: str) -> dict[str, tuple[bool, str]]:
        """Each verifier's (accepted, output) for one bundle."""
        bundle_path = self.directory / f"{hashlib.sha256(bundle).hexdigest()}.sigstore.json"
        key_path = self.directory / f"{hashlib.sha256(public_key).hexdigest()}.pub"
        bundle_path.write_bytes(bundle)
        key_path.write_bytes(public_key)
        return {
            "sigstore-js": self.npm.verify(bundle_path, key_path, digest),
            "securesystemslib": run_verify_dsse(bundle_path, key_path, digest),
        }


def run_verify_dsse(bundle: Path, public_key: Path, digest: str) -> tuple[bool, str]:
    assert VERIFY_DSSE_PEX.is_file(), "the test target must depend on tests/verifiers:verify-dsse"
    result = subprocess.run(
        [str(VERIFY_DSSE_PEX), str(bundle), str(public_key), digest],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    if result.returncode not in (0, 1):
        raise AssertionError(f"verify-dsse broke (exit {result.returncode}):\n{output}")
    return result.returncode == 0 and output.startswith("OK"), output


@pytest.fixture(scope="module")
def verifiers(npm_verifier: NpmVerifier, tmp_path_factory: pytest.TempPathFactory) -> Verifiers:
    return Verifiers(npm_verifier, tmp_path_factory.mktemp("bundles"))


def assert_accepted(results: dict[str, tuple[bool, str]]) -> None:
    for verifier, (accepted, output) in results.items():
        assert accepted, f"{verifier} rejected a good bundle:\n{output}"


def assert_rejected(results: dict[str, tuple[bool, str]], because: dict[str, str]) -> None:
    for verifier, (accepted, output) in results.items():
        assert not accepted, f"{verifier} accepted a bad bundle:\n{output}"
        assert because[verifier] in output, f"{verifier} rejected it for another reason:\n{output}"


def image_signature(key: SigningKey, digest: str = IMAGE_DIGEST) -> bytes:
    return sign_statement(
        key, statement("hostprocess/hello", digest, COSIGN_SIGN_PREDICATE_TYPE, {})
    )


# --- loading keys ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["pkcs8", "encrypted-pkcs8", "cosign-2", "cosign-1"])
def test_each_key_format_loads_and_signs_verifiably(
    fmt: str, key_formats: dict[str, KeyPair], verifiers: Verifiers
) -> None:
    pair = key_formats[fmt]
    key = load_signing_key(pair.private_pem, pair.password)
    assert key.public_key_pem() == pair.public_pem  # the same key openssl made
    expected_hint = base64.b64encode(hashlib.sha256(pkcs8_public_der(pair)).digest()).decode()
    assert key.hint == expected_hint
    assert_accepted(verifiers.run(image_signature(key), pair.public_pem, IMAGE_DIGEST))


def pkcs8_public_der(pair: KeyPair) -> bytes:
    """The DER SubjectPublicKeyInfo, from the PEM by hand (base64 between the armour lines)."""
    lines = pair.public_pem.decode().strip().splitlines()
    return base64.b64decode("".join(lines[1:-1]))


def test_password_is_ignored_for_an_unencrypted_key(p256: KeyPair) -> None:
    """One environment variable may hold the password while some keys need none."""
    key = load_signing_key(p256.private_pem, PASSWORD)
    assert key.public_key_pem() == p256.public_pem


# --- refusals ---------------------------------------------------------------------------------


def refusal(pem: bytes, password: bytes | None) -> str:
    """The error's message and its whole formatted traceback, checked for secrets."""
    with pytest.raises(SigningKeyError) as caught:
        load_signing_key(pem, password, name="signing.key")
    formatted = "".join(
        traceback.format_exception(caught.type, caught.value, caught.value.__traceback__)
    )
    assert_no_secrets(formatted, pem, password)
    return str(caught.value)


def assert_no_secrets(text: str, pem: bytes, password: bytes | None) -> None:
    if password:
        assert password.decode() not in text
    body_lines = [line for line in pem.decode(errors="replace").splitlines() if "-----" not in line]
    for line in body_lines:
        if len(line) >= 8:
            assert line not in text


def test_wrong_password_is_refused(key_formats: dict[str, KeyPair]) -> None:
    for fmt in ("encrypted-pkcs8", "cosign-2", "cosign-1"):
        message = refusal(key_formats[fmt].private_pem, b"not the password")
        assert "signing.key" in message and "wrong password" in message, message


def test_missing_password_is_refused(key_formats: dict[str, KeyPair]) -> None:
    for fmt in ("encrypted-pkcs8", "cosign-2"):
        message = refusal(key_formats[fmt].private_pem, None)
        assert "encrypted and no password was given" in message, message


@pytest.mark.parametrize(
    "options, kind",
    [
        (["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], "secp384r1"),
        (["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], "RSA"),
        (["-algorithm", "ED25519"], "Ed25519"),
    ],
    ids=["p384", "rsa", "ed25519"],
)
def test_keys_other_than_p256_are_refused(options: list[str], kind: str, keydir: Path) -> None:
    pem = genpkey(*options)
    for candidate, password in [
        (pem, None),
        (encrypted_pkcs8(pem, keydir), PASSWORD),
        (cosign_key(pkcs8_der(pem, keydir), PASSWORD), PASSWORD),
    ]:
        message = refusal(candidate, password)
        assert kind in message and "needs an ECDSA P-256" in message, message


def test_unreadable_keys_are_refused(p256: KeyPair) -> None:
    garbage_der = base64.b64encode(os.urandom(120)).decode()
    truncated_cosign_key = cosign_key(os.urandom(138), PASSWORD)[:-40]
    cases = {
        b"": "no PEM block",
        os.urandom(64).hex().encode(): "no PEM block",
        b"-----BEGIN PRIVATE KEY-----\n!!not base64!!\n-----END PRIVATE KEY-----\n": "not base64",
        f"-----BEGIN PRIVATE KEY-----\n{garbage_der}\n-----END PRIVATE KEY-----\n".encode(): (
            "not a PKCS#8 private key"
        ),
        p256.private_pem + p256.private_pem: "2 PEM blocks",
        p256.public_pem: "'PUBLIC KEY'",
        truncated_cosign_key: "no PEM block",
        (
            b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
            + base64.b64encode(b'{"kdf": 1}')
            + b"\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
        ): "not a cosign key envelope",
    }
    for pem, reason in cases.items():
        message = refusal(pem, PASSWORD)
        assert reason in message, (reason, message)


def test_traditional_ec_key_is_refused_with_the_conversion(p256: KeyPair, keydir: Path) -> None:
    source = keydir / "for-sec1.pem"
    source.write_bytes(p256.private_pem)
    sec1 = openssl("pkey", "-traditional", "-in", str(source))
    assert b"BEGIN EC PRIVATE KEY" in sec1
    message = refusal(sec1, None)
    assert "'EC PRIVATE KEY'" in message and "openssl pkcs8 -topk8" in message, message


def test_cosign_key_with_a_hostile_scrypt_cost_is_refused() -> None:
    envelope = {
        "kdf": {"name": "scrypt", "params": {"N": 1 << 30, "r": 8, "p": 1}, "salt": "AAAA"},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(bytes(24)).decode()},
        "ciphertext": "AAAA",
    }
    body = base64.b64encode(json.dumps(envelope).encode())
    pem = b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + body
    pem += b"\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    assert "unusable scrypt parameters" in refusal(pem, PASSWORD)


def test_the_key_object_shows_no_secret(key_formats: dict[str, KeyPair]) -> None:
    pair = key_formats["cosign-2"]
    key = load_signing_key(pair.private_pem, pair.password)
    assert_no_secrets(repr(key) + str(key), pair.private_pem, pair.password)
    assert repr(key) == f"SigningKey(hint={key.hint!r})"


# --- bundles and the verifiers' verdicts ----------------------------------------------------


def test_image_signature_bundle_form(p256: KeyPair) -> None:
    key = load_signing_key(p256.private_pem, None)
    bundle = json.loads(image_signature(key))
    assert bundle["mediaType"] == BUNDLE_MEDIA_TYPE
    assert bundle["verificationMaterial"] == {"publicKey": {"hint": key.hint}, "tlogEntries": []}
    envelope = bundle["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert [s["keyid"] for s in envelope["signatures"]] == [key.hint]
    assert json.loads(base64.b64decode(envelope["payload"])) == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "hostprocess/hello", "digest": {"sha256": IMAGE_DIGEST[7:]}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    }


def test_attestation_bundle_verifies(p256: KeyPair, verifiers: Verifiers) -> None:
    """An SBOM or provenance is signed the same way, under its own predicate type."""
    key = load_signing_key(p256.private_pem, None)
    predicate = {"buildDefinition": {"buildType": "https://example.invalid/v1"}, "runDetails": {}}
    bundle = sign_statement(
        key, statement("hostprocess/hello", IMAGE_DIGEST, PROVENANCE_TYPE, predicate)
    )
    assert_accepted(verifiers.run(bundle, p256.public_pem, IMAGE_DIGEST))


def test_signing_is_deterministic(p256: KeyPair) -> None:
    """RFC 6979 with the pinned cryptography: same key and statement, same bundle bytes."""
    key = load_signing_key(p256.private_pem, None)
    assert image_signature(key) == image_signature(key)
    assert image_signature(key) != image_signature(key, OTHER_DIGEST)


def test_tampered_payload_is_rejected(p256: KeyPair, verifiers: Verifiers) -> None:
    key = load_signing_key(p256.private_pem, None)
    bundle = json.loads(image_signature(key))
    claimed = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    claimed["subject"][0]["digest"]["sha256"] = OTHER_DIGEST[7:]
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(claimed).encode()).decode()
    results = verifiers.run(json.dumps(bundle).encode(), p256.public_pem, OTHER_DIGEST)
    assert_rejected(results, {"sigstore-js": "SIGNATURE_ERROR", "securesystemslib": "signature:"})


def test_wrong_key_is_rejected(p256: KeyPair, other_p256: KeyPair, verifiers: Verifiers) -> None:
    key = load_signing_key(p256.private_pem, None)
    results = verifiers.run(image_signature(key), other_p256.public_pem, IMAGE_DIGEST)
    assert_rejected(results, {"sigstore-js": "SIGNATURE_ERROR", "securesystemslib": "signature:"})


def test_wrong_subject_is_rejected(p256: KeyPair, verifiers: Verifiers) -> None:
    key = load_signing_key(p256.private_pem, None)
    results = verifiers.run(image_signature(key), p256.public_pem, OTHER_DIGEST)
    assert_rejected(results, {"sigstore-js": "subject", "securesystemslib": "subject"})


def test_verify_dsse_checks_the_predicate_type(p256: KeyPair, tmp_path: Path) -> None:
    key = load_signing_key(p256.private_pem, None)
    bundle, public_key = tmp_path / "b.json", tmp_path / "k.pub"
    bundle.write_bytes(image_signature(key))
    public_key.write_bytes(p256.public_pem)
    for predicate_type, accepted in [(COSIGN_SIGN_PREDICATE_TYPE, True), (PROVENANCE_TYPE, False)]:
        result = subprocess.run(
            [str(VERIFY_DSSE_PEX), str(bundle), str(public_key), IMAGE_DIGEST, predicate_type],
            capture_output=True,
            text=True,
        )
        assert (result.returncode == 0) == accepted, result.stdout + result.stderr


# --- DSSE and statements ----------------------------------------------------------------------


def test_pae_matches_the_dsse_specification() -> None:
    """The example in DSSE's protocol.md."""
    encoded = pae("http://example.com/HelloWorld", b"hello world")
    assert encoded == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_envelope_round_trip(p256: KeyPair, other_p256: KeyPair) -> None:
    key = load_signing_key(p256.private_pem, None)
    envelope = sign_envelope(key, "text/plain", b"payload")
    again = Envelope.from_json(json.loads(json.dumps(envelope.to_json())))
    assert again == envelope
    assert verify_envelope(again, p256.public_pem)
    assert not verify_envelope(again, other_p256.public_pem)
    tampered = Envelope(again.payload_type, b"payloaD", again.signatures)
    assert not verify_envelope(tampered, p256.public_pem)


def test_statement_needs_a_sha256_digest() -> None:
    for bad in ["sha512:" + "0" * 128, IMAGE_DIGEST[7:], "sha256:" + "A" * 64, "sha256:00"]:
        with pytest.raises(ValueError, match="sha256:<64 hex digits>"):
            statement("hostprocess/hello", bad, COSIGN_SIGN_PREDICATE_TYPE, {})


def test_only_statements_are_signed(p256: KeyPair) -> None:
    key = load_signing_key(p256.private_pem, None)
    for payload in [b"not json", b'{"_type": "https://in-toto.io/Statement/v0.1"}', b"[]"]:
        with pytest.raises(ValueError, match="not"):
            sign_statement(key, payload)
