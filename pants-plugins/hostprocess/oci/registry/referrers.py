"""Attaching documents (SBOMs, provenance, signatures) to an image as OCI 1.1 referrers.

A referrer is an image manifest whose `subject` is the image's manifest descriptor, with an
`artifactType`, the empty config and the document as its one layer: attaching one never
changes the image's digest. A registry that implements the referrers API indexes referrers
itself (it answers the manifest PUT with `OCI-Subject`). For one that does not, clients keep
the referrers tag schema: an image index tagged `sha256-<hex of the subject>` that lists
every referrer. Publishers may update that index at once: conditional PUTs (`If-Match` with
the ETag read, `If-None-Match: *` for a new tag) stop lost updates where the registry honours
them, and a re-read after every write, merging again what another publisher overwrote,
repairs them where it does not.
"""

from __future__ import annotations

import io
import json
import random
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode, urljoin

from hostprocess.oci.image import Descriptor, canonical_json
from hostprocess.oci.reference import Reference
from hostprocess.oci.registry.authorizer import Scopes
from hostprocess.oci.registry.endpoint import Endpoint
from hostprocess.oci.registry.errors import RegistryError
from hostprocess.oci.registry.progress import Progress, ProgressCallback, one_at_a_time
from hostprocess.oci.registry.transport import BodyStream, Response
from hostprocess.oci.registry.upload import BlobAction, BlobPushed, BlobUploader
from hostprocess.oci.types import OCI_INDEX, OCI_MANIFEST, sha256_digest, validate_digest

OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"  # the empty config every referrer shares (sha256:44136fa3...)
TITLE = "org.opencontainers.image.title"  # the file name `oras pull` gives a layer
MAX_INDEX_WRITES = 8  # PUTs of the tag-schema index before a contested update gives up
MAX_REFERRER_PAGES = 16  # pages of the referrers API read (each bounded like any body)
MIN_SETTLE_SECONDS = 0.2  # the least wait between writing the index and re-reading it
MAX_SETTLE_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 1.0  # the longest pause after a 412 before reading the index again
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][\w!#$&^.+-]{0,126}/[A-Za-z0-9][\w!#$&^.+-]{0,126}")
_NEXT_LINK = re.compile(r'<([^>]*)>\s*;[^,]*\brel="?next"?', re.IGNORECASE)


@dataclass(frozen=True)
class Attachment:
    """One document to attach: what kind of artifact it is, its own media type, its bytes.

    `annotations` go on the referrer manifest (and so on its referrers-list entry), so they
    must be deterministic for a republish to find the same manifest. `title` names the layer
    as a file, for `oras pull`.
    """

    artifact_type: str  # e.g. application/spdx+json
    media_type: str  # the document layer's, often the same
    content: bytes = field(repr=False)
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    title: str | None = None

    def __post_init__(self) -> None:
        for name in ("artifact_type", "media_type"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _MEDIA_TYPE.fullmatch(value):
                raise ValueError(f"{name} {value!r} is not a media type (type/subtype)")
        for key, value in self.annotations.items():
            if not isinstance(key, str) or not isinstance(value, str) or not key:
                raise ValueError(f"annotation {key!r}: {value!r} must map a name to a string")

    @classmethod
    def from_file(
        cls,
        path: Path,
        artifact_type: str,
        media_type: str | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> Attachment:
        """The document in `path`, titled with its file name; `media_type` defaults to
        `artifact_type`."""
        return cls(
            artifact_type,
            media_type or artifact_type,
            path.read_bytes(),
            dict(annotations or {}),
            path.name,
        )


@dataclass(frozen=True)
class Referrer:
    """One entry of a referrers list: a manifest whose `subject` is the image."""

    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)

    def to_json(self) -> dict[str, Any]:
        """The entry as an image index lists it (the referrers API's form)."""
        entry = Descriptor(self.media_type, self.digest, self.size, self.annotations).to_json()
        if self.artifact_type:
            entry["artifactType"] = self.artifact_type
        return entry


@dataclass(frozen=True)
class Attached:
    """What became of one attachment: its referrer manifest, pushed now or found there."""

    artifact_type: str
    reference: str  # host/repository@digest of the referrer manifest
    digest: str
    size: int
    uploaded: bool  # False: the registry held this exact manifest already

    @property
    def status(self) -> str:
        return "uploaded" if self.uploaded else "already present"


@dataclass(frozen=True)
class AttachResult:
    """Every attachment's referrer, and how the registry lists them."""

    subject: str  # the image's manifest digest
    attached: tuple[Attached, ...]  # in the order the attachments were given
    referrers_api: bool  # the registry indexes referrers itself
    index_tag: str | None  # the tag-schema tag kept instead, when it does not
    index_writes: int  # PUTs of that tag: 0 when it listed every referrer already
    blobs_uploaded: int
    bytes_uploaded: int


@dataclass(frozen=True)
class _MemoryBlob:
    """A blob held in memory (a document, the empty config), for `BlobUploader`."""

    content: bytes = field(repr=False)
    digest: str
    size: int

    @classmethod
    def of(cls, content: bytes) -> _MemoryBlob:
        return cls(content, sha256_digest(content), len(content))

    def reader(self, offset: int, length: int) -> Callable[[], BodyStream]:
        return lambda: io.BytesIO(self.content[offset : offset + length])


@dataclass(frozen=True)
class _Referrer:
    """An attachment's referrer manifest, built."""

    attachment: Attachment
    manifest: bytes
    digest: str

    def entry(self) -> dict[str, Any]:
        annotations = self.attachment.annotations
        return Referrer(
            self.digest,
            OCI_MANIFEST,
            len(self.manifest),
            self.attachment.artifact_type,
            annotations,
        ).to_json()


def referrers_tag(digest: str) -> str:
    """The referrers tag schema's tag for `digest`: `sha256-<hex>`."""
    validate_digest(digest)
    return digest.replace(":", "-")


def referrer_manifest(subject: Descriptor, attachment: Attachment) -> bytes:
    """The referrer manifest of `attachment`: canonical JSON with nothing taken from the clock,
    so the same document attached to the same image always gives the same digest."""
    layer = Descriptor.of(attachment.media_type, attachment.content)
    if attachment.title:
        layer = Descriptor(layer.media_type, layer.digest, layer.size, {TITLE: attachment.title})
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": attachment.artifact_type,
        "config": Descriptor.of(OCI_EMPTY, EMPTY_JSON).to_json(),
        "layers": [layer.to_json()],
        "subject": Descriptor(subject.media_type, subject.digest, subject.size).to_json(),
    }
    if attachment.annotations:
        manifest["annotations"] = dict(attachment.annotations)
    return canonical_json(manifest)


def attach(
    endpoint: Endpoint,
    repository: str,
    subject: Descriptor,
    attachments: Sequence[Attachment],
    progress: ProgressCallback = lambda _: None,
    *,
    chunk_size: int,
) -> AttachResult:
    """Push each attachment as a referrer of `subject`, then make sure the registry lists it.

    Blobs and manifests already in the repository are not sent again, and a tag-schema index
    that lists every referrer already is not rewritten: a republish uploads nothing.
    """
    validate_digest(subject.digest)
    if subject.size < 0:
        raise ValueError(f"subject {subject.digest} cannot have a negative size")
    scopes: Scopes = (f"repository:{repository}:pull,push",)
    report = one_at_a_time(progress)
    referrers = [_build(subject, attachment) for attachment in attachments]
    endpoint.base_url()  # the scheme and the challenge, learnt before any upload
    uploader = BlobUploader(
        endpoint, repository, scopes, mount_from=None, chunk_size=chunk_size, progress=report
    )
    pushed = _push_blobs(uploader, attachments)
    attached, answers = [], []
    for referrer in referrers:
        uploaded, answer = _push_referrer(endpoint, repository, referrer, scopes, report)
        attached.append(_attached(endpoint, repository, referrer, uploaded))
        if uploaded:
            answers.append(answer)
    api = bool(referrers) and _indexed_by_registry(endpoint, repository, subject, answers, scopes)
    tag, writes = None, 0
    if referrers and not api:
        tag = referrers_tag(subject.digest)
        entries = list({r.digest: r.entry() for r in referrers}.values())
        writes = _update_tag_index(endpoint, repository, tag, entries, scopes, report)
    return AttachResult(
        subject.digest,
        tuple(attached),
        referrers_api=api,
        index_tag=tag,
        index_writes=writes,
        blobs_uploaded=sum(blob.action is BlobAction.UPLOADED for blob in pushed),
        bytes_uploaded=sum(blob.bytes_sent for blob in pushed),
    )


def _indexed_by_registry(
    endpoint: Endpoint,
    repository: str,
    subject: Descriptor,
    answers: Sequence[str | None],
    scopes: Scopes,
) -> bool:
    """Whether the registry lists referrers itself: a registry with the referrers API MUST
    answer each manifest PUT with `OCI-Subject`; with no PUT to go by, ask the API."""
    if answers:
        return all(answer == subject.digest for answer in answers)
    return _has_api(endpoint, repository, subject.digest, scopes)


def list_referrers(
    endpoint: Endpoint, repository: str, subject_digest: str, artifact_type: str | None = None
) -> tuple[Referrer, ...]:
    """The referrers of `subject_digest` (of `artifact_type` only, if given): from the
    referrers API where the registry has it, else from the tag schema's index."""
    validate_digest(subject_digest)
    scopes: Scopes = (f"repository:{repository}:pull",)
    listed = _api_referrers(endpoint, repository, subject_digest, artifact_type, scopes)
    if listed is None:
        index = _read_tag_index(endpoint, repository, referrers_tag(subject_digest), scopes)
        entries = index.entries if index.document is not None else []
        listed = [_referrer(endpoint, entry) for entry in entries]
    return tuple(r for r in listed if artifact_type in (None, r.artifact_type))


# --- pushing the referrers --------------------------------------------------------------


def _build(subject: Descriptor, attachment: Attachment) -> _Referrer:
    manifest = referrer_manifest(subject, attachment)
    return _Referrer(attachment, manifest, sha256_digest(manifest))


def _attached(endpoint: Endpoint, repository: str, referrer: _Referrer, uploaded: bool) -> Attached:
    reference = Reference(endpoint.registry, repository, digest=referrer.digest)
    return Attached(
        referrer.attachment.artifact_type,
        str(reference),
        referrer.digest,
        len(referrer.manifest),
        uploaded,
    )


def _push_blobs(uploader: BlobUploader, attachments: Sequence[Attachment]) -> list[BlobPushed]:
    """The empty config and every document, each once; those present are skipped."""
    blobs = {blob.digest: blob for blob in map(_MemoryBlob.of, [EMPTY_JSON])}
    for attachment in attachments:
        blob = _MemoryBlob.of(attachment.content)
        blobs.setdefault(blob.digest, blob)
    stop = threading.Event()  # never set: the blobs go one after the other
    return [uploader.push(blob, stop) for blob in blobs.values()] if attachments else []


def _push_referrer(
    endpoint: Endpoint,
    repository: str,
    referrer: _Referrer,
    scopes: Scopes,
    report: ProgressCallback,
) -> tuple[bool, str | None]:
    """PUT the manifest unless the repository holds it: (uploaded, its `OCI-Subject` answer)."""
    url = f"{endpoint.base_url()}/v2/{repository}/manifests/{referrer.digest}"
    what = f"referrer manifest {referrer.digest} of {repository}"

    def present(_: int) -> bool:
        response = endpoint.exchange("HEAD", url, scopes, {"Accept": OCI_MANIFEST})
        endpoint.expect(response, (200, 404), f"HEAD {what}")
        return response.status == 200

    if endpoint.retrying(f"check {what}", present):
        report(Progress("referrer-exists", f"{repository}@{referrer.digest}"))
        return False, None

    def put(_: int) -> str | None:
        headers = {"Content-Type": OCI_MANIFEST}
        response = endpoint.exchange("PUT", url, scopes, headers, referrer.manifest)
        endpoint.expect(response, (200, 201), f"PUT {what}")
        _check_served(endpoint, response, referrer.manifest, what)
        answer: str | None = response.headers.get("OCI-Subject")
        return answer

    answer = endpoint.retrying(f"push {what}", put)
    report(Progress("referrer-pushed", f"{repository}@{referrer.digest}"))
    return True, answer


def _check_served(endpoint: Endpoint, response: Response, body: bytes, what: str) -> None:
    """A registry that says it stored other bytes than ours is not taken at its word."""
    served = response.headers.get("Docker-Content-Digest")
    if served and served != sha256_digest(body):
        raise RegistryError(
            f"{endpoint.registry} stored {what} as {served}, not {sha256_digest(body)}: "
            "it changed the bytes; check the registry (or the proxy in front of it)"
        )


# --- the referrers tag schema -----------------------------------------------------------


@dataclass(frozen=True)
class _TagIndex:
    """The tag-schema index as read: its JSON (None when the tag does not exist) and ETag."""

    document: dict[str, Any] | None
    etag: str | None

    @property
    def entries(self) -> list[Any]:
        return list(self.document["manifests"]) if self.document is not None else []

    def missing(self, entries: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        listed = {entry.get("digest") for entry in self.entries if isinstance(entry, dict)}
        return [entry for entry in entries if entry["digest"] not in listed]

    def merged(self, missing: Sequence[Mapping[str, Any]]) -> bytes:
        """This index with `missing` appended: other publishers' entries kept as they are."""
        document = dict(self.document or {"schemaVersion": 2, "mediaType": OCI_INDEX})
        document["manifests"] = [*self.entries, *missing]
        return canonical_json(document)


def _update_tag_index(
    endpoint: Endpoint,
    repository: str,
    tag: str,
    entries: Sequence[Mapping[str, Any]],
    scopes: Scopes,
    report: ProgressCallback,
) -> int:
    """Make the index under `tag` list every one of `entries`; the number of PUTs it took.

    Each write is conditional on the index read. As a registry may ignore the condition,
    every write is followed by a re-read: a concurrent publisher that overwrote our entries
    gets them merged back. That re-read waits about twice as long as our own read-to-write
    took, so that a publisher which read before our write (and may overwrite it) lands first.
    """
    writes = refused = 0
    for _ in range(MAX_INDEX_WRITES):
        began = time.monotonic()
        index = _read_tag_index(endpoint, repository, tag, scopes, for_update=True)
        missing = index.missing(entries)
        if not missing:
            return writes
        if _put_tag_index(endpoint, repository, tag, index, missing, scopes):
            writes += 1
            report(Progress("referrers-index-pushed", f"{repository}:{tag}"))
            _settle(time.monotonic() - began)
        else:  # 412: another publisher wrote since our read
            refused += 1
            time.sleep(min(MAX_BACKOFF_SECONDS, 0.05 * 2**refused) * random.uniform(0.5, 1.0))
    if not _read_tag_index(endpoint, repository, tag, scopes, for_update=True).missing(entries):
        return writes
    raise RegistryError(
        f"the referrers index {repository}:{tag} at {endpoint.registry} kept changing under "
        f"{MAX_INDEX_WRITES} writes (other publishers attaching to the same image at once); "
        "the referrer manifests are pushed: publish again to list them"
    )


def _settle(span: float) -> None:
    """Wait before re-reading the index we wrote, about twice our own read-to-write `span`
    (jittered, so that two publishers' rounds drift apart)."""
    wait = min(MAX_SETTLE_SECONDS, max(MIN_SETTLE_SECONDS, 2 * span))
    time.sleep(wait * random.uniform(1.0, 1.5))


def _read_tag_index(
    endpoint: Endpoint, repository: str, tag: str, scopes: Scopes, *, for_update: bool = False
) -> _TagIndex:
    """The index under `tag`, bounded like every read; a missing tag is an empty index.

    For an update, a tag holding anything but an image index is refused, never overwritten;
    for a listing it means no referrers, as the distribution spec says.
    """
    url = f"{endpoint.base_url()}/v2/{repository}/manifests/{tag}"
    what = f"referrers index {repository}:{tag}"

    def read(_: int) -> Response:
        response = endpoint.exchange("GET", url, scopes, {"Accept": OCI_INDEX})
        endpoint.expect(response, (200, 404), f"GET {what}")
        return response

    response = endpoint.retrying(f"read {what}", read)
    if response.status == 404:
        return _TagIndex(None, None)
    document = _index_document(response.body)
    if document is None:
        if for_update:
            raise RegistryError(
                f"{what} at {endpoint.registry} holds something other than an OCI image "
                f"index ({response.headers.get('Content-Type') or 'no media type'}); it is "
                "not overwritten: remove or rename that tag, then publish again"
            )
        return _TagIndex(None, None)
    return _TagIndex(document, response.headers.get("ETag"))


def _put_tag_index(
    endpoint: Endpoint,
    repository: str,
    tag: str,
    index: _TagIndex,
    missing: Sequence[Mapping[str, Any]],
    scopes: Scopes,
) -> bool:
    """PUT the merged index, conditional on the one read; False on 412 (it changed since)."""
    url = f"{endpoint.base_url()}/v2/{repository}/manifests/{tag}"
    body = index.merged(missing)
    headers = {"Content-Type": OCI_INDEX}
    if index.etag:
        headers["If-Match"] = index.etag
    elif index.document is None:
        headers["If-None-Match"] = "*"  # create only: someone else's new index is not replaced
    what = f"referrers index {repository}:{tag}"

    def put(_: int) -> bool:
        response = endpoint.exchange("PUT", url, scopes, headers, body)
        if response.status == 412:
            return False
        endpoint.expect(response, (200, 201), f"PUT {what}")
        _check_served(endpoint, response, body, what)
        return True

    return endpoint.retrying(f"push {what}", put)


def _index_document(body: bytes) -> dict[str, Any] | None:
    """The JSON of an OCI image index whose `manifests` are objects, else None."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("mediaType", OCI_INDEX) != OCI_INDEX:
        return None
    manifests = document.get("manifests")
    if not isinstance(manifests, list) or not all(isinstance(m, dict) for m in manifests):
        return None
    return document


# --- the referrers API ------------------------------------------------------------------


def _api_url(endpoint: Endpoint, repository: str, digest: str, artifact_type: str | None) -> str:
    url = f"{endpoint.base_url()}/v2/{repository}/referrers/{digest}"
    return f"{url}?{urlencode({'artifactType': artifact_type})}" if artifact_type else url


def _api_page(
    endpoint: Endpoint, url: str, what: str, scopes: Scopes, *, first: bool
) -> Response | None:
    """One page of the referrers API; None if the first says the registry has none (404)."""

    def read(_: int) -> Response:
        return endpoint.exchange("GET", url, scopes, {"Accept": OCI_INDEX})

    response = endpoint.retrying(f"list {what}", read)
    if response.status == 404 and first:
        return None
    endpoint.expect(response, (200,), f"GET {what}")
    if _index_document(response.body) is None:
        raise RegistryError(
            f"{endpoint.registry} answered GET {what} with something other than an OCI image "
            "index"
        )
    return response


def _has_api(endpoint: Endpoint, repository: str, digest: str, scopes: Scopes) -> bool:
    """Whether the registry answers the referrers API for `digest` (with an index)."""
    url = _api_url(endpoint, repository, digest, None)
    what = f"referrers of {digest} in {repository}"
    return _api_page(endpoint, url, what, scopes, first=True) is not None


def _api_referrers(
    endpoint: Endpoint,
    repository: str,
    digest: str,
    artifact_type: str | None,
    scopes: Scopes,
) -> list[Referrer] | None:
    """Every page the referrers API lists (following `Link: <..>; rel="next"`), or None if
    the registry has no referrers API."""
    url = _api_url(endpoint, repository, digest, artifact_type)
    what = f"referrers of {digest} in {repository}"
    referrers: list[Referrer] = []
    for page in range(MAX_REFERRER_PAGES):
        response = _api_page(endpoint, url, what, scopes, first=page == 0)
        if response is None:
            return None
        document = _index_document(response.body)
        assert document is not None  # _api_page refused anything else
        referrers += [_referrer(endpoint, entry) for entry in document["manifests"]]
        following = _NEXT_LINK.search(response.headers.get("Link") or "")
        if following is None:
            return referrers
        url = urljoin(response.url, following.group(1))
    raise RegistryError(
        f"{endpoint.registry} listed the {what} over more than {MAX_REFERRER_PAGES} pages; "
        "refusing to read on"
    )


def _referrer(endpoint: Endpoint, entry: Mapping[str, Any]) -> Referrer:
    """A referrers-list entry, checked: registries are not trusted to write them well."""
    try:
        return _checked_referrer(entry)
    except (TypeError, ValueError):
        raise RegistryError(
            f"{endpoint.registry} listed a referrer that is not a valid descriptor: "
            f"{json.dumps(entry, sort_keys=True)[:200]}"
        ) from None


def _checked_referrer(entry: Mapping[str, Any]) -> Referrer:
    digest, media_type, size = entry.get("digest"), entry.get("mediaType"), entry.get("size")
    artifact_type = entry.get("artifactType")
    annotations = entry.get("annotations") or {}
    if not isinstance(digest, str) or not isinstance(media_type, str):
        raise TypeError("digest and mediaType must be strings")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError("size must be a count of bytes")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise TypeError("artifactType must be a string")
    if not isinstance(annotations, dict) or not all(
        isinstance(v, str) for v in annotations.values()
    ):
        raise TypeError("annotations must map names to strings")
    validate_digest(digest)
    return Referrer(digest, media_type, size, artifact_type, dict(annotations))
