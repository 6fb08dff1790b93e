"""Pushing a layout's image: every blob, several at a time, then the manifest, then the tags.

The manifest goes up only once every blob is confirmed, so a registry never holds a manifest
whose blobs are missing. The first blob that fails for good stops the others (queued ones
never start, running ones stop at their next chunk or retry and are awaited), no manifest
is pushed, and that first failure is the error raised; tags stay untouched. Tags move one
after the other, so a tag that fails leaves the earlier ones moved: `TagsNotMoved` says
exactly which references point at the image and which do not.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

from hostprocess.oci.layout_reader import LayoutBlob, LayoutImage
from hostprocess.oci.reference import Reference
from hostprocess.oci.registry.authorizer import Scopes
from hostprocess.oci.registry.download import tag_digest
from hostprocess.oci.registry.endpoint import Endpoint
from hostprocess.oci.registry.errors import Cancelled, RegistryError
from hostprocess.oci.registry.progress import Progress, ProgressCallback, one_at_a_time
from hostprocess.oci.registry.upload import BlobAction, BlobPushed, BlobUploader
from hostprocess.oci.types import sha256_digest

DEFAULT_UPLOAD_WORKERS = 4  # blobs in flight at once, as go-containerregistry's default jobs


@dataclass(frozen=True)
class PushResult:
    """Each pushed reference (`host/repo:tag`, `host/repo@digest`) mapped to the digest."""

    references: Mapping[str, str]
    blobs_uploaded: int
    bytes_uploaded: int
    blobs_skipped: int
    blobs_mounted: int
    tags_pushed: int


class TagsNotMoved(RegistryError):
    """The image is in the registry, but a tag could not be pointed at it.

    `result.references` are exactly the references that now point at the image (its digest,
    the tags moved and the tags that already pointed there). `not_moved` are the tags that
    did not move: the one that failed (which may have moved unseen, if the registry acted
    on a request whose answer was lost), then those never tried.
    """

    def __init__(
        self, message: str, *, result: PushResult, not_moved: Sequence[str], cause: RegistryError
    ) -> None:
        super().__init__(message, status=cause.status, codes=cause.codes)
        self.result = result
        self.not_moved = tuple(not_moved)


@dataclass(frozen=True)
class PushOptions:
    mount_from: str | None  # a repository on the same registry that may hold the blobs
    chunk_size: int  # blobs up to this size go in one PUT, larger ones in chunks
    upload_workers: int  # blobs pushed at once


def push_image(
    endpoint: Endpoint,
    image: LayoutImage,
    repository: str,
    tags: Sequence[str],
    options: PushOptions,
    progress: ProgressCallback,
) -> PushResult:
    """Push `image` to `repository`, then point each of `tags` at it."""
    scopes: Scopes = (f"repository:{repository}:pull,push",)
    if options.mount_from:
        scopes += (f"repository:{options.mount_from}:pull",)
    report = one_at_a_time(progress)
    endpoint.base_url()  # the scheme and the challenge, learnt once before the threads start
    uploader = BlobUploader(
        endpoint,
        repository,
        scopes,
        mount_from=options.mount_from,
        chunk_size=options.chunk_size,
        progress=report,
    )
    pushed = _push_blobs(uploader, image.blobs, options.upload_workers)
    _put_manifest(endpoint, repository, image.digest, image, scopes)
    report(Progress("manifest-pushed", f"{repository}@{image.digest}"))
    return _move_tags(endpoint, image, repository, tags, scopes, pushed, report)


def tag_image(
    endpoint: Endpoint,
    image: LayoutImage,
    repository: str,
    tags: Sequence[str],
    progress: ProgressCallback,
) -> PushResult:
    """Point each of `tags` at `image`, which an earlier push put in `repository`."""
    scopes: Scopes = (f"repository:{repository}:pull,push",)
    return _move_tags(endpoint, image, repository, tags, scopes, [], one_at_a_time(progress))


def _move_tags(
    endpoint: Endpoint,
    image: LayoutImage,
    repository: str,
    tags: Sequence[str],
    scopes: Scopes,
    pushed: Sequence[BlobPushed],
    report: ProgressCallback,
) -> PushResult:
    """Point each tag at the image in turn; the first that fails raises `TagsNotMoved`."""
    references = {str(Reference(endpoint.registry, repository, digest=image.digest)): image.digest}
    tags_pushed = 0
    unique = list(dict.fromkeys(tags))
    for index, tag in enumerate(unique):
        try:
            tags_pushed += _push_tag(endpoint, repository, tag, image, scopes, report)
        except RegistryError as error:
            moved = _result(pushed, references, tags_pushed)
            raise _tags_not_moved(endpoint, repository, unique[index:], moved, error) from error
        references[str(Reference(endpoint.registry, repository, tag=tag))] = image.digest
    return _result(pushed, references, tags_pushed)


def _result(pushed: Sequence[BlobPushed], references: Mapping[str, str], tags: int) -> PushResult:
    actions = [blob.action for blob in pushed]
    return PushResult(
        dict(references),
        blobs_uploaded=actions.count(BlobAction.UPLOADED),
        bytes_uploaded=sum(blob.bytes_sent for blob in pushed),
        blobs_skipped=actions.count(BlobAction.SKIPPED),
        blobs_mounted=actions.count(BlobAction.MOUNTED),
        tags_pushed=tags,
    )


def _tags_not_moved(
    endpoint: Endpoint,
    repository: str,
    tags: Sequence[str],
    moved: PushResult,
    error: RegistryError,
) -> TagsNotMoved:
    """The failure of `tags[0]`, naming what points at the image now and what does not."""
    not_moved = [str(Reference(endpoint.registry, repository, tag=tag)) for tag in tags]
    digest = next(iter(moved.references.values()))  # each reference maps to the image's
    return TagsNotMoved(
        f"tag {tags[0]} of {repository} at {endpoint.registry} was not moved: {error}. "
        f"Now at {digest}: {', '.join(moved.references)}. "
        f"Not moved: {', '.join(not_moved)}; push again to move them",
        result=moved,
        not_moved=not_moved,
        cause=error,
    )


class _FirstFailure:
    """The first error of any upload thread, and the signal that tells the others to stop."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.error: Exception | None = None
        self._lock = threading.Lock()

    def record(self, error: Exception) -> None:
        with self._lock:
            if self.error is None:
                self.error = error
            self.stop.set()


