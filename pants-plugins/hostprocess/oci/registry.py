"""A distribution-API client: push the image of an OCI layout, pull manifests and blobs by digest.

A push uploads every blob (layers, then config) before the manifest, so a registry never
holds a manifest whose blobs are missing, and a permanent failure leaves tags untouched.
Blobs stream from disk (a monolithic PUT when small, PATCH chunks when large) and are never
read whole into memory. Transient failures (dropped connections, 429, 5xx) are retried
with exponential backoff and jitter within a time budget; chunked uploads resume from the
registry's `Range` rather than starting over. Credentials and tokens appear only in
`Authorization` headers, never in errors, logs or reprs.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import random
import re
import ssl
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, BinaryIO, Callable, TypeVar, Union
from urllib.parse import urlencode, urljoin, urlsplit

from hostprocess.oci.auth import Credentials
from hostprocess.oci.layout import blob_path, read_manifest
from hostprocess.oci.reference import (
    Reference,
    validate_registry,
    validate_repository,
    validate_tag,
)
from hostprocess.oci.types import validate_digest

log = logging.getLogger(__name__)

MIB = 1 << 20
DEFAULT_CHUNK_SIZE = 32 * MIB  # blobs up to this size go in one PUT, larger ones in chunks
IO_BLOCK_SIZE = MIB  # how much of a body is read from disk or the socket at a time
USER_AGENT = "hostprocess-oci"
CLIENT_ID = "hostprocess"  # the OAuth client_id sent with identity tokens
MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
DEFAULT_TOKEN_LIFETIME = 60  # seconds, when a token reply has no expires_in (as the spec says)
TOKEN_EXPIRY_MARGIN = 5  # refresh tokens this many seconds before they expire
_RANGE = re.compile(r"(?:bytes=)?(\d+)-(\d+)")
UPLOAD_GONE_CODES = frozenset({"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"})

T = TypeVar("T")
Body = Union[bytes, Callable[[], "_FileSlice"], None]


class RegistryError(Exception):
    """A request failed for good; the message names the registry and its error codes."""

    def __init__(
        self, message: str, *, status: int | None = None, codes: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.codes = tuple(codes)


@dataclass(frozen=True)
class Retry:
    """How long one operation may keep retrying transient failures, and the backoff shape."""

    total_seconds: float = 120.0
    first_delay: float = 0.5
    max_delay: float = 10.0

    def delay(self, failures: int) -> float:
        """Exponential backoff with jitter, so clients that failed together don't retry together."""
        ceiling = min(self.max_delay, self.first_delay * 2 ** (failures - 1))
        return ceiling * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class Progress:
    """One step of a push, for the caller to print: `event` is e.g. `blob-uploading`."""

    event: str
    subject: str
    done: int = 0
    total: int = 0

    def __str__(self) -> str:
        amount = f" {self.done}/{self.total} bytes" if self.total else ""
        return f"{self.event} {self.subject}{amount}"


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class PushResult:
    """Each pushed reference (`host/repo:tag`, `host/repo@digest`) mapped to the digest."""

    references: Mapping[str, str]
    blobs_uploaded: int
    bytes_uploaded: int
    blobs_skipped: int
    blobs_mounted: int
    tags_pushed: int


@dataclass(frozen=True)
class Challenge:
    """One `WWW-Authenticate` challenge: a lowercase scheme and its parameters."""

    scheme: str
    params: Mapping[str, str]


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """Parse `WWW-Authenticate` header values, which may each hold several challenges.

    Quoted values may contain commas, colons and escaped quotes (a scope such as
    `repository:host:5000/app:pull,push`), so a plain split on ',' or ':' would be wrong.
    """
    challenges: list[tuple[str, dict[str, str]]] = []
    for value in values:
        pos = 0
        while True:
            pos = _skip(value, pos, " \t,")
            if pos >= len(value):
                break
            token = re.compile(r'[^\s,="]+').match(value, pos)
            if token is None:
                pos += 1
                continue
            pos = _skip(value, token.end(), " \t")
            if pos < len(value) and value[pos] == "=" and challenges:
                param, pos = _param_value(value, _skip(value, pos + 1, " \t"))
                challenges[-1][1][token.group().lower()] = param
            else:
                challenges.append((token.group().lower(), {}))
    return [Challenge(scheme, params) for scheme, params in challenges]


