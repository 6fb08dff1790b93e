"""Attaching documents to an image as OCI referrers, and listing them.

Against the real `docker-registry` 2.8 on loopback (it has no referrers API, so the client
keeps the referrers tag schema), checked with skopeo and plain `urllib` rather than our
client; against `MemoryRegistry`, a small registry written here that has the referrers API
(it answers `OCI-Subject` and serves `/referrers/`) and honours `If-Match`; and against
hostile servers, for the bounds, deadlines and credential rules every registry read obeys.
"""
from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, urlsplit

import pytest
from digests import sha256_of

from hostprocess.oci.auth import Credentials
from hostprocess.oci.image import Descriptor
from hostprocess.oci.registry import Attachment, RegistryClient, RegistryError, Retry
from hostprocess.oci.registry.deadline import Deadlines
from hostprocess.oci.registry.referrers import referrer_manifest, referrers_tag

pytest.register_assert_rewrite("oci.registry_servers", "oci.hostile_servers")
from oci.hostile_servers import (  # noqa: E402
    Handler,
    ScriptedServer,
    challenge,
    endless,
    reply,
    stream,
    trickle_status_line,
)
from oci.registry_servers import (  # noqa: E402
    FORWARD,
    BuiltImage,
    FaultProxy,
    RegistryServer,
    assert_served,
    skopeo_output,
)

