"""Getting one blob into a repository: found already there, mounted from another repository,
or uploaded (one streamed PUT when small, PATCH chunks when large).

A chunked upload that fails midway resumes from the registry's `Range` rather than starting
over, and an upload whose response was lost is found by a HEAD instead of being sent again.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Protocol
from urllib.parse import urlencode, urljoin, urlsplit

from hostprocess.oci.registry.authorizer import Scopes
from hostprocess.oci.registry.endpoint import Endpoint
from hostprocess.oci.registry.errors import Cancelled, RegistryError, TransientError
from hostprocess.oci.registry.progress import Progress, ProgressCallback
from hostprocess.oci.registry.transport import BodyStream, Response, error_detail

log = logging.getLogger(__name__)

_RANGE = re.compile(r"(?:bytes=)?(\d+)-(\d+)")
UPLOAD_GONE_CODES = frozenset({"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"})
OCTET_STREAM = "application/octet-stream"


class Blob(Protocol):
    """What an upload needs of a blob: a layout's file (`LayoutBlob`) or bytes in memory."""

    @property
    def digest(self) -> str:
        ...

    @property
    def size(self) -> int:
        ...

    def reader(self, offset: int, length: int) -> Callable[[], BodyStream]:
        """A body of `length` bytes from `offset`, made afresh for every try."""
        ...


class BlobAction(Enum):
    """How a blob got into the repository; the value is its progress event."""

    SKIPPED = "blob-exists"
    MOUNTED = "blob-mounted"
    UPLOADED = "blob-uploaded"


@dataclass(frozen=True)
class BlobPushed:
    action: BlobAction
    bytes_sent: int  # blob bytes the registry acknowledged, resent chunks included


@dataclass(frozen=True)
class UploadSession:
    """An upload in progress: where to send the next request, and how much the registry has."""

    location: str
    offset: int = 0
    min_chunk: int = 0

    @classmethod
    def started(cls, response: Response) -> UploadSession:
        min_chunk = response.headers.get("OCI-Chunk-Min-Length", "0")
        return cls(
            urljoin(response.url, response.headers["Location"]),
            0,
            int(min_chunk) if min_chunk.isdigit() else 0,
        )

    def moved(self, response: Response, offset: int) -> UploadSession:
        location = response.headers.get("Location")
        return UploadSession(
            urljoin(response.url, location) if location else self.location, offset, self.min_chunk
        )