def _skip(text: str, pos: int, characters: str) -> int:
    while pos < len(text) and text[pos] in characters:
        pos += 1
    return pos


def _param_value(text: str, pos: int) -> tuple[str, int]:
    """A token or a quoted-string (with backslash escapes) starting at `pos`."""
    if pos < len(text) and text[pos] == '"':
        out, pos = [], pos + 1
        while pos < len(text) and text[pos] != '"':
            if text[pos] == "\\" and pos + 1 < len(text):
                pos += 1
            out.append(text[pos])
            pos += 1
        return "".join(out), pos + 1
    end = pos
    while end < len(text) and text[end] not in " \t,":
        end += 1
    return text[pos:end], end


def is_loopback(registry: str) -> bool:
    """`localhost`, 127.0.0.0/8 or [::1], with or without a port."""
    host = urlsplit(f"//{registry}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RegistryClient:
    """Talks to one registry (`host[:port]`), for any number of pushes and pulls.

    HTTPS is verified (against the system store plus `ca_bundle`) unless the registry is
    marked `insecure`; plain HTTP is used only when HTTPS fails at the transport level and
    the registry is loopback or marked `insecure`, as Docker does.
    """

    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None = None,
        insecure: bool = False,
        ca_bundle: Path | None = None,
        timeout: float = 60.0,
        retry: Retry = Retry(),
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        progress: ProgressCallback | None = None,
    ) -> None:
        validate_registry(registry)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, not {chunk_size}")
        self.registry = registry
        self._plain_http_allowed = insecure or is_loopback(registry)
        self._transport = _Transport(
            registry, _tls_context(ca_bundle, verify=not insecure), timeout
        )
        self._auth = _Auth(registry, credentials, self._transport)
        self._retry = retry
        self._chunk_size = chunk_size
        self._progress = progress or (lambda _: None)
        self._base: str | None = None

    def push(
        self,
        layout: Path,
        repository: str,
        tags: Sequence[str] = (),
        *,
        mount_from: str | None = None,
    ) -> PushResult:
        """Push the layout's single image to `repository`, then point each of `tags` at it.

        `mount_from` names a repository on this registry that may already hold the blobs.
        """
        validate_repository(repository)
        for tag in tags:
            validate_tag(tag)
        scopes = [f"repository:{repository}:pull,push"]
        if mount_from:
            validate_repository(mount_from)
            scopes.append(f"repository:{mount_from}:pull")
        image = _read_layout(layout)
        stats = _Stats()
        for blob in image.blobs:
            self._push_blob(repository, blob, tuple(scopes), mount_from, stats)
        self._put_manifest(repository, image.digest, image, tuple(scopes))
        self._progress(Progress("manifest-pushed", f"{repository}@{image.digest}"))
        references = {str(Reference(self.registry, repository, digest=image.digest)): image.digest}
        for tag in dict.fromkeys(tags):
            stats.tags_pushed += self._push_tag(repository, tag, image, tuple(scopes))
            references[str(Reference(self.registry, repository, tag=tag))] = image.digest
        return PushResult(
            references,
            stats.blobs_uploaded,
            stats.bytes_uploaded,
            stats.blobs_skipped,
            stats.blobs_mounted,
            stats.tags_pushed,
        )

    def pull_manifest(self, repository: str, digest: str) -> bytes:
        """The manifest stored under `digest`, exactly as served and checked against it."""
        validate_repository(repository)
        validate_digest(digest)
        scopes = (f"repository:{repository}:pull",)
        url = f"{self._base_url()}/v2/{repository}/manifests/{digest}"
        response = self._retrying(
            f"pull manifest {digest}",
            lambda _: self._exchange("GET", url, scopes, {"Accept": MANIFEST_ACCEPT}),
        )
        self._expect(response, (200,), f"GET manifest {digest} of {repository}")
        if _sha256(response.body) != digest:
            raise RegistryError(
                f"{self.registry} served a manifest for {digest} whose digest differs"
            )
        return response.body

    def pull_blob(self, repository: str, digest: str, destination: Path) -> int:
        """Stream blob `digest` to `destination` (atomically, once verified); returns its size."""
        validate_repository(repository)
        validate_digest(digest)
        scopes = (f"repository:{repository}:pull",)
        url = f"{self._base_url()}/v2/{repository}/blobs/{digest}"
        partial = destination.with_name(f".{destination.name}.partial")

        def attempt(_: int) -> int:
            hasher, size = hashlib.sha256(), 0
            with open(partial, "wb") as out:

                def sink(data: bytes) -> None:
                    nonlocal size
                    out.write(data)
                    hasher.update(data)
                    size += len(data)

                response = self._exchange("GET", url, scopes, {}, sink=sink)
            self._expect(response, (200,), f"GET blob {digest} of {repository}")
            if "sha256:" + hasher.hexdigest() != digest:
                raise RegistryError(f"{self.registry} served blob {digest} with different content")
            os.replace(partial, destination)
            return size

        try:
            return self._retrying(f"pull blob {digest}", attempt)
        finally:
            partial.unlink(missing_ok=True)

    # --- push steps ---------------------------------------------------------------

    def _push_blob(
        self,
        repository: str,
        blob: _Blob,
        scopes: tuple[str, ...],
        mount_from: str | None,
        stats: _Stats,
    ) -> None:
        if self._retrying(
            f"check blob {blob.digest}",
            lambda _: self._blob_exists(repository, blob.digest, scopes),
        ):
            stats.blobs_skipped += 1
            self._progress(Progress("blob-exists", blob.digest, blob.size, blob.size))
            return
        session = None
        if mount_from:
            mounted, session = self._mount(repository, blob, mount_from, scopes)
            if mounted:
                stats.blobs_mounted += 1
                self._progress(Progress("blob-mounted", blob.digest, blob.size, blob.size))
                return
        upload = self._upload_monolithic if blob.size <= self._chunk_size else self._upload_chunked
        upload(repository, blob, scopes, session, stats)
        stats.blobs_uploaded += 1
        self._progress(Progress("blob-uploaded", blob.digest, blob.size, blob.size))

    def _blob_exists(self, repository: str, digest: str, scopes: tuple[str, ...]) -> bool:
        url = f"{self._base_url()}/v2/{repository}/blobs/{digest}"
        response = self._exchange("HEAD", url, scopes, {})
        self._expect(response, (200, 404), f"HEAD blob {digest} of {repository}")
        return response.status == 200

    def _mount(
        self, repository: str, blob: _Blob, mount_from: str, scopes: tuple[str, ...]
    ) -> tuple[bool, _Session | None]:
        """Ask for a cross-repository mount: mounted, or the upload session started instead."""
        query = urlencode({"mount": blob.digest, "from": mount_from})
        url = f"{self._base_url()}/v2/{repository}/blobs/uploads/?{query}"

        def attempt(_: int) -> tuple[bool, _Session | None]:
            response = self._exchange("POST", url, scopes, {"Content-Length": "0"}, b"")
            if response.status == 201:
                return True, None
            if response.status == 202 and response.headers.get("Location"):
                return False, _Session.started(response)
            log.debug(
                "mount of %s from %s refused (HTTP %s); uploading",
                blob.digest,
                mount_from,
                response.status,
            )
            return False, None

        return self._retrying(f"mount blob {blob.digest} from {mount_from}", attempt)

    def _start_upload(self, repository: str, scopes: tuple[str, ...]) -> _Session:
        url = f"{self._base_url()}/v2/{repository}/blobs/uploads/"
        response = self._exchange("POST", url, scopes, {"Content-Length": "0"}, b"")
        self._expect(response, (202,), f"POST blob upload to {repository}")
        if not response.headers.get("Location"):
            raise RegistryError(f"{self.registry} started a blob upload without a Location header")
        return _Session.started(response)

    def _upload_monolithic(
        self,
        repository: str,
        blob: _Blob,
        scopes: tuple[str, ...],
        session: _Session | None,
        stats: _Stats,
    ) -> None:
        """POST for a session, then one streamed PUT of the whole blob."""

        def attempt(failures: int) -> None:
            nonlocal session
            if failures and self._blob_exists(repository, blob.digest, scopes):
                return  # an earlier attempt completed; only its response was lost
            location = (session or self._start_upload(repository, scopes)).location
            session = None  # a session is good for one try
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)}
            response = self._exchange(
                "PUT",
                _with_digest(location, blob.digest),
                scopes,
                headers,
                blob.reader(0, blob.size),
            )
            self._expect(response, (201,), f"PUT blob {blob.digest} to {repository}")
            stats.bytes_uploaded += blob.size

        self._retrying(f"upload blob {blob.digest}", attempt)

    def _upload_chunked(
        self,
        repository: str,
        blob: _Blob,
        scopes: tuple[str, ...],
        session: _Session | None,
        stats: _Stats,
    ) -> None:
        """PATCH chunks at the latest Location; after a failure, resume from its Range."""

        def attempt(failures: int) -> None:
            nonlocal session
            if failures:
                if self._blob_exists(repository, blob.digest, scopes):
                    return
                session = session and self._upload_status(session, scopes)
            session = session or self._start_upload(repository, scopes)
            chunk_size = max(self._chunk_size, session.min_chunk)
            while session.offset < blob.size:
                session = self._patch(repository, blob, session, chunk_size, scopes, stats)
                if session is None:
                    raise _Transient(
                        f"{self.registry} lost track of the upload of {blob.digest}; restarting it"
                    )
            headers = {"Content-Type": "application/octet-stream", "Content-Length": "0"}
            response = self._exchange(
                "PUT", _with_digest(session.location, blob.digest), scopes, headers, b""
            )
            if _upload_gone(response):
                session = None
                raise _Transient(
                    f"{self.registry} forgot the upload of {blob.digest} before it completed"
                )
            self._expect(response, (201,), f"PUT blob {blob.digest} to {repository}")

        self._retrying(f"upload blob {blob.digest}", attempt)

    def _patch(
        self,
        repository: str,
        blob: _Blob,
        session: _Session,
        chunk_size: int,
        scopes: tuple[str, ...],
        stats: _Stats,
    ) -> _Session | None:
        """Send the next chunk; the session after it, or None when the upload must restart."""
        start = session.offset
        length = min(chunk_size, blob.size - start)
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(length),
            "Content-Range": f"{start}-{start + length - 1}",
        }
        response = self._exchange(
            "PATCH", session.location, scopes, headers, blob.reader(start, length)
        )
        if response.status == 416:  # the registry holds a different amount than we thought
            current = self._upload_status(session, scopes)
            return None if current is None or current.offset == start else current
        if _upload_gone(response):
            return None
        self._expect(response, (202,), f"PATCH blob {blob.digest} to {repository}")
        stats.bytes_uploaded += length
        self._progress(Progress("blob-uploading", blob.digest, start + length, blob.size))
        end = _range_end(response.headers.get("Range"))
        return session.moved(response, start + length if end is None else end + 1)

    def _upload_status(self, session: _Session, scopes: tuple[str, ...]) -> _Session | None:
        """Where an interrupted upload stands, or None if the registry forgot it."""
        response = self._exchange("GET", session.location, scopes, {})
        if _upload_gone(response):
            return None
        self._expect(response, (200, 204), "GET blob upload status")
        end = _range_end(response.headers.get("Range"))
        # Registries send "0-0" for an empty upload too: assume empty; if wrong, a 416 says so.
        return session.moved(response, end + 1 if end else 0)

    def _put_manifest(
        self, repository: str, reference: str, image: _LayoutImage, scopes: tuple[str, ...]
    ) -> None:
        url = f"{self._base_url()}/v2/{repository}/manifests/{reference}"

        def attempt(_: int) -> None:
            headers = {"Content-Type": image.media_type}
            response = self._exchange("PUT", url, scopes, headers, image.manifest)
            self._expect(response, (200, 201), f"PUT manifest {reference} to {repository}")
            served = response.headers.get("Docker-Content-Digest")
            if served and served != image.digest:
                raise RegistryError(
                    f"{self.registry} stored manifest {reference} of {repository} as {served}, "
                    f"not {image.digest}: it changed the bytes"
                )

        self._retrying(f"push manifest {reference}", attempt)

    def _push_tag(
        self, repository: str, tag: str, image: _LayoutImage, scopes: tuple[str, ...]
    ) -> int:
        """Point `tag` at the image unless it already does; 1 if it was pushed."""
        current = self._retrying(
            f"resolve tag {tag}", lambda _: self._tag_digest(repository, tag, scopes)
        )
        if current == image.digest:
            self._progress(Progress("tag-unchanged", f"{repository}:{tag}"))
            return 0
        self._put_manifest(repository, tag, image, scopes)
        self._progress(Progress("tag-pushed", f"{repository}:{tag}"))
        return 1

    def _tag_digest(self, repository: str, tag: str, scopes: tuple[str, ...]) -> str | None:
        url = f"{self._base_url()}/v2/{repository}/manifests/{tag}"
        response = self._exchange("HEAD", url, scopes, {"Accept": MANIFEST_ACCEPT})
        self._expect(response, (200, 404), f"HEAD manifest {tag} of {repository}")
        if response.status == 404:
            return None
        digest = response.headers.get("Docker-Content-Digest")
        if digest:
            return digest
        response = self._exchange("GET", url, scopes, {"Accept": MANIFEST_ACCEPT})
        self._expect(response, (200,), f"GET manifest {tag} of {repository}")
        return _sha256(response.body)

    # --- requests, auth and retries ----------------------------------------------

    def _base_url(self) -> str:
        if self._base is None:
            self._base = self._retrying("reach the registry", self._detect_scheme)
        return self._base

    def _detect_scheme(self, _: int) -> str:
        """HTTPS, or HTTP if allowed and HTTPS fails below HTTP; also learns the challenge."""
        failure: _Transient | None = None
        for scheme in ("https", "http") if self._plain_http_allowed else ("https",):
            base = f"{scheme}://{self.registry}"
            try:
                response = self._transport.request("GET", f"{base}/v2/", {"User-Agent": USER_AGENT})
            except _Transient as error:
                if not error.transport:
                    raise  # it speaks HTTP(S) but is briefly unwell: retry the same scheme
                failure = error
                continue
            if response.status == 401:
                self._auth.challenged(response)
            if response.status in (200, 401):
                return base
            failure = _Transient(
                f"GET {base}/v2/ answered HTTP {response.status}, not as a registry"
            )
        assert failure is not None
        raise failure

    def _exchange(
        self,
        method: str,
        url: str,
        scopes: tuple[str, ...],
        headers: Mapping[str, str],
        body: Body = None,
        *,
        sink: Callable[[bytes], None] | None = None,
    ) -> _Response:
        """One request with authorization; a 401 gets one fresh challenge-response try."""
        for attempt in range(2):
            full = {"User-Agent": USER_AGENT, **headers}
            authorization = self._auth.authorization(scopes)
            if authorization:
                full["Authorization"] = authorization
            response = self._transport.request(method, url, full, body, sink=sink)
            if response.status != 401:
                return response
            if attempt or not self._auth.challenged(response, scopes):
                raise self._auth.failure(response)
        raise AssertionError("unreachable")

    def _retrying(self, what: str, attempt: Callable[[int], T]) -> T:
        """Run `attempt(failures so far)`, retrying transient failures within the time budget."""
        deadline = time.monotonic() + self._retry.total_seconds
        failures = 0
        while True:
            try:
                return attempt(failures)
            except _Transient as error:
                failures += 1
                # A Retry-After is a floor: "0" must not turn backoff into a busy loop.
                delay = max(error.retry_after or 0.0, self._retry.delay(failures))
                if time.monotonic() + delay > deadline:
                    raise RegistryError(
                        f"{what} at {self.registry} failed after {failures} attempts: {error}",
                        status=error.status,
                        codes=error.codes,
                    ) from None
                # Visible by default: a push stalled on a sick registry must say why it waits.
                log.warning("%s at %s: %s; retrying in %.1f s", what, self.registry, error, delay)
                time.sleep(delay)

    def _expect(self, response: _Response, statuses: Sequence[int], what: str) -> None:
        if response.status not in statuses:
            detail, codes = _error_detail(response.body)
            raise RegistryError(
                f"{what} at {self.registry} failed: HTTP {response.status}{detail}",
                status=response.status,
                codes=codes,
            )