pytest_plugins = ["oci.registry_servers"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
SPDX = "application/spdx+json"
IN_TOTO = "application/vnd.in-toto+json"
CYCLONEDX = "application/vnd.cyclonedx+json"
FAST_RETRY = Retry(total_seconds=5, first_delay=0.05, max_delay=0.2)
USER, PASSWORD = "dave", "referrers-test-Pa55"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

SBOM = Attachment(
    SPDX,
    SPDX,
    b'{"spdxVersion": "SPDX-2.3", "name": "hello"}\n',
    {"org.example.document": "sbom"},
    title="hello.spdx.json",
)
PROVENANCE = Attachment(
    IN_TOTO,
    IN_TOTO,
    b'{"_type": "https://in-toto.io/Statement/v1"}\n',
    {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v1"},
)
CDX = Attachment(CYCLONEDX, CYCLONEDX, b'{"bomFormat": "CycloneDX", "specVersion": "1.6"}\n')


def subject_of(built: BuiltImage) -> Descriptor:
    return Descriptor(OCI_MANIFEST, sha256_of(built.image.manifest), len(built.image.manifest))


def tag_of(digest: str) -> str:
    return "sha256-" + digest.split(":", 1)[1]


# --- what is pushed ---------------------------------------------------------------------


def test_the_referrer_manifest_is_canonical_and_points_at_the_image() -> None:
    subject = Descriptor(OCI_MANIFEST, sha256_of(b"image"), 5)
    manifest = referrer_manifest(subject, SBOM)
    assert manifest == referrer_manifest(subject, SBOM)  # a republish finds the same digest
    parsed = json.loads(manifest)
    assert manifest == json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    assert parsed == {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SPDX,
        "config": {"mediaType": OCI_EMPTY, "digest": sha256_of(b"{}"), "size": 2},
        "layers": [
            {
                "mediaType": SPDX,
                "digest": sha256_of(SBOM.content),
                "size": len(SBOM.content),
                "annotations": {"org.opencontainers.image.title": "hello.spdx.json"},
            }
        ],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject.digest, "size": 5},
        "annotations": {"org.example.document": "sbom"},
    }
    assert "annotations" not in json.loads(referrer_manifest(subject, CDX))
    assert referrers_tag(subject.digest) == tag_of(subject.digest)


@pytest.mark.parametrize("field_name", ["artifact_type", "media_type"])
def test_an_attachment_needs_media_types(field_name: str) -> None:
    fields: dict[str, Any] = {"artifact_type": SPDX, "media_type": SPDX, "content": b"{}"}
    fields[field_name] = "not a media type"
    with pytest.raises(ValueError, match="is not a media type"):
        Attachment(**fields)


def test_an_attachment_from_a_file_is_titled_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "image.provenance.json"
    path.write_bytes(PROVENANCE.content)
    read = Attachment.from_file(path, IN_TOTO, annotations={"k": "v"})
    assert (read.media_type, read.content, read.title) == (IN_TOTO, PROVENANCE.content, path.name)
    assert dict(read.annotations) == {"k": "v"}


# --- the real docker-registry: the referrers tag schema -----------------------------------


def raw(host: str, reference: str) -> bytes:
    """What skopeo, not our client, reads under `reference`."""
    return skopeo_output(f"{host}/{reference}", raw=True)


def blob(host: str, repository: str, digest: str) -> bytes:
    with urllib.request.urlopen(f"http://{host}/v2/{repository}/blobs/{digest}", timeout=30) as r:
        return bytes(r.read())


def pushed(host: str, repository: str, built: BuiltImage) -> Descriptor:
    RegistryClient(host, retry=FAST_RETRY).push(built.layout, repository, built.tags)
    return subject_of(built)


def test_attachments_are_listed_in_the_tag_schema_index(
    anonymous_registry: RegistryServer, small_image: BuiltImage, repository: str
) -> None:
    host = anonymous_registry.host
    subject = pushed(host, repository, small_image)
    result = RegistryClient(host, retry=FAST_RETRY).attach(repository, subject, [SBOM, PROVENANCE])

    assert not result.referrers_api and result.index_tag == tag_of(subject.digest)
    assert result.index_writes == 1
    assert [a.uploaded for a in result.attached] == [True, True]
    assert result.blobs_uploaded == 3  # the empty config and the two documents
    index = json.loads(raw(host, f"{repository}:{tag_of(subject.digest)}"))
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    entries = index["manifests"]
    assert [e["digest"] for e in entries] == [a.digest for a in result.attached]
    for entry, attachment, attached in zip(entries, [SBOM, PROVENANCE], result.attached):
        assert attached.reference == f"{host}/{repository}@{entry['digest']}"
        assert entry["artifactType"] == attachment.artifact_type
        assert entry["annotations"] == dict(attachment.annotations)
        manifest = raw(host, f"{repository}@{entry['digest']}")
        assert sha256_of(manifest) == entry["digest"] and len(manifest) == entry["size"]
        assert entry["mediaType"] == OCI_MANIFEST
        parsed = json.loads(manifest)
        assert parsed["subject"] == {
            "mediaType": OCI_MANIFEST,
            "digest": subject.digest,
            "size": subject.size,
        }
        assert parsed["artifactType"] == attachment.artifact_type
        assert parsed["annotations"] == entry["annotations"]
        assert parsed["config"]["digest"] == sha256_of(b"{}")
        assert blob(host, repository, parsed["config"]["digest"]) == b"{}"
        [layer] = parsed["layers"]
        assert blob(host, repository, layer["digest"]) == attachment.content
    assert_served(host, repository, small_image)  # the image and its digest are untouched

    client = RegistryClient(host, retry=FAST_RETRY)
    listed = client.list_referrers(repository, subject.digest)
    assert [r.digest for r in listed] == [e["digest"] for e in entries]
    [only] = client.list_referrers(repository, subject.digest, IN_TOTO)
    assert (only.artifact_type, dict(only.annotations)) == (IN_TOTO, dict(PROVENANCE.annotations))


def test_a_republish_uploads_nothing_and_adds_no_entry(
    anonymous_registry: RegistryServer, small_image: BuiltImage, repository: str, proxy: FaultProxy
) -> None:
    host = anonymous_registry.host
    subject = pushed(host, repository, small_image)
    first = RegistryClient(host, retry=FAST_RETRY).attach(repository, subject, [SBOM, PROVENANCE])
    index_tag = f"{repository}:{tag_of(subject.digest)}"
    before = raw(host, index_tag)

    again = RegistryClient(proxy.host, retry=FAST_RETRY).attach(
        repository, subject, [SBOM, PROVENANCE]
    )
    assert [a.digest for a in again.attached] == [a.digest for a in first.attached]
    assert [a.status for a in again.attached] == ["already present"] * 2
    assert (again.blobs_uploaded, again.bytes_uploaded, again.index_writes) == (0, 0, 0)
    assert {r.method for r in proxy.records} <= {"GET", "HEAD"}, "nothing was written"
    assert raw(host, index_tag) == before

    # One more document later: the index keeps its entries and gains one, none twice.
    more = RegistryClient(host, retry=FAST_RETRY).attach(repository, subject, [PROVENANCE, CDX])
    assert [a.uploaded for a in more.attached] == [False, True] and more.index_writes == 1
    entries = json.loads(raw(host, index_tag))["manifests"]
    expected = [a.digest for a in first.attached] + [more.attached[1].digest]
    assert [e["digest"] for e in entries] == expected
    assert_served(host, repository, small_image)


def rendezvous(parties: int, what: Callable[[str, str], bool]) -> Callable[[str, str], str]:
    """A proxy policy holding the first `parties` requests that `what` matches until all of
    them have arrived, so that every publisher reads before any writes."""
    barrier = threading.Barrier(parties)
    held = 0
    lock = threading.Lock()

    def policy(method: str, path: str) -> str:
        nonlocal held
        if what(method, path):
            with lock:
                held += 1
                hold = held <= parties
            if hold:
                barrier.wait(timeout=20)
        return FORWARD

    return policy


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_attaches_both_end_up_listed(
    round_: int,
    anonymous_registry: RegistryServer,
    small_image: BuiltImage,
    repository: str,
) -> None:
    """Two publishers attach different documents to one image at once. The proxy holds the
    first read of the index until both have made it, so both read it missing and both write
    (docker-registry 2.8 ignores If-None-Match / If-Match): the race happens every round,
    and the publisher whose entry was overwritten merges it back."""
    host = anonymous_registry.host
    subject = pushed(host, repository, small_image)
    index_path = f"/v2/{repository}/manifests/{tag_of(subject.digest)}"
    proxy = FaultProxy(host, rendezvous(2, lambda m, p: m == "GET" and p == index_path))
    try:
        start = threading.Barrier(2)
        results: dict[str, Any] = {}

        def publish(attachment: Attachment) -> None:
            client = RegistryClient(proxy.host, retry=FAST_RETRY)
            start.wait(timeout=20)
            try:
                results[attachment.artifact_type] = client.attach(repository, subject, [attachment])
            except Exception as error:  # reported below, with the other thread's outcome
                results[attachment.artifact_type] = error

        threads = [threading.Thread(target=publish, args=(a,)) for a in (SBOM, PROVENANCE)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        proxy.stop()
    assert all(not isinstance(r, Exception) for r in results.values()), results
    index_writes = [r for r in proxy.records if r.method == "PUT" and r.path == index_path]
    assert len(index_writes) >= 3, "both wrote, and one wrote again to merge back"
    entries = json.loads(raw(host, f"{repository}:{tag_of(subject.digest)}"))["manifests"]
    listed = sorted(e["digest"] for e in entries)
    attached = sorted(r.attached[0].digest for r in results.values())
    assert listed == attached, "each publisher's referrer is listed, once"
    assert sorted(e["artifactType"] for e in entries) == sorted([SPDX, IN_TOTO])


# --- a registry with the referrers API (and conditional PUTs) --------------------------------


@dataclass
class MemoryRegistry:
    """Enough of the distribution API, in memory, for attaching and listing: with the
    referrers API when `api` (manifest PUTs answer `OCI-Subject`), and honouring `If-Match`
    and `If-None-Match` on manifest PUTs with the digest as ETag."""

    api: bool
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, bytes] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # Called before a tag PUT is stored; returns a status to answer instead, or None.
    before_tag_put: Optional[Callable[[Handler], Optional[int]]] = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, handler: Handler) -> None:
        parts = urlsplit(handler.path)
        path, query = parts.path, parse_qs(parts.query)
        with self.lock:
            if path == "/v2/":
                reply(handler, 200, b"{}")
            elif "/blobs/uploads/" in path:
                self._upload(handler, path, query)
            elif "/blobs/" in path:
                data = self.blobs.get(path.rsplit("/", 1)[1])
                reply(handler, 200 if data is not None else 404, data or b"")
            elif "/manifests/" in path:
                self._manifest(handler, path.rsplit("/", 1)[1])
            elif "/referrers/" in path and self.api:
                self._referrers(handler, path.rsplit("/", 1)[1], query)
            else:
                reply(handler, 404, b'{"errors":[{"code":"NOT_FOUND"}]}')

    def _upload(self, handler: Handler, path: str, query: dict[str, list[str]]) -> None:
        if handler.command == "POST":
            reply(handler, 202, headers=[("Location", f"{path}{uuid.uuid4().hex}")])
            return
        data, digest = handler.body(), query["digest"][0]
        assert sha256_of(data) == digest
        self.blobs[digest] = data
        reply(handler, 201, headers=[("Docker-Content-Digest", digest)])

    def _manifest(self, handler: Handler, reference: str) -> None:
        digest = self.tags.get(reference, reference)
        if handler.command in ("GET", "HEAD"):
            data = self.manifests.get(digest)
            if data is None:
                reply(handler, 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                return
            media_type = json.loads(data)["mediaType"]
            headers = [("Content-Type", media_type), ("Docker-Content-Digest", digest)]
            reply(handler, 200, data, [*headers, ("ETag", f'"{digest}"')])
            return
        data = handler.body()
        if not reference.startswith("sha256:"):
            status = self._condition(handler, reference)
            if status is not None:
                reply(handler, status)
                return
        stored = sha256_of(data)
        self.manifests[stored] = data
        if not reference.startswith("sha256:"):
            self.tags[reference] = stored
        headers = [("Docker-Content-Digest", stored)]
        subject = json.loads(data).get("subject")
        if self.api and subject:
            headers.append(("OCI-Subject", subject["digest"]))
        reply(handler, 201, headers=headers)

    def _condition(self, handler: Handler, tag: str) -> int | None:
        """412 when the PUT's precondition fails (or the test's hook says so), else None."""
        status = self.before_tag_put(handler) if self.before_tag_put else None
        if status is not None:
            return status
        current = self.tags.get(tag)
        if_match = handler.headers.get("If-Match")
        if if_match is not None and if_match != f'"{current}"':
            return 412
        if handler.headers.get("If-None-Match") == "*" and current is not None:
            return 412
        return None

    def _referrers(self, handler: Handler, digest: str, query: dict[str, list[str]]) -> None:
        wanted = (query.get("artifactType") or [""])[0]
        entries = []
        for stored, data in self.manifests.items():
            manifest = json.loads(data)
            if (manifest.get("subject") or {}).get("digest") != digest:
                continue
            if wanted and manifest.get("artifactType") != wanted:
                continue
            entry = {"mediaType": manifest["mediaType"], "digest": stored, "size": len(data)}
            entry["artifactType"] = manifest.get("artifactType") or manifest["config"]["mediaType"]
            if manifest.get("annotations"):
                entry["annotations"] = manifest["annotations"]
            entries.append(entry)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        headers = [("Content-Type", OCI_INDEX)]
        headers += [("OCI-Filters-Applied", "artifactType")] if wanted else []
        reply(handler, 200, json.dumps(index).encode(), headers)

    def put_index(self, tag: str, entries: list[dict[str, Any]]) -> None:
        """Store an index under `tag`, as another publisher would (the caller holds the lock)."""
        data = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        digest = sha256_of(data.encode())
        self.manifests[digest] = data.encode()
        self.tags[tag] = digest


def start(servers: list[ScriptedServer], script: Callable[[Handler], None]) -> ScriptedServer:
    server = ScriptedServer(script)
    servers.append(server)
    return server


IMAGE_MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode()
SUBJECT = Descriptor(OCI_MANIFEST, sha256_of(IMAGE_MANIFEST), len(IMAGE_MANIFEST))
REPOSITORY = "team/agent"


def test_a_registry_with_the_referrers_api_needs_no_tag(servers: list[ScriptedServer]) -> None:
    registry = MemoryRegistry(api=True)
    server = start(servers, registry)
    client = RegistryClient(server.host, retry=FAST_RETRY)
    result = client.attach(REPOSITORY, SUBJECT, [SBOM, PROVENANCE])

    assert result.referrers_api and result.index_tag is None and result.index_writes == 0
    assert [a.uploaded for a in result.attached] == [True, True]
    assert not any(tag_of(SUBJECT.digest) in seen.path for seen in server.requests)
    assert registry.tags == {}

    server.requests.clear()
    listed = client.list_referrers(REPOSITORY, SUBJECT.digest)
    assert sorted(r.digest for r in listed) == sorted(a.digest for a in result.attached)
    by_type = {r.artifact_type: r for r in listed}
    assert dict(by_type[SPDX].annotations) == dict(SBOM.annotations)
    [only] = client.list_referrers(REPOSITORY, SUBJECT.digest, SPDX)
    assert only.digest == result.attached[0].digest
    paths = [seen.path for seen in server.requests]
    assert paths == [
        f"/v2/{REPOSITORY}/referrers/{SUBJECT.digest}",
        f"/v2/{REPOSITORY}/referrers/{SUBJECT.digest}?artifactType=application%2Fspdx%2Bjson",
    ]

    # A republish finds everything and asks the referrers API instead of writing any tag.
    server.requests.clear()
    again = client.attach(REPOSITORY, SUBJECT, [SBOM, PROVENANCE])
    assert again.referrers_api and [a.uploaded for a in again.attached] == [False, False]
    assert {seen.method for seen in server.requests} <= {"GET", "HEAD"}
    assert any("/referrers/" in seen.path for seen in server.requests)


def test_referrers_api_pages_are_followed(servers: list[ScriptedServer]) -> None:
    entries = [
        {
            "mediaType": OCI_MANIFEST,
            "digest": sha256_of(bytes([i])),
            "size": 9,
            "artifactType": SPDX,
        }
        for i in range(3)
    ]

    def registry(handler: Handler) -> None:
        page = int(parse_qs(urlsplit(handler.path).query).get("page", ["0"])[0])
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entries[page]]}
        link = [] if page == 2 else [("Link", f'</v2/x/referrers/y?page={page + 1}>; rel="next"')]
        reply(handler, 200, json.dumps(index).encode(), link)

    server = start(servers, registry)
    listed = RegistryClient(server.host, retry=FAST_RETRY).list_referrers("x", SUBJECT.digest)
    assert [r.digest for r in listed] == [e["digest"] for e in entries]