def _push_blobs(
    uploader: BlobUploader, blobs: Sequence[LayoutBlob], workers: int
) -> list[BlobPushed]:
    """Every blob, at most `workers` at a time; all confirmed, or the first failure raised."""
    failure = _FirstFailure()

    def push(blob: LayoutBlob) -> BlobPushed:
        if failure.stop.is_set():
            raise Cancelled(f"push of blob {blob.digest}")
        try:
            return uploader.push(blob, failure.stop)
        except Cancelled:
            raise
        except Exception as error:
            failure.record(error)
            raise

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hostprocess-blob")
    try:
        futures = [pool.submit(push, blob) for blob in blobs]
        wait(futures, return_when=FIRST_EXCEPTION)
    finally:
        failure.stop.set()  # a no-op when every blob is done; otherwise the others stop
        pool.shutdown(wait=True, cancel_futures=True)
    if failure.error is not None:
        raise failure.error
    return [future.result() for future in futures]


def _put_manifest(
    endpoint: Endpoint, repository: str, reference: str, image: LayoutImage, scopes: Scopes
) -> None:
    """PUT the manifest under `reference`; the registry must show it stored exactly our bytes."""
    url = f"{endpoint.base_url()}/v2/{repository}/manifests/{reference}"

    def attempt(_: int) -> str | None:
        headers = {"Content-Type": image.media_type}
        response = endpoint.exchange("PUT", url, scopes, headers, image.manifest)
        endpoint.expect(response, (200, 201), f"PUT manifest {reference} to {repository}")
        served: str | None = response.headers.get("Docker-Content-Digest") or None
        return served

    served = endpoint.retrying(f"push manifest {reference}", attempt)
    if served is None:  # not said, so not taken on trust: read back what it stored
        for stored_under in dict.fromkeys((image.digest, reference)):
            served = _stored_digest(endpoint, repository, stored_under, image, scopes)
            _check_stored(endpoint, repository, stored_under, image, served)
    else:
        _check_stored(endpoint, repository, reference, image, served)


def _stored_digest(
    endpoint: Endpoint, repository: str, reference: str, image: LayoutImage, scopes: Scopes
) -> str | None:
    """The sha256 of the manifest served under `reference` as our media type, None if absent."""
    url = f"{endpoint.base_url()}/v2/{repository}/manifests/{reference}"

    def attempt(_: int) -> str | None:
        response = endpoint.exchange("GET", url, scopes, {"Accept": image.media_type})
        endpoint.expect(response, (200, 404), f"GET manifest {reference} of {repository}")
        return sha256_digest(response.body) if response.status == 200 else None

    return endpoint.retrying(f"confirm manifest {reference}", attempt)


def _check_stored(
    endpoint: Endpoint, repository: str, reference: str, image: LayoutImage, served: str | None
) -> None:
    if served != image.digest:
        raise RegistryError(
            f"{endpoint.registry} stored manifest {reference} of {repository} as "
            f"{served or 'nothing'}, not {image.digest}: it changed or dropped the bytes; "
            "check the registry (or the proxy in front of it)"
        )


def _push_tag(
    endpoint: Endpoint,
    repository: str,
    tag: str,
    image: LayoutImage,
    scopes: Scopes,
    report: ProgressCallback,
) -> int:
    """Point `tag` at the image unless it already does; 1 if it was pushed."""
    current = endpoint.retrying(
        f"resolve tag {tag}", lambda _: tag_digest(endpoint, repository, tag, scopes)
    )
    if current == image.digest:
        report(Progress("tag-unchanged", f"{repository}:{tag}"))
        return 0
    _put_manifest(endpoint, repository, tag, image, scopes)
    report(Progress("tag-pushed", f"{repository}:{tag}"))
    return 1
