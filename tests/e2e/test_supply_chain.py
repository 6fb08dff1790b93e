"""`./pants publish examples:hello`, signed, against Debian's `docker-registry` 2.8 on loopback:
the SBOMs, the provenance and the signatures arrive as OCI referrers, and independent tools
verify each one.

docker-registry 2.8 has no referrers API, so the attachments are listed by the referrers tag
schema (`sha256-<hex>`). Everything is read back with skopeo and plain HTTP, never with the
plugin: documents with pyspdxtools, cyclonedx-python-lib and in-toto-attestation (the
`verify-documents` PEX), bundles with sigstore-js and securesystemslib (`verify-dsse`).
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from e2e.checkout import Checkout, copy_repo, load_json
from e2e.containerd import Containerd, running_containerd

pytest.register_assert_rewrite("oci.registry_servers")
from oci.registry_servers import RegistryServer, openssl, skopeo_output  # noqa: E402
from verifiers.npm_verifier import NpmVerifier  # noqa: E402

pytest_plugins = ["oci.registry_servers"]

VERIFY_DOCUMENTS = Path("tests.verifiers/verify-documents.pex").absolute()
VERIFY_DSSE = Path("tests.verifiers/verify-dsse.pex").absolute()
KEY_IN_CHECKOUT = "keys/signing.pem"
PASSWORD_ENV = "HOSTPROCESS_TEST_SIGNING_PASSWORD"
PASSWORD = "correct horse 7c1e"
REPOSITORY = "examples/hello"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
# What a signed publish with both SBOM formats attaches: artifact type -> how many.
EXPECTED = {
    "application/spdx+json": 1,
    "application/vnd.cyclonedx+json": 1,
    "application/vnd.in-toto+json": 1,
    BUNDLE: 4,  # the image's signature, and one attestation per document
}


@dataclass(frozen=True)
class Published:
    checkout: Checkout
    registry: RegistryServer
    unsigned_digest: str  # what `package` gave before any key was configured
    output: str  # the signed publish's output
    public_key: Path


def signing_flags() -> list[str]:
    return [
        f"--hostprocess-signing-key={KEY_IN_CHECKOUT}",
        f"--hostprocess-signing-key-password-env={PASSWORD_ENV}",
        "--hostprocess-sbom-formats=['spdx', 'cyclonedx']",
    ]


def write_key(checkout: Checkout) -> None:
    """An encrypted PKCS#8 P-256 key, made by openssl (the password passed in its environment)."""
    key = checkout.root / KEY_IN_CHECKOUT
    key.parent.mkdir()
    plain = openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
    os.environ[PASSWORD_ENV] = PASSWORD
    try:
        encrypted = openssl(
            "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", f"env:{PASSWORD_ENV}", stdin=plain
        )
    finally:
        del os.environ[PASSWORD_ENV]
    key.write_bytes(encrypted)


@pytest.fixture(scope="module")
def published(
    tmp_path_factory: pytest.TempPathFactory, anonymous_registry: RegistryServer
) -> Published:
    checkout = copy_repo(tmp_path_factory.mktemp("supply-chain") / "repo")
    checkout.set_registries({"local": {"address": anonymous_registry.host, "default": True}})
    checkout.pants("package", "examples:hello")
    unsigned = load_json(checkout.dist / "examples" / "hello.image.json")["digest"]
    write_key(checkout)
    result = checkout.pants(
        *signing_flags(), "package", "publish", "examples:hello", env={PASSWORD_ENV: PASSWORD}
    )
    public_key = (
        checkout.dist / "examples" / f"hello.{anonymous_registry.host.replace(':', '-')}.pub"
    )
    return Published(checkout, anonymous_registry, unsigned, result.stdout, public_key)