# --- hostile registries -------------------------------------------------------------------------


@pytest.mark.parametrize("existing", [False, True], ids=["new-tag", "existing-tag"])
def test_a_412_on_the_index_is_retried_with_a_re_read(
    existing: bool, servers: list[ScriptedServer]
) -> None:
    """Another publisher writes the index between our read and our conditional PUT: the
    registry answers 412, and we read again, merge, and PUT on the new ETag."""
    tag = tag_of(SUBJECT.digest)
    theirs = {"mediaType": OCI_MANIFEST, "digest": sha256_of(b"theirs"), "size": 6}
    registry = MemoryRegistry(api=False)
    if existing:
        registry.put_index(tag, [])
    read_first = (f'"{registry.tags[tag]}"', None) if existing else (None, "*")
    conditions: list[tuple[Optional[str], Optional[str]]] = []
    written: list[str] = []

    def concurrent_publisher(handler: Handler) -> Optional[int]:
        conditions.append((handler.headers.get("If-Match"), handler.headers.get("If-None-Match")))
        if len(conditions) == 1:
            registry.put_index(tag, [theirs])  # lands just before our PUT does
            written.append(registry.tags[tag])
        return None

    registry.before_tag_put = concurrent_publisher
    server = start(servers, registry)
    client = RegistryClient(server.host, retry=FAST_RETRY)
    result = client.attach(REPOSITORY, SUBJECT, [SBOM])

    assert result.index_writes == 1
    assert conditions[0] == read_first
    assert conditions[1] == (f'"{written[0]}"', None)  # the ETag of their index
    tag_requests = [
        s.method for s in server.requests if s.path == f"/v2/{REPOSITORY}/manifests/{tag}"
    ]
    assert tag_requests == ["GET", "PUT", "GET", "PUT", "GET"]
    entries = json.loads(registry.manifests[registry.tags[tag]])["manifests"]
    assert [e["digest"] for e in entries] == [theirs["digest"], result.attached[0].digest]