# --- authentication ----------------------------------------------------------------


class _Auth:
    """Turns the registry's challenge and our credentials into `Authorization` headers."""

    def __init__(
        self, registry: str, credentials: Credentials | None, transport: _Transport
    ) -> None:
        self._registry = registry
        self._credentials = credentials
        self._transport = transport
        self._challenge: Challenge | None = None
        self._basic_sent = False
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}

    def authorization(self, scopes: tuple[str, ...]) -> str | None:
        if self._challenge is None:
            return None
        if self._challenge.scheme == "basic":
            self._basic_sent = True
            return self._basic()
        token, expires = self._tokens.get(scopes, ("", 0.0))
        if time.monotonic() >= expires:
            token, lifetime = self._fetch_token(scopes)
            self._tokens[scopes] = (token, time.monotonic() + lifetime - TOKEN_EXPIRY_MARGIN)
        return f"Bearer {token}"

    def challenged(self, response: _Response, scopes: tuple[str, ...] = ()) -> bool:
        """Learn from a 401; True when a retry with new authorization could succeed."""
        offered = {
            c.scheme: c
            for c in parse_challenges(response.headers.get_all("WWW-Authenticate") or [])
        }
        challenge = offered.get("bearer") or offered.get("basic")
        if challenge is None:
            return False
        if challenge.scheme == "basic":
            retry = bool(self._credentials and self._credentials.password) and not self._basic_sent
        else:
            retry = True
            self._tokens.pop(scopes, None)
        self._challenge = challenge
        return retry

    def failure(self, response: _Response) -> RegistryError:
        detail, codes = _error_detail(response.body)
        if self._credentials is None:
            message = (
                f"{self._registry} requires authentication and no credentials were given for it"
            )
        else:
            message = f"authentication to {self._registry} failed: HTTP 401{detail}"
        return RegistryError(message, status=401, codes=codes)

    def _basic(self) -> str:
        creds = self._credentials or Credentials()
        return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()

    def _fetch_token(self, scopes: tuple[str, ...]) -> tuple[str, float]:
        """A bearer token for `scopes` from the realm; OAuth POST for identity tokens."""
        assert self._challenge is not None
        realm = self._challenge.params.get("realm", "")
        if urlsplit(realm).scheme not in ("http", "https"):
            raise RegistryError(
                f"{self._registry} sent a bearer challenge without an http(s) realm"
            )
        service = self._challenge.params.get("service", "")
        creds = self._credentials
        if creds and creds.identity_token:
            response = self._token_post(realm, service, scopes, creds.identity_token)
            if response.status == 404:  # a token server without the OAuth endpoint
                response = self._token_get(realm, service, scopes)
        else:
            response = self._token_get(realm, service, scopes)
        if response.status in (401, 403):
            detail, codes = _error_detail(response.body)
            raise RegistryError(
                f"authentication to {self._registry} failed: its token service at "
                f"{urlsplit(realm).netloc} refused the credentials "
                f"(HTTP {response.status}{detail})",
                status=response.status,
                codes=codes,
            )
        if response.status != 200:
            detail, codes = _error_detail(response.body)
            raise RegistryError(
                f"token service {urlsplit(realm).netloc} of {self._registry} answered "
                f"HTTP {response.status}{detail}",
                status=response.status,
                codes=codes,
            )
        return _parse_token_reply(response.body, self._registry)

    def _token_get(self, realm: str, service: str, scopes: tuple[str, ...]) -> _Response:
        params = [("service", service)] if service else []
        params += [("scope", scope) for scope in scopes]
        headers = {"User-Agent": USER_AGENT}
        creds = self._credentials
        if creds and creds.password:
            params.append(("account", creds.username))
            headers["Authorization"] = self._basic()
        separator = "&" if urlsplit(realm).query else "?"
        return self._transport.request("GET", f"{realm}{separator}{urlencode(params)}", headers)

    def _token_post(
        self, realm: str, service: str, scopes: tuple[str, ...], refresh_token: str
    ) -> _Response:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "service": service,
            "client_id": CLIENT_ID,
            "scope": " ".join(scopes),
        }
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/x-www-form-urlencoded"}
        return self._transport.request("POST", realm, headers, urlencode(form).encode())


