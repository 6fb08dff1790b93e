"""The registry client against hostile and broken registries: what must never happen.

Each test starts its own servers on loopback (`hostile_servers.py`; a real `docker-registry`
behind them where a push must really land) and asserts the security property directly:
which origin saw which `Authorization` header, how much memory a read took, how long a
request could be held, and that a cut-off body is retried while a wrong one is not.
"""
from __future__ import annotations

import base64
import json
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from digests import sha256_of

from hostprocess.oci import cli
from hostprocess.oci.auth import Credentials
from hostprocess.oci.registry import RegistryClient, RegistryError, Retry
from hostprocess.oci.registry.deadline import Deadlines
from hostprocess.oci.registry.transport import MAX_BODY_BYTES

pytest.register_assert_rewrite("oci.registry_servers", "oci.hostile_servers")
from oci.hostile_servers import (  # noqa: E402
    Handler,
    ScriptedServer,
    challenge,
    endless,
    forward,
    reply,
    stream,
    trickle,
    trickle_status_line,
)
from oci.registry_servers import (  # noqa: E402
    BuiltImage,
    RegistryServer,
    TlsFiles,
    assert_served,
    unique_repository,
)

pytest_plugins = ["oci.registry_servers"]

USER, PASSWORD = "carol", "hostile-test-Pa55"
CREDENTIALS = Credentials(USER, PASSWORD)
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
FAST_RETRY = Retry(total_seconds=5, first_delay=0.05, max_delay=0.2)
REPOSITORY = "team/agent"
BLOB = b"a blob the registry serves\n" * 40
BLOB_DIGEST = sha256_of(BLOB)


def start(servers: list[ScriptedServer], *args: object, **kwargs: object) -> ScriptedServer:
    server = ScriptedServer(*args, **kwargs)  # type: ignore[arg-type]
    servers.append(server)
    return server


def basic_required(handler: Handler) -> bool:
    """Answer 401 with a Basic challenge unless the request has our credentials."""
    if handler.headers.get("Authorization") == BASIC:
        return False
    challenge(handler, 'Basic realm="hostile-test"')
    return True


# --- credentials stay with the registry's origin ---------------------------------------


def test_an_upload_location_on_another_origin_gets_no_credentials(
    anonymous_registry: RegistryServer,
    small_image: BuiltImage,
    servers: list[ScriptedServer],
    request: pytest.FixtureRequest,
) -> None:
    """A registry that needs Basic credentials sends its upload sessions to another host:
    the uploads go there without them (as containerd does), and the push still lands."""

    def relay(handler: Handler) -> None:
        status, headers, body = forward(handler, anonymous_registry.host)
        reply(handler, status, body, headers)

    elsewhere = start(servers, relay)

    def front(handler: Handler) -> None:
        if basic_required(handler):
            return
        status, headers, body = forward(handler, anonymous_registry.host)
        moved = []
        for name, value in headers:
            if name.lower() == "location" and "/blobs/uploads/" in value:
                value = urlunsplit(urlsplit(value)._replace(netloc=elsewhere.host))
            moved.append((name, value))
        reply(handler, status, body, moved)

    registry = start(servers, front)
    repository = unique_repository(request.node.name)
    client = RegistryClient(registry.host, credentials=CREDENTIALS, retry=FAST_RETRY)
    client.push(small_image.layout, repository, small_image.tags)

    uploads = [seen for seen in elsewhere.requests if "/blobs/uploads/" in seen.path]
    assert [seen.method for seen in uploads] == ["PUT"] * (len(small_image.image.layers) + 1)
    assert elsewhere.authorizations() == []
    assert set(registry.authorizations()) == {BASIC}  # the registry itself did get them
    assert_served(anonymous_registry.host, repository, small_image)