def test_an_index_that_keeps_changing_is_given_up_with_a_clear_error(
    servers: list[ScriptedServer],
) -> None:
    registry = MemoryRegistry(api=False, before_tag_put=lambda handler: 412)
    server = start(servers, registry)
    with pytest.raises(RegistryError, match=r"kept changing under 8 writes.*publish again"):
        RegistryClient(server.host, retry=FAST_RETRY).attach(REPOSITORY, SUBJECT, [SBOM])


def test_a_tag_that_is_not_an_index_is_not_overwritten(servers: list[ScriptedServer]) -> None:
    registry = MemoryRegistry(api=False)
    registry.tags[tag_of(SUBJECT.digest)] = SUBJECT.digest
    registry.manifests[SUBJECT.digest] = IMAGE_MANIFEST
    server = start(servers, registry)
    client = RegistryClient(server.host, retry=FAST_RETRY)
    with pytest.raises(RegistryError, match="other than an OCI image index.*not overwritten"):
        client.attach(REPOSITORY, SUBJECT, [SBOM])
    assert registry.tags[tag_of(SUBJECT.digest)] == SUBJECT.digest
    assert client.list_referrers(REPOSITORY, SUBJECT.digest) == ()  # as the spec says


def index_answers(answer: Callable[[Handler], object]) -> Callable[[Handler], None]:
    """A registry without the referrers API whose tag-schema index GETs `answer` answers."""
    registry = MemoryRegistry(api=False)
    tag = tag_of(SUBJECT.digest)

    def script(handler: Handler) -> None:
        if handler.command == "GET" and handler.path.endswith(f"/manifests/{tag}"):
            answer(handler)
        else:
            registry(handler)

    return script


