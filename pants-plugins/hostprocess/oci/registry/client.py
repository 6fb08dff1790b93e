"""A distribution-API client: push the image of an OCI layout, pull manifests and blobs by digest.

Blobs stream from disk and are never read whole into memory; several upload at once. Every
request has a deadline and every read a bound (`transport.py`). Transient failures (dropped
connections, bodies cut short, missed deadlines, 408, 429, 500, 502, 503, 504) are retried
with exponential backoff and jitter within a time budget. Credentials and tokens appear only
in `Authorization` headers sent to the registry's own origin (or its token service), never in
errors, logs or reprs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hostprocess.oci.auth import Credentials
from hostprocess.oci.image import Descriptor
from hostprocess.oci.layout_reader import read_layout_image
from hostprocess.oci.reference import validate_registry, validate_repository, validate_tag
from hostprocess.oci.registry.authorizer import Authorizer
from hostprocess.oci.registry.deadline import Deadlines
from hostprocess.oci.registry.download import pull_blob, pull_manifest
from hostprocess.oci.registry.endpoint import Endpoint
from hostprocess.oci.registry.progress import ProgressCallback
from hostprocess.oci.registry.push import (
    DEFAULT_UPLOAD_WORKERS,
    PushOptions,
    PushResult,
    push_image,
    tag_image,
)
from hostprocess.oci.registry.referrers import (
    Attachment,
    AttachResult,
    Referrer,
    attach,
    list_referrers,
)
from hostprocess.oci.registry.retry import Retry
from hostprocess.oci.registry.transport import Transport, is_loopback, tls_context
from hostprocess.oci.types import validate_digest

DEFAULT_CHUNK_SIZE = 32 << 20  # blobs up to this size go in one PUT, larger ones in chunks


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
        deadlines: Deadlines = Deadlines(),
        retry: Retry = Retry(),
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        upload_workers: int = DEFAULT_UPLOAD_WORKERS,
        progress: ProgressCallback | None = None,
    ) -> None:
        validate_registry(registry)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, not {chunk_size}")
        if upload_workers < 1:
            raise ValueError(f"upload_workers must be positive, not {upload_workers}")
        self.registry = registry
        transport = Transport(registry, tls_context(ca_bundle, verify=not insecure), deadlines)
        self._endpoint = Endpoint(
            registry,
            transport,
            Authorizer(registry, credentials, transport, insecure=insecure),
            retry,
            plain_http_allowed=insecure or is_loopback(registry),
        )
        self._chunk_size = chunk_size
        self._upload_workers = upload_workers
        self._progress = progress or (lambda _: None)

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
        if mount_from:
            validate_repository(mount_from)
        image = read_layout_image(layout)
        options = PushOptions(mount_from, self._chunk_size, self._upload_workers)
        return push_image(self._endpoint, image, repository, tags, options, self._progress)

    def tag(self, layout: Path, repository: str, tags: Sequence[str]) -> PushResult:
        """Point each of `tags` at the layout's image, which must be in `repository` already
        (a previous `push` put it there): no blob or manifest is sent but the tags'."""
        validate_repository(repository)
        for tag in tags:
            validate_tag(tag)
        return tag_image(
            self._endpoint, read_layout_image(layout), repository, tags, self._progress
        )

    def pull_manifest(self, repository: str, digest: str) -> bytes:
        """The manifest stored under `digest`, exactly as served and checked against it."""
        validate_repository(repository)
        validate_digest(digest)
        return pull_manifest(self._endpoint, repository, digest)

    def pull_blob(self, repository: str, digest: str, size: int, destination: Path) -> None:
        """Stream blob `digest` of `size` bytes (as its descriptor says) to `destination`,
        atomically, once verified."""
        validate_repository(repository)
        validate_digest(digest)
        if size < 0:
            raise ValueError(f"blob {digest} cannot have a negative size ({size})")
        pull_blob(self._endpoint, repository, digest, size, destination)

    def attach(
        self, repository: str, subject: Descriptor, attachments: Sequence[Attachment]
    ) -> AttachResult:
        """Attach each document to the manifest `subject` (in `repository`) as an OCI referrer,
        listed by the registry's referrers API or, without one, the referrers tag schema."""
        validate_repository(repository)
        return attach(
            self._endpoint,
            repository,
            subject,
            attachments,
            self._progress,
            chunk_size=self._chunk_size,
        )

    def list_referrers(
        self, repository: str, subject_digest: str, artifact_type: str | None = None
    ) -> tuple[Referrer, ...]:
        """The referrers of `subject_digest` in `repository`, of `artifact_type` if given."""
        validate_repository(repository)
        return list_referrers(self._endpoint, repository, subject_digest, artifact_type)
