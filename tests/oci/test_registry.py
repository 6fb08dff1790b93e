"""Tests for the distribution-API client against real registries on loopback.

Every push goes to a real CNCF distribution registry (see registry_servers.py) and is
checked independently with skopeo: the served manifest must be our layout's bytes, every
tag must resolve to its digest, and nothing served may carry a platform. Request counts
come from a recording proxy rather than from the client's own counters wherever the test
is about what went over the wire.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from digests import sha256_of

from hostprocess.oci.auth import Credentials
from hostprocess.oci.layout import blob_path
from hostprocess.oci.registry import Progress, PushResult, RegistryClient, RegistryError, Retry
from hostprocess.oci.registry.challenges import Challenge, parse_challenges
from hostprocess.oci.registry.retry import retry_after
from hostprocess.oci.registry.transport import is_loopback
from hostprocess.oci.types import Compression
from hostprocess.oci.windows.layer import LayerFile

# Registered before its import, so that the helpers' own asserts explain their failures.
pytest.register_assert_rewrite("oci.registry_servers")
from oci.registry_servers import (  # noqa: E402; noqa: E402,
    BASIC_PASSWORD,
    BASIC_USER,
    CORRUPT,
    DROP_AFTER,
    FORWARD,
    REDIRECT,
    TOKEN_PASSWORD,
    TOKEN_USER,
    BuiltImage,
    FaultProxy,
    Recorded,
    RegistryServer,
    TlsFiles,
    TokenServer,
    assert_served,
    build_layout,
    layered_image,
    max_in_flight,
    random_faults,
    skopeo_inspect,
    unique_repository,
)

pytest_plugins = ["oci.registry_servers"]

MIB = 1 << 20
FAST_RETRY = Retry(total_seconds=20, first_delay=0.01, max_delay=0.2)


def assert_pushed(result: PushResult, host: str, repository: str, built: BuiltImage) -> None:
    expected = {f"{host}/{repository}@{built.image.digest}": built.image.digest}
    expected.update({f"{host}/{repository}:{tag}": built.image.digest for tag in built.tags})
    assert dict(result.references) == expected


# --- pure helpers -------------------------------------------------------------------


def test_challenge_with_quoted_commas_and_a_host_port_scope() -> None:
    header = (
        'Bearer realm="https://auth.example.com/token?a=1,b=2",service="registry.example.com",'
        'scope="repository:registry.example.com:5000/team/app:pull,push",error="insufficient_scope"'
    )
    assert parse_challenges([header]) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.example.com/token?a=1,b=2",
                "service": "registry.example.com",
                "scope": "repository:registry.example.com:5000/team/app:pull,push",
                "error": "insufficient_scope",
            },
        )
    ]


def test_several_challenges_unquoted_values_and_escapes() -> None:
    headers = [
        'Basic realm="Registry \\"Realm\\"", charset=UTF-8, '
        "BEARER realm=https://a/t , service = svc",
        "Negotiate",
    ]
    assert parse_challenges(headers) == [
        Challenge("basic", {"realm": 'Registry "Realm"', "charset": "UTF-8"}),
        Challenge("bearer", {"realm": "https://a/t", "service": "svc"}),
        Challenge("negotiate", {}),
    ]


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after("7") == 7.0
    in_a_minute = formatdate(time.time() + 60, usegmt=True)
    assert 55 < (retry_after(in_a_minute) or 0) <= 60
    assert retry_after(formatdate(time.time() - 60, usegmt=True)) == 0.0
    assert retry_after("soon") is None and retry_after(None) is None


@pytest.mark.parametrize(
    "host, expected",
    [
        ("localhost:5000", True),
        ("127.0.0.1", True),
        ("127.1.2.3:443", True),
        ("[::1]:5000", True),
        ("registry.example.com", False),
        ("10.0.0.1:5000", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_hosts(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_layout_with_a_missing_blob_is_refused_before_any_request(
    tmp_path: Path, small_image: BuiltImage
) -> None:
    broken = tmp_path / "broken"
    app_layer = json.loads(small_image.image.manifest)["layers"][1]["digest"]
    for source in small_image.layout.rglob("*"):
        if source.is_file() and source.name != app_layer.split(":")[1]:
            target = broken / source.relative_to(small_image.layout)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    client = RegistryClient("registry.invalid:5000")  # never contacted
    with pytest.raises(ValueError, match=f"blob {app_layer} is missing; the manifest says"):
        client.push(broken, "app", ["v1"])


# --- anonymous registry over plain HTTP -------------------------------------------------


def test_push_to_anonymous_registry(
    anonymous_registry: RegistryServer, small_image: BuiltImage, repository: str
) -> None:
    events: list[Progress] = []
    # One upload at a time, so that the order of events is defined (blob order).
    client = RegistryClient(anonymous_registry.host, upload_workers=1, progress=events.append)
    result = client.push(small_image.layout, repository, small_image.tags)
    assert_pushed(result, anonymous_registry.host, repository, small_image)
    assert (
        result.blobs_uploaded,
        result.blobs_skipped,
        result.blobs_mounted,
        result.tags_pushed,
    ) == (3, 0, 0, 2)
    layers = sum(small_image.layer_sizes)
    assert result.bytes_uploaded == layers + len(small_image.image.config)
    assert_served(anonymous_registry.host, repository, small_image)
    base = small_image.image.layers[0]
    assert str(events[0]) == f"blob-uploaded {base.digest} {base.size}/{base.size} bytes"
    kinds = [event.event for event in events]
    assert kinds.count("blob-uploaded") == 3 and kinds.count("tag-pushed") == 2
    assert kinds.index("manifest-pushed") > max(
        i for i, k in enumerate(kinds) if k == "blob-uploaded"
    )


def test_republish_uploads_nothing_and_keeps_tags(
    anonymous_registry: RegistryServer, proxy: FaultProxy, small_image: BuiltImage, repository: str
) -> None:
    first = RegistryClient(anonymous_registry.host).push(
        small_image.layout, repository, small_image.tags
    )
    proxy.records.clear()
    again = RegistryClient(proxy.host).push(small_image.layout, repository, small_image.tags)
    counters = (again.blobs_uploaded, again.bytes_uploaded, again.blobs_skipped, again.tags_pushed)
    assert counters == (0, 0, 3, 0)
    direct = {
        k.replace(proxy.host, anonymous_registry.host): v for k, v in again.references.items()
    }
    assert direct == dict(first.references)
    sent = [(r.method, r.path) for r in proxy.records if r.action == FORWARD]
    assert not [s for s in sent if s[0] in ("POST", "PATCH")], sent
    manifest_puts = [path for method, path in sent if method == "PUT"]
    assert manifest_puts == [f"/v2/{repository}/manifests/{small_image.image.digest}"]
    assert_served(anonymous_registry.host, repository, small_image)


def test_large_blob_goes_up_in_chunks(
    anonymous_registry: RegistryServer,
    proxy: FaultProxy,
    tmp_path: Path,
    cc0_path: Path,
    repository: str,
) -> None:
    payload = tmp_path / "payload.bin"
    with open(payload, "wb") as out:
        for _ in range(40):
            out.write(os.urandom(MIB))
    built = build_layout(
        tmp_path / "layout",
        cc0_path.read_bytes(),
        [LayerFile("big.bin", payload)],
        compression=Compression.NONE,
    )
    big = built.layer_sizes[1]
    assert big > 40 * MIB
    result = RegistryClient(proxy.host, chunk_size=8 * MIB).push(
        built.layout, repository, built.tags
    )
    assert result.blobs_uploaded == 3
    assert result.bytes_uploaded == sum(built.layer_sizes) + len(built.image.config)
    patches = [r.content_range for r in proxy.records if r.method == "PATCH"]
    chunks = -(-big // (8 * MIB))
    assert patches == [f"{i * 8 * MIB}-{min(big, (i + 1) * 8 * MIB) - 1}" for i in range(chunks)]
    assert_served(anonymous_registry.host, repository, built)
    layer_digest = json.loads(built.image.manifest)["layers"][1]["digest"]
    pulled = tmp_path / "pulled.blob"
    layer_size = json.loads(built.image.manifest)["layers"][1]["size"]
    RegistryClient(anonymous_registry.host).pull_blob(repository, layer_digest, layer_size, pulled)
    assert pulled.stat().st_size == big and sha256_of(pulled.read_bytes()) == layer_digest


def test_pull_manifest_and_blob_by_digest(
    anonymous_registry: RegistryServer, small_image: BuiltImage, repository: str, tmp_path: Path
) -> None:
    client = RegistryClient(anonymous_registry.host)
    client.push(small_image.layout, repository, ["v1"])
    assert client.pull_manifest(repository, small_image.image.digest) == small_image.image.manifest
    config_digest = small_image.image.config_descriptor.digest
    config_size = len(small_image.image.config)
    client.pull_blob(repository, config_digest, config_size, tmp_path / "config")
    assert (tmp_path / "config").read_bytes() == small_image.image.config
    with pytest.raises(RegistryError, match=r"BLOB_UNKNOWN|HTTP 404"):
        client.pull_blob(repository, sha256_of(b"never pushed"), 12, tmp_path / "absent")
    assert not (tmp_path / "absent").exists()


def test_cross_repository_mount(
    anonymous_registry: RegistryServer, small_image: BuiltImage, repository: str
) -> None:
    client = RegistryClient(anonymous_registry.host)
    client.push(small_image.layout, f"{repository}/source", ["v1"])
    result = client.push(
        small_image.layout,
        f"{repository}/copy",
        small_image.tags,
        mount_from=f"{repository}/source",
    )
    assert (result.blobs_mounted, result.blobs_uploaded, result.bytes_uploaded) == (3, 0, 0)
    assert_served(anonymous_registry.host, f"{repository}/copy", small_image)


def test_mount_from_a_repository_without_the_blobs_uploads_instead(
    anonymous_registry: RegistryServer, small_image: BuiltImage, repository: str
) -> None:
    client = RegistryClient(anonymous_registry.host)
    result = client.push(
        small_image.layout, repository, small_image.tags, mount_from=f"{repository}/empty"
    )
    assert (result.blobs_mounted, result.blobs_uploaded) == (0, 3)
    assert_served(anonymous_registry.host, repository, small_image)


# --- faults ------------------------------------------------------------------------------


def test_push_survives_dropped_connections_and_server_errors(
    anonymous_registry: RegistryServer,
    proxy: FaultProxy,
    tmp_path: Path,
    cc0_path: Path,
    repository: str,
) -> None:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(5 * MIB))
    built = build_layout(
        tmp_path / "layout",
        cc0_path.read_bytes(),
        [LayerFile("data.bin", payload)],
        compression=Compression.NONE,
    )
    proxy.policy = random_faults(seed=20240601, rate=0.3)
    # One upload at a time: the seed then meets the same sequence of requests on every run.
    client = RegistryClient(proxy.host, chunk_size=MIB, retry=FAST_RETRY, upload_workers=1)
    result = client.push(built.layout, repository, built.tags)
    assert result.references[f"{proxy.host}/{repository}:v1"] == built.image.digest
    injected = {r.action for r in proxy.records} - {FORWARD}
    assert {DROP_AFTER, "503", "429"} <= injected, injected  # the seed really exercised faults
    assert any(r.method == "PATCH" and r.action != FORWARD for r in proxy.records)
    starts: dict[str, list[str]] = {}
    for record in proxy.records:
        if record.method == "PATCH" and record.content_range:
            starts.setdefault(record.path, []).append(record.content_range.split("-")[0])
    resumed = [path for path, s in starts.items() if any(x != "0" and s.count(x) > 1 for x in s)]
    assert resumed, f"no upload resumed mid-blob on its own session: {starts}"
    assert_served(anonymous_registry.host, repository, built)


def test_registry_that_always_fails_gets_no_tag(
    anonymous_registry: RegistryServer, proxy: FaultProxy, small_image: BuiltImage, repository: str
) -> None:
    proxy.policy = lambda method, path: "503" if path != "/v2/" else FORWARD
    client = RegistryClient(
        proxy.host, retry=Retry(total_seconds=2, first_delay=0.01, max_delay=0.1)
    )
    with pytest.raises(
        RegistryError, match=rf"at {re.escape(proxy.host)} failed after [0-9]+ attempts: .*HTTP 503"
    ) as raised:
        client.push(small_image.layout, repository, small_image.tags)
    assert raised.value.status == 503
    assert not [r for r in proxy.records if "/manifests/" in r.path]
    result = skopeo_inspect(f"{anonymous_registry.host}/{repository}:v1", raw=True)
    assert result.returncode != 0


def test_permanent_blob_error_stops_before_the_manifest(
    anonymous_registry: RegistryServer, proxy: FaultProxy, small_image: BuiltImage, repository: str
) -> None:
    uploads: list[str] = []

    def fail_second_upload(method: str, path: str) -> str:
        if method == "PUT" and "/blobs/uploads/" in path:
            uploads.append(path)
            if len(uploads) == 2:  # the app layer: the base layer went up, the config never will
                return "400"
        return FORWARD

    proxy.policy = fail_second_upload
    with pytest.raises(RegistryError, match=r"HTTP 400: INJECTED: injected fault") as raised:
        RegistryClient(proxy.host, retry=FAST_RETRY, upload_workers=1).push(
            small_image.layout, repository, small_image.tags
        )
    assert raised.value.codes == ("INJECTED",)
    assert len(uploads) == 2, "a permanent error must not be retried"
    assert not [r for r in proxy.records if "/manifests/" in r.path]
    assert skopeo_inspect(f"{anonymous_registry.host}/{repository}:v1", raw=True).returncode != 0


def test_downloads_follow_redirects_to_another_host(
    anonymous_registry: RegistryServer,
    proxy: FaultProxy,
    small_image: BuiltImage,
    repository: str,
    tmp_path: Path,
) -> None:
    RegistryClient(anonymous_registry.host).push(small_image.layout, repository, ["v1"])
    proxy.policy = lambda method, path: REDIRECT if "/blobs/" in path else FORWARD
    config_digest = small_image.image.config_descriptor.digest
    client = RegistryClient(proxy.host)
    config_size = len(small_image.image.config)
    client.pull_blob(repository, config_digest, config_size, tmp_path / "config")
    assert (tmp_path / "config").read_bytes() == small_image.image.config
    assert [r.action for r in proxy.records if "/blobs/" in r.path] == [REDIRECT]


def test_corrupted_download_is_rejected(
    anonymous_registry: RegistryServer,
    proxy: FaultProxy,
    small_image: BuiltImage,
    repository: str,
    tmp_path: Path,
) -> None:
    RegistryClient(anonymous_registry.host).push(small_image.layout, repository, ["v1"])
    proxy.policy = lambda method, path: CORRUPT if "/blobs/" in path else FORWARD
    config_digest = small_image.image.config_descriptor.digest
    client = RegistryClient(proxy.host, retry=FAST_RETRY)
    config_size = len(small_image.image.config)
    with pytest.raises(RegistryError, match="different content"):
        client.pull_blob(repository, config_digest, config_size, tmp_path / "config")
    assert not (tmp_path / "config").exists()
    # A complete body with another digest is tampering: not worth another try.
    assert [r.method for r in proxy.records if "/blobs/" in r.path] == ["GET"]


# --- concurrent uploads ------------------------------------------------------------------


def _blob_requests(proxy: FaultProxy) -> list[Recorded]:
    return [r for r in proxy.records if "/blobs/" in r.path]


def _manifest_requests(proxy: FaultProxy) -> list[Recorded]:
    return [r for r in proxy.records if "/manifests/" in r.path]


def _blob_count(built: BuiltImage) -> int:
    return len(built.image.layers) + 1


def _assert_quiet_after_failure(proxy: FaultProxy) -> None:
    """Every request the push made was answered before it raised, and none follows."""
    seen = len(proxy.records)
    assert all(r.answered is not None for r in proxy.records)
    time.sleep(0.5)
    assert len(proxy.records) == seen, proxy.records[seen:]


@pytest.mark.parametrize("workers", [2, 4])
def test_blob_uploads_overlap_up_to_the_bound_and_precede_the_manifest(
    anonymous_registry: RegistryServer,
    proxy: FaultProxy,
    tmp_path: Path,
    cc0_path: Path,
    repository: str,
    workers: int,
) -> None:
    built = layered_image(tmp_path / "layout", cc0_path, layers=6)
    proxy.latency = 0.2  # every request takes a while, so uploads that can overlap do
    inside, most_inside = 0, 0

    def progress(event: Progress) -> None:
        nonlocal inside, most_inside
        inside += 1
        most_inside = max(most_inside, inside)
        time.sleep(0.01)
        inside -= 1

    client = RegistryClient(proxy.host, upload_workers=workers, progress=progress)
    result = client.push(built.layout, repository, built.tags)
    assert (result.blobs_uploaded, result.tags_pushed) == (_blob_count(built), 2)
    assert max_in_flight(_blob_requests(proxy)) == workers
    last_blob_answer = max(r.answered or 0.0 for r in _blob_requests(proxy))
    assert min(r.arrived for r in _manifest_requests(proxy)) > last_blob_answer
    assert most_inside == 1, "the progress callback was entered by two threads at once"
    assert_served(anonymous_registry.host, repository, built)


def test_concurrent_push_matches_a_sequential_one(
    anonymous_registry: RegistryServer, tmp_path: Path, cc0_path: Path, repository: str
) -> None:
    built = layered_image(tmp_path / "layout", cc0_path, layers=4)
    outcomes = {}
    for workers in (1, 4):
        target = f"{repository}/workers-{workers}"
        events: list[Progress] = []
        client = RegistryClient(
            anonymous_registry.host, upload_workers=workers, progress=events.append
        )
        first = client.push(built.layout, target, built.tags)
        again = client.push(built.layout, target, built.tags)
        assert_served(anonymous_registry.host, target, built)
        outcomes[workers] = [
            sorted(str(event).replace(target, "REPO") for event in events),
            {k.replace(target, "REPO"): v for k, v in first.references.items()},
            dataclasses.replace(first, references={}),
            dataclasses.replace(again, references={}),
        ]
    assert outcomes[4] == outcomes[1]
    first_counts = outcomes[1][2]
    assert isinstance(first_counts, PushResult)
    expected_bytes = sum(built.layer_sizes) + len(built.image.config)
    assert (first_counts.blobs_uploaded, first_counts.bytes_uploaded) == (6, expected_bytes)


def test_a_blob_failing_past_its_retries_stops_the_others_and_pushes_no_manifest(
    anonymous_registry: RegistryServer,
    proxy: FaultProxy,
    tmp_path: Path,
    cc0_path: Path,
    repository: str,
) -> None:
    built = layered_image(tmp_path / "layout", cc0_path, layers=6)
    failing = built.image.layers[1].digest
    proxy.latency = 0.2
    proxy.policy = lambda method, path: "500" if path.endswith(f"/blobs/{failing}") else FORWARD
    client = RegistryClient(
        proxy.host,
        upload_workers=2,
        retry=Retry(total_seconds=0.5, first_delay=0.05, max_delay=0.1),
    )
    with pytest.raises(
        RegistryError,
        match=rf"check blob {failing} at {re.escape(proxy.host)} failed after [0-9]+ attempts: "
        r".*HTTP 500",
    ) as raised:
        client.push(built.layout, repository, built.tags)
    assert raised.value.status == 500
    _assert_quiet_after_failure(proxy)
    assert not _manifest_requests(proxy)
    checked = {r.path for r in proxy.records if r.method == "HEAD"}
    assert len(checked) < _blob_count(built), "blobs still queued must not start"
    assert skopeo_inspect(f"{anonymous_registry.host}/{repository}:v1", raw=True).returncode != 0


def test_the_first_permanent_failure_is_raised_and_stops_a_retrying_sibling(
    anonymous_registry: RegistryServer,
    proxy: FaultProxy,
    tmp_path: Path,
    cc0_path: Path,
    repository: str,
) -> None:
    built = layered_image(tmp_path / "layout", cc0_path, layers=2)
    retrying, failing = built.image.layers[1].digest, built.image.layers[2].digest

    def policy(method: str, path: str) -> str:
        if path.endswith(f"/blobs/{retrying}"):
            return "503"
        return "400" if path.endswith(f"/blobs/{failing}") else FORWARD

    proxy.policy = policy
    client = RegistryClient(
        proxy.host, retry=Retry(total_seconds=120, first_delay=0.05, max_delay=0.2)
    )
    started = time.monotonic()
    with pytest.raises(
        RegistryError, match=rf"HEAD blob {failing} of {repository} at .* failed: HTTP 400"
    ) as raised:
        client.push(built.layout, repository, built.tags)
    assert time.monotonic() - started < 30, "the sibling kept retrying for its whole budget"
    assert raised.value.status == 400
    _assert_quiet_after_failure(proxy)
    assert not _manifest_requests(proxy)


def test_a_blob_that_does_not_match_its_digest_leaves_no_manifest(
    anonymous_registry: RegistryServer,
    proxy: FaultProxy,
    tmp_path: Path,
    cc0_path: Path,
    repository: str,
) -> None:
    built = layered_image(tmp_path / "layout", cc0_path, layers=3)
    corrupt = built.image.layers[2].digest
    path = built.layout / blob_path(corrupt)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # the same size, so only the registry's digest check can tell
    path.write_bytes(bytes(data))
    with pytest.raises(
        RegistryError,
        match=rf"PUT blob {corrupt} to {repository} at .* failed: HTTP 400: DIGEST_INVALID",
    ) as raised:
        RegistryClient(proxy.host, retry=FAST_RETRY).push(built.layout, repository, built.tags)
    assert raised.value.codes == ("DIGEST_INVALID",)
    _assert_quiet_after_failure(proxy)
    assert not _manifest_requests(proxy)
    assert skopeo_inspect(f"{anonymous_registry.host}/{repository}:v1", raw=True).returncode != 0


def test_concurrent_push_survives_random_faults(
    anonymous_registry: RegistryServer,
    proxy: FaultProxy,
    tmp_path: Path,
    cc0_path: Path,
    repository: str,
) -> None:
    built = layered_image(tmp_path / "layout", cc0_path, layers=5)
    proxy.policy = random_faults(seed=20240602, rate=0.3)
    result = RegistryClient(proxy.host, retry=FAST_RETRY).push(built.layout, repository, built.tags)
    assert result.references[f"{proxy.host}/{repository}:v1"] == built.image.digest
    assert {r.action for r in proxy.records} - {FORWARD}, "no fault was injected"
    assert_served(anonymous_registry.host, repository, built)


# --- htpasswd over TLS -------------------------------------------------------------------


def test_push_to_basic_auth_tls_registry(
    basic_registry: RegistryServer, tls_files: TlsFiles, small_image: BuiltImage, repository: str
) -> None:
    client = RegistryClient(
        basic_registry.host,
        credentials=Credentials(BASIC_USER, BASIC_PASSWORD),
        ca_bundle=tls_files.ca_cert,
    )
    result = client.push(small_image.layout, repository, small_image.tags)
    assert_pushed(result, basic_registry.host, repository, small_image)
    assert_served(
        basic_registry.host,
        repository,
        small_image,
        creds=f"{BASIC_USER}:{BASIC_PASSWORD}",
        cert_dir=tls_files.cert_dir,
    )
    again = client.push(small_image.layout, repository, small_image.tags)
    assert (again.bytes_uploaded, again.blobs_skipped, again.tags_pushed) == (0, 3, 0)


def test_tls_certificate_is_verified(
    basic_registry: RegistryServer, small_image: BuiltImage, repository: str
) -> None:
    """Loopback falls back to plain HTTP only when TLS is absent, never when it fails to verify."""
    client = RegistryClient(
        basic_registry.host, credentials=Credentials(BASIC_USER, BASIC_PASSWORD)
    )
    with pytest.raises(RegistryError, match=r"did not verify.*CA bundle"):
        client.push(small_image.layout, repository, small_image.tags)


def test_insecure_registry_skips_certificate_verification(
    basic_registry: RegistryServer, tls_files: TlsFiles, small_image: BuiltImage, repository: str
) -> None:
    """`insecure` is the explicit opt-in to unverified TLS (here: a CA the client lacks)."""
    client = RegistryClient(
        basic_registry.host, credentials=Credentials(BASIC_USER, BASIC_PASSWORD), insecure=True
    )
    result = client.push(small_image.layout, repository, small_image.tags)
    assert_pushed(result, basic_registry.host, repository, small_image)


def test_basic_auth_registry_without_credentials(
    basic_registry: RegistryServer, tls_files: TlsFiles, small_image: BuiltImage, repository: str
) -> None:
    client = RegistryClient(basic_registry.host, ca_bundle=tls_files.ca_cert)
    with pytest.raises(
        RegistryError, match=f"{re.escape(basic_registry.host)} requires authentication"
    ):
        client.push(small_image.layout, repository, small_image.tags)


# --- bearer tokens ---------------------------------------------------------------------------


def test_push_to_token_registry_and_mount(
    token_registry: RegistryServer,
    fresh_token_server: TokenServer,
    small_image: BuiltImage,
    repository: str,
) -> None:
    client = RegistryClient(
        token_registry.host, credentials=Credentials(TOKEN_USER, TOKEN_PASSWORD)
    )
    result = client.push(small_image.layout, repository, small_image.tags)
    assert_pushed(result, token_registry.host, repository, small_image)
    assert_served(
        token_registry.host, repository, small_image, creds=f"{TOKEN_USER}:{TOKEN_PASSWORD}"
    )
    ours = [
        r for r in fresh_token_server.requests if f"repository:{repository}:pull,push" in r.scopes
    ]
    assert (
        len(ours) == 1 and ours[0].method == "GET" and ours[0].user == TOKEN_USER
    )  # cached per scope
    mounted = client.push(small_image.layout, f"{repository}/copy", ["v1"], mount_from=repository)
    assert (mounted.blobs_mounted, mounted.bytes_uploaded) == (3, 0)
    scopes = fresh_token_server.requests[-1].scopes
    assert sorted(scopes) == sorted(
        [f"repository:{repository}/copy:pull,push", f"repository:{repository}:pull"]
    )