class BlobUploader:
    """Pushes blobs to one repository; `push` may run in several threads at once."""

    def __init__(
        self,
        endpoint: Endpoint,
        repository: str,
        scopes: Scopes,
        *,
        mount_from: str | None,
        chunk_size: int,
        progress: ProgressCallback,
    ) -> None:
        self._endpoint = endpoint
        self._repository = repository
        self._scopes = scopes
        self._mount_from = mount_from
        self._chunk_size = chunk_size
        self._progress = progress

    def push(self, blob: Blob, stop: threading.Event) -> BlobPushed:
        """Make sure the repository holds `blob`; `stop` abandons it with `Cancelled`."""
        if self._endpoint.retrying(
            f"check blob {blob.digest}", lambda _: self._exists(blob.digest), stop=stop
        ):
            return self._done(blob, BlobPushed(BlobAction.SKIPPED, 0))
        session = None
        if self._mount_from:
            mounted, session = self._mount(blob, self._mount_from, stop)
            if mounted:
                return self._done(blob, BlobPushed(BlobAction.MOUNTED, 0))
        if blob.size <= self._chunk_size:
            sent = self._upload_monolithic(blob, session, stop)
        else:
            sent = self._upload_chunked(blob, session, stop)
        return self._done(blob, BlobPushed(BlobAction.UPLOADED, sent))

    def _done(self, blob: Blob, pushed: BlobPushed) -> BlobPushed:
        self._progress(Progress(pushed.action.value, blob.digest, blob.size, blob.size))
        return pushed

    def _url(self, rest: str) -> str:
        return f"{self._endpoint.base_url()}/v2/{self._repository}/blobs/{rest}"

    def _exists(self, digest: str) -> bool:
        response = self._endpoint.exchange("HEAD", self._url(digest), self._scopes, {})
        self._endpoint.expect(response, (200, 404), f"HEAD blob {digest} of {self._repository}")
        return response.status == 200

    def _mount(
        self, blob: Blob, mount_from: str, stop: threading.Event
    ) -> tuple[bool, UploadSession | None]:
        """Ask for a cross-repository mount: mounted, or the upload session started instead."""
        url = self._url("uploads/?" + urlencode({"mount": blob.digest, "from": mount_from}))

        def attempt(_: int) -> tuple[bool, UploadSession | None]:
            response = self._endpoint.exchange(
                "POST", url, self._scopes, {"Content-Length": "0"}, b""
            )
            if response.status == 201:
                return True, None
            if response.status == 202 and response.headers.get("Location"):
                return False, UploadSession.started(response)
            log.debug(
                "mount of %s from %s refused (HTTP %s); uploading",
                blob.digest,
                mount_from,
                response.status,
            )
            return False, None

        return self._endpoint.retrying(
            f"mount blob {blob.digest} from {mount_from}", attempt, stop=stop
        )

    def _start_upload(self, digest: str) -> UploadSession:
        headers = {"Content-Length": "0"}
        response = self._endpoint.exchange(
            "POST", self._url("uploads/"), self._scopes, headers, b""
        )
        self._endpoint.expect(
            response, (202,), f"POST upload of blob {digest} to {self._repository}"
        )
        if not response.headers.get("Location"):
            raise RegistryError(
                f"{self._endpoint.registry} started the upload of blob {digest} "
                "without a Location header"
            )
        return UploadSession.started(response)

    def _upload_monolithic(
        self, blob: Blob, session: UploadSession | None, stop: threading.Event
    ) -> int:
        """POST for a session, then one streamed PUT of the whole blob; the bytes sent."""

        def attempt(failures: int) -> int:
            nonlocal session
            if failures and self._exists(blob.digest):
                return 0  # an earlier attempt completed; only its response was lost
            location = (session or self._start_upload(blob.digest)).location
            session = None  # a session is good for one try
            headers = {"Content-Type": OCTET_STREAM, "Content-Length": str(blob.size)}
            response = self._endpoint.exchange(
                "PUT",
                _with_digest(location, blob.digest),
                self._scopes,
                headers,
                blob.reader(0, blob.size),
            )
            self._expect_created(response, blob)
            return blob.size

        return self._endpoint.retrying(f"upload blob {blob.digest}", attempt, stop=stop)

    def _upload_chunked(
        self, blob: Blob, session: UploadSession | None, stop: threading.Event
    ) -> int:
        """PATCH chunks at the latest Location; after a failure, resume from its Range."""
        sent = 0

        def attempt(failures: int) -> None:
            nonlocal session, sent
            if failures:
                if self._exists(blob.digest):
                    return
                session = session and self._upload_status(session, blob.digest)
            session = session or self._start_upload(blob.digest)
            chunk_size = max(self._chunk_size, session.min_chunk)
            while session.offset < blob.size:
                if stop.is_set():
                    raise Cancelled(f"upload of blob {blob.digest}")
                session, acknowledged = self._patch(blob, session, chunk_size)
                sent += acknowledged
                if session is None:
                    raise TransientError(
                        f"{self._endpoint.registry} lost track of the upload of {blob.digest}; "
                        "restarting it"
                    )
            headers = {"Content-Type": OCTET_STREAM, "Content-Length": "0"}
            location = _with_digest(session.location, blob.digest)
            response = self._endpoint.exchange("PUT", location, self._scopes, headers, b"")
            if _upload_gone(response):
                session = None
                raise TransientError(
                    f"{self._endpoint.registry} forgot the upload of {blob.digest} "
                    "before it completed"
                )
            self._expect_created(response, blob)

        self._endpoint.retrying(f"upload blob {blob.digest}", attempt, stop=stop)
        return sent

    def _patch(
        self, blob: Blob, session: UploadSession, chunk_size: int
    ) -> tuple[UploadSession | None, int]:
        """Send the next chunk: the session after it (None when the upload must restart), and
        how many bytes the registry acknowledged."""
        start = session.offset
        length = min(chunk_size, blob.size - start)
        headers = {
            "Content-Type": OCTET_STREAM,
            "Content-Length": str(length),
            "Content-Range": f"{start}-{start + length - 1}",
        }
        response = self._endpoint.exchange(
            "PATCH", session.location, self._scopes, headers, blob.reader(start, length)
        )
        if response.status == 416:  # the registry holds a different amount than we thought
            current = self._upload_status(session, blob.digest)
            return (None if current is None or current.offset == start else current), 0
        if _upload_gone(response):
            return None, 0
        self._endpoint.expect(response, (202,), f"PATCH blob {blob.digest} to {self._repository}")
        self._progress(Progress("blob-uploading", blob.digest, start + length, blob.size))
        end = _range_end(response.headers.get("Range"))
        return session.moved(response, start + length if end is None else end + 1), length

    def _upload_status(self, session: UploadSession, digest: str) -> UploadSession | None:
        """Where an interrupted upload stands, or None if the registry forgot it."""
        response = self._endpoint.exchange("GET", session.location, self._scopes, {})
        if _upload_gone(response):
            return None
        self._endpoint.expect(response, (200, 204), f"GET upload status of blob {digest}")
        end = _range_end(response.headers.get("Range"))
        # Registries send "0-0" for an empty upload too: assume empty; if wrong, a 416 says so.
        return session.moved(response, end + 1 if end else 0)

    def _expect_created(self, response: Response, blob: Blob) -> None:
        self._endpoint.expect(response, (201,), f"PUT blob {blob.digest} to {self._repository}")


def _with_digest(location: str, digest: str) -> str:
    """Add `digest=` to an upload URL, keeping its own query parameters byte for byte."""
    parts = urlsplit(location)
    kept = [p for p in parts.query.split("&") if p and not p.startswith("digest=")]
    query = "&".join([*kept, urlencode({"digest": digest})])
    return parts._replace(query=query).geturl()


def _upload_gone(response: Response) -> bool:
    """The registry no longer has the upload session (expired, cancelled or stale state)."""
    return response.status == 404 or not UPLOAD_GONE_CODES.isdisjoint(
        error_detail(response.body)[1]
    )


def _range_end(value: str | None) -> int | None:
    match = _RANGE.fullmatch(value.strip()) if value else None
    return int(match.group(2)) if match else None