@pytest.mark.parametrize("declared", [False, True], ids=["endless", "declared-256MiB"])
def test_an_index_over_the_bound_is_refused(declared: bool, servers: list[ScriptedServer]) -> None:
    length = 256 << 20 if declared else None
    server = start(servers, index_answers(lambda h: stream(h, endless(), length=length)))
    client = RegistryClient(server.host, retry=FAST_RETRY)
    with pytest.raises(RegistryError, match="over the 4 MiB this client reads into memory"):
        client.attach(REPOSITORY, SUBJECT, [SBOM])
    with pytest.raises(RegistryError, match="over the 4 MiB this client reads into memory"):
        client.list_referrers(REPOSITORY, SUBJECT.digest)
    tag = tag_of(SUBJECT.digest)
    assert not [s for s in server.requests if s.method == "PUT" and s.path.endswith(tag)]


def test_a_server_that_hangs_on_the_index_hits_the_deadline(
    servers: list[ScriptedServer],
) -> None:
    server = start(servers, index_answers(lambda h: trickle_status_line(h, 0.5, count=17)))
    client = RegistryClient(
        server.host,
        deadlines=Deadlines(request_seconds=1.5),
        retry=Retry(total_seconds=3, first_delay=0.05, max_delay=0.1),
    )
    began = time.monotonic()
    with pytest.raises(RegistryError, match=r"within 1.5 s \(the request's deadline\)"):
        client.attach(REPOSITORY, SUBJECT, [SBOM])
    assert time.monotonic() - began < 3 + 2 * 1.5 + 2