def test_an_https_to_http_redirect_on_the_same_host_and_port_drops_credentials(
    tls_files: TlsFiles, servers: list[ScriptedServer], tmp_path: Path
) -> None:
    def registry(handler: Handler) -> None:
        if not handler.over_tls:
            reply(handler, 200, BLOB)  # the downgraded request: it must come without secrets
        elif not basic_required(handler):
            if handler.path == "/v2/":
                reply(handler, 200, b"{}")
            else:
                reply(handler, 307, headers=[("Location", f"http://{server.host}/storage/blob")])

    server = start(servers, registry, tls=tls_files, dual=True)
    client = RegistryClient(server.host, credentials=CREDENTIALS, ca_bundle=tls_files.ca_cert)
    client.pull_blob(REPOSITORY, BLOB_DIGEST, len(BLOB), tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == BLOB
    plain = [seen for seen in server.requests if not seen.tls]
    assert [seen.path for seen in plain] == ["/storage/blob"]
    assert "authorization" not in plain[0].headers
    assert any(s.headers.get("authorization") == BASIC for s in server.requests if s.tls)


@pytest.mark.parametrize("via", ["v2-redirect", "redirect", "upload-location"])
def test_another_origins_challenge_is_never_learnt(
    via: str,
    small_image: BuiltImage,
    servers: list[ScriptedServer],
    tmp_path: Path,
) -> None:
    """Another origin answering 401 with its own challenge gets no credentials, and neither
    does the token service it names: the request fails at once, naming that origin."""
    token_service = start(servers, lambda h: reply(h, 200, b'{"token": "stolen"}'))
    elsewhere = start(
        servers,
        lambda h: challenge(h, f'Bearer realm="{token_service.url()}/token",service="evil"'),
    )

    def registry(handler: Handler) -> None:
        if via == "v2-redirect":
            reply(handler, 307, headers=[("Location", f"{elsewhere.url()}/v2/")])
        elif basic_required(handler):
            return
        elif handler.path == "/v2/":
            reply(handler, 200, b"{}")
        elif handler.command == "HEAD":
            reply(handler, 404)
        elif handler.command == "GET":
            reply(handler, 307, headers=[("Location", f"{elsewhere.url()}/storage/blob")])
        elif handler.command == "POST":
            reply(handler, 202, headers=[("Location", f"{elsewhere.url()}/upload/1")])
        else:
            reply(handler, 500)

    server = start(servers, registry)
    client = RegistryClient(server.host, credentials=CREDENTIALS, retry=FAST_RETRY)
    began = time.monotonic()
    with pytest.raises(RegistryError, match=rf"{elsewhere.host}.* asked for credentials"):
        if via == "upload-location":
            client.push(small_image.layout, REPOSITORY, ["v1"])
        else:
            client.pull_blob(REPOSITORY, BLOB_DIGEST, len(BLOB), tmp_path / "blob")
    assert time.monotonic() - began < 3, "a refused challenge is not retried"
    assert elsewhere.requests and elsewhere.authorizations() == []
    assert token_service.requests == []
    assert set(server.authorizations()) == (set() if via == "v2-redirect" else {BASIC})


@pytest.mark.parametrize("insecure", [False, True])
def test_a_tls_registry_with_a_plain_http_token_service(
    insecure: bool, tls_files: TlsFiles, servers: list[ScriptedServer]
) -> None:
    """Credentials are not sent in cleartext to a token realm over HTTP, unless the
    registry is marked insecure (then the user chose it, and the token request goes)."""
    token_service = start(servers, lambda h: reply(h, 200, b'{"token": "t0k3n"}'))
    realm = f'Bearer realm="{token_service.url()}/token",service="registry"'

    def registry(handler: Handler) -> None:
        if handler.headers.get("Authorization") != "Bearer t0k3n":
            challenge(handler, realm)
        else:
            reply(handler, 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')

    server = start(servers, registry, tls=tls_files)
    client = RegistryClient(
        server.host,
        credentials=CREDENTIALS,
        ca_bundle=tls_files.ca_cert,
        insecure=insecure,
        retry=FAST_RETRY,
    )
    digest = sha256_of(b"a manifest")
    if insecure:
        with pytest.raises(RegistryError, match="MANIFEST_UNKNOWN"):
            client.pull_manifest(REPOSITORY, digest)
        assert token_service.authorizations() == [BASIC]
    else:
        with pytest.raises(RegistryError, match=r"plain HTTP.*not sent.*insecure = true"):
            client.pull_manifest(REPOSITORY, digest)
        assert token_service.requests == []


# --- every read is bounded -----------------------------------------------------------


@pytest.mark.parametrize("declared", [False, True], ids=["endless", "declared-256MiB"])
def test_a_huge_manifest_is_refused_within_the_memory_cap(
    declared: bool, servers: list[ScriptedServer]
) -> None:
    taken: list[int] = []

    def registry(handler: Handler) -> None:
        if handler.path == "/v2/":
            reply(handler, 200, b"{}")
        else:
            taken.append(stream(handler, endless(), length=256 << 20 if declared else None))

    server = start(servers, registry)
    client = RegistryClient(server.host, retry=FAST_RETRY)
    tracemalloc.start()
    try:
        with pytest.raises(RegistryError, match=r"over the 4 MiB this client reads into memory"):
            client.pull_manifest(REPOSITORY, sha256_of(b"anything"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * MAX_BODY_BYTES + (2 << 20), f"peak {peak} bytes"
    time.sleep(0.5)  # the server notices the hang-up
    assert len(taken) == 1, "a body that is too large is refused, not retried"
    if declared:  # refused from its Content-Length, before reading any of it
        assert peak < MAX_BODY_BYTES // 2, f"peak {peak} bytes"


@pytest.mark.parametrize("declared", [False, True], ids=["endless", "declared-too-long"])
def test_a_blob_body_longer_than_its_descriptor_is_cut_off(
    declared: bool, servers: list[ScriptedServer], tmp_path: Path
) -> None:
    def registry(handler: Handler) -> None:
        if handler.path == "/v2/":
            reply(handler, 200, b"{}")
        else:
            stream(handler, endless(BLOB), length=100 * len(BLOB) if declared else None)

    server = start(servers, registry)
    destination = tmp_path / "blob"
    began = time.monotonic()
    with pytest.raises(RegistryError, match=rf"{len(BLOB)}"):
        RegistryClient(server.host, retry=FAST_RETRY).pull_blob(
            REPOSITORY, BLOB_DIGEST, len(BLOB), destination
        )
    assert time.monotonic() - began < 3
    assert list(tmp_path.iterdir()) == []  # neither the blob nor a partial file


# --- every request has a deadline ------------------------------------------------------

DEADLINES = Deadlines(request_seconds=1.5)
SHORT_BUDGET = Retry(total_seconds=3, first_delay=0.05, max_delay=0.1)


@pytest.mark.parametrize("where", ["status-line", "body"])
def test_a_trickling_server_cannot_hold_a_request(
    where: str, servers: list[ScriptedServer]
) -> None:
    manifest = b'{"schemaVersion": 2}'

    def registry(handler: Handler) -> None:
        if handler.path == "/v2/":
            reply(handler, 200, b"{}")
        elif where == "status-line":
            trickle_status_line(handler, 0.4, count=17)
        else:
            stream(handler, trickle(manifest, 0.4), length=len(manifest))

    server = start(servers, registry)
    client = RegistryClient(server.host, deadlines=DEADLINES, retry=SHORT_BUDGET)
    began = time.monotonic()
    with pytest.raises(RegistryError) as raised:
        client.pull_manifest(REPOSITORY, sha256_of(manifest))
    elapsed = time.monotonic() - began
    message = str(raised.value)
    assert server.host in message and "within 1.5 s (the request's deadline)" in message
    # Every try ends at its deadline, and no try starts once the budget is spent.
    assert DEADLINES.request_seconds < elapsed < SHORT_BUDGET.total_seconds + 2 * 1.5 + 1
    assert len([seen for seen in server.requests if seen.path != "/v2/"]) >= 2


def test_a_request_that_misses_its_deadline_is_retried(servers: list[ScriptedServer]) -> None:
    manifest = b'{"schemaVersion": 2, "note": "the second try is served at once"}'

    def registry(handler: Handler) -> None:
        if handler.path == "/v2/":
            reply(handler, 200, b"{}")
        elif len(server.requests) == 2:
            stream(handler, trickle(manifest, 0.5), length=len(manifest))
        else:
            reply(handler, 200, manifest)

    server = start(servers, registry)
    client = RegistryClient(server.host, deadlines=DEADLINES, retry=Retry(total_seconds=20))
    assert client.pull_manifest(REPOSITORY, sha256_of(manifest)) == manifest
    assert len(server.requests) == 3  # /v2/, the try that timed out, the one that worked


def test_a_blob_gets_time_for_its_size_at_the_minimum_throughput(
    servers: list[ScriptedServer], tmp_path: Path
) -> None:
    """A slow but steady download outlasts `request_seconds`: its deadline grows with it."""
    blob = bytes(range(256)) * 64  # 16 KiB, at 4 KiB every 0.5 s: 2 s > 1.5 s
    chunks = [blob[i : i + 4096] for i in range(0, len(blob), 4096)]

    def slowly() -> Iterator[bytes]:
        for chunk in chunks:
            time.sleep(0.5)
            yield chunk

    def registry(handler: Handler) -> None:
        if handler.path == "/v2/":
            reply(handler, 200, b"{}")
        else:
            stream(handler, slowly(), length=len(blob))

    server = start(servers, registry)
    deadlines = Deadlines(request_seconds=1.5, min_throughput=2048)  # +8 s for 16 KiB
    client = RegistryClient(server.host, deadlines=deadlines, retry=SHORT_BUDGET)
    client.pull_blob(REPOSITORY, sha256_of(blob), len(blob), tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == blob
    assert len(server.requests) == 2  # /v2/ and one GET: never cut off


def test_the_pull_command_takes_its_deadline_from_its_flags(
    servers: list[ScriptedServer], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What Pants runs: `[hostprocess].registry_timeout` reaches the tool as `--timeout`."""
    manifest = b'{"schemaVersion": 2}'

    def registry(handler: Handler) -> None:
        if handler.path == "/v2/":
            reply(handler, 200, b"{}")
        elif len(server.requests) == 2:
            stream(handler, trickle(manifest, 1.0), length=len(manifest))  # 20 s in all
        else:
            reply(handler, 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')

    server = start(servers, registry)
    reference = f"{server.host}/{REPOSITORY}@{sha256_of(manifest)}"
    argv = ["pull", "--reference", reference, "--architecture", "amd64", "--out", str(tmp_path)]
    began = time.monotonic()
    assert cli.main([*argv, "--timeout", "1", "--min-throughput", "1024"]) == 1
    assert time.monotonic() - began < 10
    assert "within 1 s (the request's deadline); retrying" in caplog.text


# --- a body cut short is not tampering -------------------------------------------------


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "close-delimited"])
def test_a_connection_dropped_mid_blob_is_retried(
    declared: bool, servers: list[ScriptedServer], tmp_path: Path
) -> None:
    def registry(handler: Handler) -> None:
        if handler.path == "/v2/":
            reply(handler, 200, b"{}")
        elif len(server.requests) == 2:
            stream(handler, [BLOB[: len(BLOB) // 2]], length=len(BLOB) if declared else None)
        else:
            stream(handler, [BLOB], length=len(BLOB))

    server = start(servers, registry)
    client = RegistryClient(server.host, retry=FAST_RETRY)
    client.pull_blob(REPOSITORY, BLOB_DIGEST, len(BLOB), tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == BLOB
    assert [seen.method for seen in server.requests] == ["GET", "GET", "GET"]


def test_a_manifest_cut_short_is_retried_not_called_tampered(
    servers: list[ScriptedServer],
) -> None:
    manifest = json.dumps({"schemaVersion": 2, "layers": []}).encode()

    def registry(handler: Handler) -> None:
        if handler.path == "/v2/":
            reply(handler, 200, b"{}")
        elif len(server.requests) == 2:
            stream(handler, [manifest[:10]], length=len(manifest))
        else:
            reply(handler, 200, manifest)

    server = start(servers, registry)
    client = RegistryClient(server.host, retry=FAST_RETRY)
    assert client.pull_manifest(REPOSITORY, sha256_of(manifest)) == manifest
    assert len(server.requests) == 3
