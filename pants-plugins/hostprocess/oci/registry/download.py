"""Reading from a registry by digest or tag: manifests checked against their digest, blobs
streamed to disk and verified before they appear under their name."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from hostprocess.oci.registry.authorizer import Scopes
from hostprocess.oci.registry.endpoint import Endpoint
from hostprocess.oci.registry.errors import RegistryError
from hostprocess.oci.types import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    hasher_digest,
    sha256_digest,
)

MANIFEST_ACCEPT = ", ".join((OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST))


def pull_manifest(endpoint: Endpoint, repository: str, digest: str) -> bytes:
    """The manifest stored under `digest`, exactly as served and checked against it."""
    scopes = (f"repository:{repository}:pull",)
    url = f"{endpoint.base_url()}/v2/{repository}/manifests/{digest}"
    response = endpoint.retrying(
        f"pull manifest {digest}",
        lambda _: endpoint.exchange("GET", url, scopes, {"Accept": MANIFEST_ACCEPT}),
    )
    endpoint.expect(response, (200,), f"GET manifest {digest} of {repository}")
    if sha256_digest(response.body) != digest:
        raise RegistryError(
            f"{endpoint.registry} served a manifest for {digest} whose digest differs"
        )
    return response.body


def pull_blob(
    endpoint: Endpoint, repository: str, digest: str, size: int, destination: Path
) -> None:
    """Stream blob `digest` of `size` bytes to `destination`, atomically, once verified.

    The read stops as soon as the body passes `size`; a body cut short is retried like a
    dropped connection. Only a complete body with another digest is called tampering.
    """
    scopes = (f"repository:{repository}:pull",)
    url = f"{endpoint.base_url()}/v2/{repository}/blobs/{digest}"
    partial = destination.with_name(f".{destination.name}.partial")

    def attempt(_: int) -> None:
        hasher = hashlib.sha256()
        with open(partial, "wb") as out:

            def sink(data: bytes) -> None:
                out.write(data)
                hasher.update(data)

            response = endpoint.exchange("GET", url, scopes, {}, sink=sink, size=size)
        endpoint.expect(response, (200,), f"GET blob {digest} of {repository}")
        if hasher_digest(hasher) != digest:
            raise RegistryError(f"{endpoint.registry} served blob {digest} with different content")
        os.replace(partial, destination)

    try:
        endpoint.retrying(f"pull blob {digest}", attempt)
    finally:
        partial.unlink(missing_ok=True)


def tag_digest(endpoint: Endpoint, repository: str, tag: str, scopes: Scopes) -> str | None:
    """The digest `tag` points at, or None if the repository has no such tag."""
    url = f"{endpoint.base_url()}/v2/{repository}/manifests/{tag}"
    response = endpoint.exchange("HEAD", url, scopes, {"Accept": MANIFEST_ACCEPT})
    endpoint.expect(response, (200, 404), f"HEAD manifest {tag} of {repository}")
    if response.status == 404:
        return None
    digest: str | None = response.headers.get("Docker-Content-Digest")
    if digest:
        return digest
    response = endpoint.exchange("GET", url, scopes, {"Accept": MANIFEST_ACCEPT})
    endpoint.expect(response, (200,), f"GET manifest {tag} of {repository}")
    return sha256_digest(response.body)