def _parse_token_reply(body: bytes, registry: str) -> tuple[str, float]:
    try:
        reply = json.loads(body)
        token = reply.get("token") or reply.get("access_token")
        lifetime = float(reply.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
    except (ValueError, AttributeError, TypeError):
        token, lifetime = None, 0.0
    if not token or not isinstance(token, str):
        raise RegistryError(f"the token service of {registry} sent no token")
    return token, lifetime


# --- HTTP ------------------------------------------------------------------------------


class _Transient(Exception):
    """A failure worth retrying; `transport` marks ones below HTTP (no response at all)."""

    def __init__(
        self,
        message: str,
        *,
        transport: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
        codes: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.transport = transport
        self.retry_after = retry_after
        self.status = status
        self.codes = tuple(codes)


@dataclass(frozen=True)
class _Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    url: str  # the URL that answered, to resolve relative Locations against


class _Transport:
    """Single HTTP exchanges, one connection each; failures become _Transient or RegistryError."""

    def __init__(self, registry: str, tls: ssl.SSLContext, timeout: float) -> None:
        self._registry = registry
        self._tls = tls
        self._timeout = timeout

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Body = None,
        *,
        sink: Callable[[bytes], None] | None = None,
    ) -> _Response:
        """Send one request, following GET/HEAD redirects (without credentials to other hosts)."""
        headers = dict(headers)
        for _ in range(MAX_REDIRECTS + 1):
            response = self._once(method, url, headers, body, sink)
            location = response.headers.get("Location")
            if (
                method not in ("GET", "HEAD")
                or response.status not in REDIRECT_STATUSES
                or not location
            ):
                return response
            target = urljoin(url, location)
            if urlsplit(target).netloc != urlsplit(url).netloc:
                headers.pop("Authorization", None)
            url = target
        raise RegistryError(
            f"{method} {_path(url)} at {self._registry}: more than {MAX_REDIRECTS} redirects"
        )

    def _once(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Body,
        sink: Callable[[bytes], None] | None,
    ) -> _Response:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = self._connect(parts.scheme, parts.hostname or "", parts.port)
        what = f"{method} {_path(url)}"
        source = body() if callable(body) else body
        sinking = False  # the sink's own errors (a full disk) are not the network's
        try:
            connection.request(method, target, body=source, headers=dict(headers))
            raw = connection.getresponse()
            data = b""
            if sink is not None and 200 <= raw.status < 300:
                for block in iter(lambda: raw.read(IO_BLOCK_SIZE), b""):
                    sinking = True
                    sink(block)
                    sinking = False
            else:
                data = raw.read()
        except ssl.SSLCertVerificationError as error:
            raise RegistryError(
                f"TLS certificate of {parts.netloc} (for {self._registry}) did not verify: "
                f"{error.verify_message}; pass the CA that signed it as a CA bundle"
            ) from None
        except (OSError, http.client.HTTPException) as error:
            if sinking:
                raise
            raise _Transient(f"{what}: {type(error).__name__}: {error}", transport=True) from None
        finally:
            connection.close()
            if isinstance(source, _FileSlice):
                source.close()
        response = _Response(raw.status, raw.headers, data, url)
        if raw.status in RETRYABLE_STATUSES:
            detail, codes = _error_detail(data)
            raise _Transient(
                f"{what}: HTTP {raw.status}{detail}",
                retry_after=_retry_after(raw.headers.get("Retry-After")),
                status=raw.status,
                codes=codes,
            )
        return response

    def _connect(self, scheme: str, host: str, port: int | None) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(
                host, port, timeout=self._timeout, context=self._tls, blocksize=IO_BLOCK_SIZE
            )
        if scheme == "http":
            return http.client.HTTPConnection(
                host, port, timeout=self._timeout, blocksize=IO_BLOCK_SIZE
            )
        raise RegistryError(
            f"{self._registry} pointed at a {scheme!r} URL; only http(s) is supported"
        )


def _tls_context(ca_bundle: Path | None, *, verify: bool) -> ssl.SSLContext:
    """The system's trust store, plus a private CA when one is given; no checks if insecure."""
    context = ssl.create_default_context()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _error_detail(body: bytes) -> tuple[str, tuple[str, ...]]:
    """': CODE: message; ...' from a registry's (or token server's) error body, and the codes."""
    try:
        data = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", errors="replace").strip()
        return (f": {text[:200]}" if text else "", ())
    if not isinstance(data, dict):
        return "", ()
    errors = data.get("errors")
    if isinstance(errors, list):
        parts, codes = [], []
        for error in errors:
            if isinstance(error, dict):
                codes.append(str(error.get("code", "")))
                parts.append(_describe_error(error))
        return (": " + "; ".join(parts) if parts else "", tuple(codes))
    message = (
        data.get("details")
        or data.get("error_description")
        or data.get("error")
        or data.get("message")
    )
    return (f": {str(message)[:200]}" if message else "", ())


def _describe_error(error: Mapping[str, Any]) -> str:
    text = f"{error.get('code', 'UNKNOWN')}: {error.get('message', '')}".rstrip(": ")
    detail = error.get("detail")
    if detail:
        rendered = detail if isinstance(detail, str) else json.dumps(detail, sort_keys=True)
        text += f" ({rendered[:200]})"
    return text


def _path(url: str) -> str:
    """A URL's path for messages: upload URLs carry long opaque state in their query."""
    return urlsplit(url).path


def _with_digest(location: str, digest: str) -> str:
    """Add `digest=` to an upload URL, keeping its own query parameters byte for byte."""
    parts = urlsplit(location)
    kept = [p for p in parts.query.split("&") if p and not p.startswith("digest=")]
    query = "&".join([*kept, urlencode({"digest": digest})])
    return parts._replace(query=query).geturl()


def _upload_gone(response: _Response) -> bool:
    """The registry no longer has the upload session (expired, cancelled or stale state)."""
    return response.status == 404 or not UPLOAD_GONE_CODES.isdisjoint(
        _error_detail(response.body)[1]
    )


def _range_end(value: str | None) -> int | None:
    match = _RANGE.fullmatch(value.strip()) if value else None
    return int(match.group(2)) if match else None


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- the layout being pushed ---------------------------------------------------------


class _FileSlice:
    """`length` bytes of a file from `offset`, read in pieces by http.client as it sends."""

    def __init__(self, path: Path, offset: int, length: int) -> None:
        self._file: BinaryIO = open(path, "rb")
        self._file.seek(offset)
        self._left = length

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self._left:
            size = self._left
        data = self._file.read(size)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class _Blob:
    digest: str
    size: int
    path: Path

    def reader(self, offset: int, length: int) -> Callable[[], _FileSlice]:
        """A body that reopens the file on every try, so a retry resends from the start."""
        return lambda: _FileSlice(self.path, offset, length)


@dataclass(frozen=True)
class _LayoutImage:
    manifest: bytes
    media_type: str
    digest: str
    blobs: tuple[_Blob, ...]  # layers (base first), then the config


@dataclass(frozen=True)
class _Session:
    """An upload in progress: where to send the next request, and how much the registry has."""

    location: str
    offset: int = 0
    min_chunk: int = 0

    @classmethod
    def started(cls, response: _Response) -> _Session:
        min_chunk = response.headers.get("OCI-Chunk-Min-Length", "0")
        return cls(
            urljoin(response.url, response.headers["Location"]),
            0,
            int(min_chunk) if min_chunk.isdigit() else 0,
        )

    def moved(self, response: _Response, offset: int) -> _Session:
        location = response.headers.get("Location")
        return _Session(
            urljoin(response.url, location) if location else self.location, offset, self.min_chunk
        )


@dataclass
class _Stats:
    blobs_uploaded: int = 0
    bytes_uploaded: int = 0
    blobs_skipped: int = 0
    blobs_mounted: int = 0
    tags_pushed: int = 0


def _read_layout(layout: Path) -> _LayoutImage:
    """The layout's one image manifest (bytes as stored) and the blob files it names."""
    digest, manifest = read_manifest(layout)
    parsed = json.loads(manifest)
    media_type = parsed.get("mediaType")
    if not media_type or "config" not in parsed or "layers" not in parsed:
        raise ValueError(f"{layout}: {digest} is not an image manifest with a media type")
    blobs: dict[str, _Blob] = {}
    for descriptor in [*parsed["layers"], parsed["config"]]:
        blobs.setdefault(descriptor["digest"], _layout_blob(layout, descriptor))
    return _LayoutImage(manifest, media_type, digest, tuple(blobs.values()))


def _layout_blob(layout: Path, descriptor: Mapping[str, Any]) -> _Blob:
    digest, size = descriptor["digest"], descriptor["size"]
    validate_digest(digest)  # also keeps the blob path inside the layout
    path = layout / blob_path(digest)
    actual = path.stat().st_size if path.is_file() else None
    if actual != size:
        found = "missing" if actual is None else f"{actual} bytes"
        raise ValueError(f"{layout}: blob {digest} is {found}; the manifest says {size} bytes")
    return _Blob(digest, size, path)