def basic_required(handler: Handler) -> bool:
    """Answer 401 with a Basic challenge unless the request has our credentials."""
    if handler.headers.get("Authorization") == BASIC:
        return False
    challenge(handler, 'Basic realm="referrers-test"')
    return True


@pytest.mark.parametrize("via", ["index-redirect", "api-next-page"])
def test_credentials_never_follow_the_index_to_another_origin(
    via: str, servers: list[ScriptedServer]
) -> None:
    """The tag-schema index redirected elsewhere, or a referrers-API page linking to another
    host: the other origin is read without the registry's credentials."""
    entry = {"mediaType": OCI_MANIFEST, "digest": sha256_of(b"r"), "size": 1, "artifactType": SPDX}
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]})
    elsewhere = start(servers, lambda h: reply(h, 200, index.encode()))
    tag = tag_of(SUBJECT.digest)

    def registry(handler: Handler) -> None:
        if basic_required(handler):
            return
        if handler.path == "/v2/":
            reply(handler, 200, b"{}")
        elif via == "index-redirect" and "/referrers/" in handler.path:
            reply(handler, 404)
        elif via == "index-redirect":
            reply(handler, 307, headers=[("Location", f"{elsewhere.url()}/v2/x/manifests/{tag}")])
        else:
            empty = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
            link = ("Link", f'<{elsewhere.url()}/v2/x/referrers/page2>; rel="next"')
            reply(handler, 200, empty.encode(), [link])

    server = start(servers, registry)
    client = RegistryClient(server.host, credentials=Credentials(USER, PASSWORD), retry=FAST_RETRY)
    listed = client.list_referrers(REPOSITORY, SUBJECT.digest)
    assert [r.digest for r in listed] == [entry["digest"]]
    assert elsewhere.requests and elsewhere.authorizations() == []
    assert set(server.authorizations()) == {BASIC}


def test_a_referrers_list_with_a_bad_entry_is_refused(servers: list[ScriptedServer]) -> None:
    bad = {"mediaType": OCI_MANIFEST, "digest": "sha256:../../etc", "size": 1}
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [bad]})
    server = start(servers, lambda h: reply(h, 200, index.encode()))
    with pytest.raises(RegistryError, match="not a valid descriptor"):
        RegistryClient(server.host, retry=FAST_RETRY).list_referrers(REPOSITORY, SUBJECT.digest)