def fetch(registry: RegistryServer, path: str) -> bytes:
    """A plain HTTP GET to the registry (never through an ambient proxy)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{path}", headers={"Accept": OCI_INDEX}
    )
    with opener.open(request, timeout=30) as response:
        return response.read()


def referrers_index(registry: RegistryServer, digest: str) -> dict[str, Any]:
    tag = digest.replace(":", "-")
    raw = skopeo_output(f"{registry.host}/{REPOSITORY}:{tag}", raw=True)
    return json.loads(raw)


def referrer_document(registry: RegistryServer, manifest_digest: str, subject: str) -> bytes:
    """The one layer of a referrer manifest, whose subject must be the image."""
    manifest = json.loads(
        skopeo_output(f"{registry.host}/{REPOSITORY}@{manifest_digest}", raw=True)
    )
    assert manifest["subject"]["digest"] == subject, manifest
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    (layer,) = manifest["layers"]
    return fetch(registry, f"{REPOSITORY}/blobs/{layer['digest']}")


def run_pex(pex: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(pex), *args], capture_output=True, text=True, check=False, timeout=120
    )


@pytest.fixture(scope="module")
def npm_verifier(tmp_path_factory: pytest.TempPathFactory) -> NpmVerifier:
    return NpmVerifier(tmp_path_factory.mktemp("npm"))


def test_the_image_is_the_unsigned_image_and_still_platform_free(published: Published) -> None:
    registry, digest = published.registry, published.unsigned_digest
    summary = load_json(published.checkout.dist / "examples" / "hello.image.json")
    assert summary["digest"] == digest, "signing or attaching changed the image"
    raw = skopeo_output(f"{registry.host}/{REPOSITORY}:latest", raw=True)
    manifest = json.loads(raw)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    for key in (b'"platform"', b'"os.version"', b'"manifests"'):
        assert key not in raw, f"the image is no longer one platform-free manifest: {key!r}"
    inspected = json.loads(skopeo_output(f"{registry.host}/{REPOSITORY}:latest"))
    assert (inspected["Digest"], inspected["Os"]) == (digest, "windows")


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    yield from running_containerd(tmp_path_factory.mktemp("containerd"))


def test_containerd_1_6_still_pulls_the_signed_image_as_windows_amd64(
    published: Published, containerd: Containerd
) -> None:
    reference = f"{published.registry.host}/{REPOSITORY}:latest"
    containerd.ctr("images", "pull", "--plain-http", "--platform", "windows/amd64", reference)
    listed = containerd.ctr("images", "ls").stdout.splitlines()
    row = next(line.split() for line in listed if line.startswith(reference + " "))
    assert row[1:3] == ["application/vnd.oci.image.manifest.v1+json", published.unsigned_digest]
    assert row[-2] == "windows/amd64", listed


def test_every_attachment_is_listed_by_the_tag_schema_and_recorded(published: Published) -> None:
    index = referrers_index(published.registry, published.unsigned_digest)
    assert index["mediaType"] == OCI_INDEX
    counts: dict[str, int] = {}
    for entry in index["manifests"]:
        counts[entry["artifactType"]] = counts.get(entry["artifactType"], 0) + 1
    assert counts == EXPECTED
    predicates = sorted(
        e["annotations"]["dev.sigstore.bundle.predicateType"]
        for e in index["manifests"]
        if e["artifactType"] == BUNDLE
    )
    assert predicates == [
        "https://cyclonedx.org/bom",
        "https://sigstore.dev/cosign/sign/v1",
        "https://slsa.dev/provenance/v1",
        "https://spdx.dev/Document",
    ]
    record = load_json(published.checkout.dist / "examples" / "hello.publish.json")
    image = f"{published.registry.host}/{REPOSITORY}@{published.unsigned_digest}"
    recorded = {entry["digest"] for entry in record["attachments"][image]}
    assert recorded == {entry["digest"] for entry in index["manifests"]}
    for digest in recorded:  # the publish output lists each one with its digest
        assert digest in published.output


def test_the_documents_validate_with_their_projects_own_tools(
    published: Published, tmp_path: Path
) -> None:
    index = referrers_index(published.registry, published.unsigned_digest)
    kinds = {
        "application/spdx+json": "spdx",
        "application/vnd.cyclonedx+json": "cyclonedx",
        "application/vnd.in-toto+json": "provenance",
    }
    for entry in index["manifests"]:
        kind = kinds.get(entry["artifactType"])
        if kind is None:
            continue
        document = tmp_path / f"{kind}.json"
        document.write_bytes(
            referrer_document(published.registry, entry["digest"], published.unsigned_digest)
        )
        packaged = (
            published.checkout.dist
            / "examples"
            / f"hello{'.cdx' if kind == 'cyclonedx' else '.' + kind}.json"
        )
        assert document.read_bytes() == packaged.read_bytes(), f"the pushed {kind} is not dist/'s"
        result = run_pex(VERIFY_DOCUMENTS, kind, str(document))
        assert result.returncode == 0, result.stdout + result.stderr
    statement = json.loads((tmp_path / "provenance.json").read_text())
    assert statement["subject"][0]["digest"]["sha256"] == published.unsigned_digest.split(":")[1]


def test_every_bundle_verifies_with_sigstore_js_and_securesystemslib(
    published: Published, npm_verifier: NpmVerifier, tmp_path: Path
) -> None:
    index = referrers_index(published.registry, published.unsigned_digest)
    bundles = [e for e in index["manifests"] if e["artifactType"] == BUNDLE]
    assert len(bundles) == EXPECTED[BUNDLE]
    for n, entry in enumerate(bundles):
        bundle = tmp_path / f"bundle-{n}.json"
        bundle.write_bytes(
            referrer_document(published.registry, entry["digest"], published.unsigned_digest)
        )
        predicate = entry["annotations"]["dev.sigstore.bundle.predicateType"]
        accepted, output = npm_verifier.verify(
            bundle, published.public_key, published.unsigned_digest
        )
        assert accepted, output
        result = run_pex(
            VERIFY_DSSE,
            str(bundle),
            str(published.public_key),
            published.unsigned_digest,
            predicate,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        # A bundle for another image is refused by both.
        other = "sha256:" + "0" * 64
        assert not npm_verifier.verify(bundle, published.public_key, other)[0]
        assert run_pex(VERIFY_DSSE, str(bundle), str(published.public_key), other).returncode != 0


def test_republish_uploads_nothing_and_adds_no_entries(published: Published) -> None:
    before = referrers_index(published.registry, published.unsigned_digest)
    result = published.checkout.pants(
        *signing_flags(), "publish", "examples:hello", env={PASSWORD_ENV: PASSWORD}
    )
    assert "Nothing to upload" in result.stdout
    assert "(uploaded)" not in result.stdout, result.stdout
    assert referrers_index(published.registry, published.unsigned_digest) == before


def test_a_wrong_password_pushes_nothing_and_is_not_echoed(published: Published) -> None:
    wrong = "not-the-password-51d0"
    repository = "supply-chain/wrong-password"
    build = published.checkout.root / "examples" / "BUILD"
    original = build.read_text()
    build.write_text(
        original.replace('name="hello",', f'name="hello",\n    repository="{repository}",', 1)
    )
    try:
        result = published.checkout.pants(
            *signing_flags(), "publish", "examples:hello", env={PASSWORD_ENV: wrong}, check=False
        )
    finally:
        build.write_text(original)
    assert result.returncode != 0
    assert "signing key" in result.stdout and KEY_IN_CHECKOUT in result.stdout, result.stdout
    assert wrong not in result.stdout
    catalog = json.loads(fetch(published.registry, "_catalog"))["repositories"]
    assert repository not in catalog, "a blob or manifest went up before the key was checked"


def test_two_concurrent_publishes_attaching_different_documents_are_both_listed(
    tmp_path_factory: pytest.TempPathFactory, anonymous_registry: RegistryServer
) -> None:
    """Two checkouts publish the same image at once, one attaching its SPDX SBOM, the other
    its CycloneDX one: docker-registry ignores If-Match, so this is the re-read-and-merge path."""
    checkouts = []
    for name, sbom in (("spdx", "spdx"), ("cyclonedx", "cyclonedx")):
        checkout = copy_repo(tmp_path_factory.mktemp(f"concurrent-{name}") / "repo")
        checkout.set_registries({"local": {"address": anonymous_registry.host, "default": True}})
        build = checkout.root / "examples" / "BUILD"
        build.write_text(
            build.read_text().replace(
                'name="hello",', 'name="hello",\n    repository="supply-chain/concurrent",', 1
            )
        )
        checkout.pants("package", "examples:hello")  # built first, so the publishes overlap
        checkouts.append((checkout, sbom))
    results: dict[str, str] = {}

    def publish(checkout: Checkout, sbom: str) -> None:
        flags = [f"--hostprocess-sbom-formats=['{sbom}']", "--no-hostprocess-provenance"]
        results[sbom] = checkout.pants(*flags, "publish", "examples:hello").stdout

    threads = [threading.Thread(target=publish, args=pair) for pair in checkouts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    digest = load_json(checkouts[0][0].dist / "examples" / "hello.image.json")["digest"]
    tag = digest.replace(":", "-")
    index = json.loads(
        skopeo_output(f"{anonymous_registry.host}/supply-chain/concurrent:{tag}", raw=True)
    )
    listed = sorted(entry["artifactType"] for entry in index["manifests"])
    assert listed == ["application/spdx+json", "application/vnd.cyclonedx+json"], results
