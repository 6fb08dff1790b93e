"""The registry client's claims, each against a real registry behind a proxy that can lie.

README's "Publishing" section promises which failures are retried, how many blobs go up at
once, that the registry's digest for a manifest is checked (and, when it gives none, that
the stored bytes are read back), what a failed push leaves behind and that an address that
is not a registry fails at once. Each test here could fail if one of those stopped holding.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from hostprocess.oci.cli import main
from hostprocess.oci.commands import PushCommand
from hostprocess.oci.registry import RegistryClient, RegistryError, Retry, TagsNotMoved
from hostprocess.oci.types import sha256_digest

pytest.register_assert_rewrite("oci.registry_servers")
from oci.registry_servers import (  # noqa: E402; noqa: E402,
    CORRUPT,
    FORWARD,
    BuiltImage,
    FaultProxy,
    Policy,
    RegistryServer,
    Rewrite,
    RewritingProxy,
    assert_served,
    layered_image,
    max_in_flight,
    replaced_reply,
    skopeo_inspect,
    unique_repository,
    with_header,
    without_header,
)

pytest_plugins = ["oci.registry_servers"]

FAST_RETRY = Retry(total_seconds=20, first_delay=0.01, max_delay=0.2)
RETRIED = (408, 429, 500, 502, 503, 504)


class _StartRewriting(Protocol):
    def __call__(self, rewrite: Rewrite, policy: Policy = ...) -> RewritingProxy:
        ...


@pytest.fixture
def start_rewriting(anonymous_registry: RegistryServer) -> Iterator[_StartRewriting]:
    started: list[RewritingProxy] = []

    def start(rewrite: Rewrite, policy: Policy = lambda method, path: FORWARD) -> RewritingProxy:
        started.append(RewritingProxy(anonymous_registry.host, rewrite, policy))
        return started[-1]

    yield start
    for proxy in started:
        proxy.stop()


def manifest_put(method: str, path: str) -> bool:
    return method == "PUT" and "/manifests/" in path


def tag_exists(host: str, repository: str, tag: str) -> bool:
    return skopeo_inspect(f"{host}/{repository}:{tag}", raw=True).returncode == 0


def served_digest(host: str, repository: str, tag: str) -> str:
    result = skopeo_inspect(f"{host}/{repository}:{tag}", raw=True)
    assert result.returncode == 0, result.stderr.decode()
    return sha256_digest(result.stdout)


# --- which failures are retried ------------------------------------------------------------


@pytest.mark.parametrize("status", RETRIED)
def test_a_retryable_status_is_retried(
    anonymous_registry: RegistryServer,
    proxy: FaultProxy,
    small_image: BuiltImage,
    repository: str,
    status: int,
) -> None:
    failed: list[str] = []

    def fail_twice(method: str, path: str) -> str:
        if manifest_put(method, path) and len(failed) < 2:
            failed.append(path)
            return str(status)
        return FORWARD

    proxy.policy = fail_twice
    result = RegistryClient(proxy.host, retry=FAST_RETRY).push(
        small_image.layout, repository, small_image.tags
    )
    assert result.references[f"{proxy.host}/{repository}:v1"] == small_image.image.digest
    by_digest = f"/v2/{repository}/manifests/{small_image.image.digest}"
    puts = [r.path for r in proxy.records if r.method == "PUT" and r.path == by_digest]
    assert puts == [by_digest] * 3, "two injected failures, then the try that succeeded"
    assert_served(anonymous_registry.host, repository, small_image)


@pytest.mark.parametrize("status", [400, 403, 501, 505])
def test_any_other_status_fails_at_once(
    anonymous_registry: RegistryServer,
    proxy: FaultProxy,
    small_image: BuiltImage,
    repository: str,
    status: int,
) -> None:
    proxy.policy = lambda method, path: str(status) if manifest_put(method, path) else FORWARD
    with pytest.raises(RegistryError, match=rf"PUT manifest .* failed: HTTP {status}") as raised:
        RegistryClient(proxy.host, retry=Retry()).push(
            small_image.layout, repository, small_image.tags
        )
    assert raised.value.status == status
    assert len([r for r in proxy.records if manifest_put(r.method, r.path)]) == 1
    assert not tag_exists(anonymous_registry.host, repository, "v1")


# --- the default number of concurrent uploads ----------------------------------------------


def test_four_blobs_upload_at_once_by_default(
    anonymous_registry: RegistryServer,
    proxy: FaultProxy,
    tmp_path: Path,
    cc0_path: Path,
    repository: str,
) -> None:
    built = layered_image(tmp_path / "layout", cc0_path, 6)
    proxy.latency = 0.2  # every request takes a while, so uploads that can overlap do
    result = RegistryClient(proxy.host).push(built.layout, repository, built.tags)
    assert result.blobs_uploaded == len(built.image.layers) + 1 == 8
    assert max_in_flight([r for r in proxy.records if "/blobs/" in r.path]) == 4
    assert_served(anonymous_registry.host, repository, built)


# --- the manifest's digest, as the registry stored it ----------------------------------------


def test_a_registry_naming_another_digest_for_the_manifest_fails_the_push(
    anonymous_registry: RegistryServer,
    start_rewriting: _StartRewriting,
    small_image: BuiltImage,
    repository: str,
) -> None:
    other = sha256_digest(b"another manifest")
    proxy = start_rewriting(with_header("Docker-Content-Digest", other, manifest_put))
    with pytest.raises(RegistryError) as raised:
        RegistryClient(proxy.host, retry=FAST_RETRY).push(
            small_image.layout, repository, small_image.tags
        )
    message = str(raised.value)
    assert proxy.host in message and repository in message
    assert other in message and small_image.image.digest in message
    assert not isinstance(raised.value, TagsNotMoved), "the digest's own PUT failed: no tag"
    assert not tag_exists(anonymous_registry.host, repository, "v1")


def test_a_missing_digest_header_is_confirmed_by_reading_the_manifest_back(
    anonymous_registry: RegistryServer,
    start_rewriting: _StartRewriting,
    small_image: BuiltImage,
    repository: str,
) -> None:
    proxy = start_rewriting(without_header("Docker-Content-Digest", manifest_put))
    result = RegistryClient(proxy.host, retry=FAST_RETRY).push(
        small_image.layout, repository, small_image.tags
    )
    assert result.references[f"{proxy.host}/{repository}:latest"] == small_image.image.digest
    reads = [r.path for r in proxy.records if r.method == "GET" and "/manifests/" in r.path]
    manifests = f"/v2/{repository}/manifests"
    assert reads == [
        f"{manifests}/{small_image.image.digest}",  # after the PUT by digest
        f"{manifests}/{small_image.image.digest}",  # after the PUT of v1: the digest, then v1
        f"{manifests}/v1",
        f"{manifests}/{small_image.image.digest}",
        f"{manifests}/latest",
    ]
    assert_served(anonymous_registry.host, repository, small_image)


def test_a_registry_that_answers_a_manifest_put_without_storing_it_fails_the_push(
    anonymous_registry: RegistryServer, proxy: FaultProxy, small_image: BuiltImage, repository: str
) -> None:
    """201 without the header, and nothing stored: the read-back finds no manifest."""
    proxy.policy = lambda method, path: "201" if manifest_put(method, path) else FORWARD
    with pytest.raises(RegistryError) as raised:
        RegistryClient(proxy.host, retry=FAST_RETRY).push(
            small_image.layout, repository, small_image.tags
        )
    digest = small_image.image.digest
    assert str(raised.value) == (
        f"{proxy.host} stored manifest {digest} of {repository} as nothing, not {digest}: "
        "it changed or dropped the bytes; check the registry (or the proxy in front of it)"
    )
    assert not tag_exists(anonymous_registry.host, repository, "v1")


def test_a_registry_that_serves_other_bytes_than_it_was_sent_fails_the_push(
    anonymous_registry: RegistryServer,
    start_rewriting: _StartRewriting,
    small_image: BuiltImage,
    repository: str,
) -> None:
    """No header on the PUT, and the read-back serves altered bytes: both digests are named."""

    def corrupt_reads(method: str, path: str) -> str:
        return CORRUPT if method == "GET" and "/manifests/" in path else FORWARD

    proxy = start_rewriting(without_header("Docker-Content-Digest", manifest_put), corrupt_reads)
    manifest = small_image.image.manifest
    altered = sha256_digest(manifest[:-1] + bytes([manifest[-1] ^ 0xFF]))
    with pytest.raises(RegistryError) as raised:
        RegistryClient(proxy.host, retry=FAST_RETRY).push(
            small_image.layout, repository, small_image.tags
        )
    digest = small_image.image.digest
    assert str(raised.value).startswith(
        f"{proxy.host} stored manifest {digest} of {repository} as {altered}, not {digest}:"
    )
    assert not tag_exists(anonymous_registry.host, repository, "v1")


def test_a_tag_put_answered_without_storing_it_is_reported_not_moved(
    anonymous_registry: RegistryServer,
    start_rewriting: _StartRewriting,
    small_image: BuiltImage,
    repository: str,
) -> None:
    """The tag's own read-back: the digest is stored, but the tag the registry said it set is
    not there."""
    tag_put = f"/v2/{repository}/manifests/v1"
    proxy = start_rewriting(
        without_header("Docker-Content-Digest", manifest_put),
        lambda method, path: "201" if method == "PUT" and path == tag_put else FORWARD,
    )
    with pytest.raises(TagsNotMoved) as raised:
        RegistryClient(proxy.host, retry=FAST_RETRY).push(small_image.layout, repository, ["v1"])
    digest = small_image.image.digest
    assert f"stored manifest v1 of {repository} as nothing, not {digest}" in str(raised.value)
    assert dict(raised.value.result.references) == {f"{proxy.host}/{repository}@{digest}": digest}
    assert raised.value.not_moved == (f"{proxy.host}/{repository}:v1",)
    assert not tag_exists(anonymous_registry.host, repository, "v1")


# --- what a failed push leaves behind ------------------------------------------------------


def fail_tag(tag: str, repository: str, status: str = "400") -> Policy:
    """Fail every PUT of manifest `tag` for good; forward everything else."""
    target = f"/v2/{repository}/manifests/{tag}"
    return lambda method, path: status if method == "PUT" and path == target else FORWARD


def test_a_failed_tag_leaves_the_earlier_tags_moved_exactly_as_reported(
    anonymous_registry: RegistryServer, proxy: FaultProxy, small_image: BuiltImage, repository: str
) -> None:
    RegistryClient(anonymous_registry.host).push(small_image.layout, repository, ["a"])
    proxy.policy = fail_tag("b", repository)
    with pytest.raises(TagsNotMoved) as raised:
        RegistryClient(proxy.host, retry=FAST_RETRY).push(
            small_image.layout, repository, ["a", "new", "b", "c"]
        )
    digest, at = small_image.image.digest, f"{proxy.host}/{repository}"
    error = raised.value
    assert dict(error.result.references) == {
        f"{at}@{digest}": digest,
        f"{at}:a": digest,  # already there: unchanged, but it does point at the image
        f"{at}:new": digest,
    }
    assert error.result.tags_pushed == 1
    assert error.not_moved == (f"{at}:b", f"{at}:c")
    assert (error.status, error.codes) == (400, ("INJECTED",))
    assert str(error).startswith(f"tag b of {repository} at {proxy.host} was not moved: ")
    assert f"Now at {digest}: {at}@{digest}, {at}:a, {at}:new. " in str(error)
    assert f"Not moved: {at}:b, {at}:c; push again to move them" in str(error)
    for tag in ("a", "new"):
        assert served_digest(anonymous_registry.host, repository, tag) == digest
    assert not tag_exists(anonymous_registry.host, repository, "b")
    assert not tag_exists(anonymous_registry.host, repository, "c")
    assert not [r for r in proxy.records if r.path.endswith("/manifests/c")], "c was tried"


def _push_argv(
    small_image: BuiltImage, host: str, repository: str, tags: tuple[str, ...], **options: Any
) -> list[str]:
    """The image tool's argv for pushing `small_image`, as `goals/publish.py` writes it."""
    command = PushCommand(
        layout=str(small_image.layout), registry=host, repository=repository, tag=tags, **options
    )
    return list(command.to_argv())


def _tag_step(
    small_image: BuiltImage, host: str, repository: str, tag: str, marker: Path, follows: bool
) -> list[str]:
    """One publish step: the push of one tag."""
    options = {"failure_marker": str(marker), "follows": follows}
    return _push_argv(small_image, host, repository, (tag,), **options)


def test_the_cli_records_and_prints_exactly_the_references_that_moved(
    anonymous_registry: RegistryServer,
    proxy: FaultProxy,
    small_image: BuiltImage,
    repository: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    at, digest = f"{proxy.host}/{repository}", small_image.image.digest
    record = tmp_path / "dist" / "hello.publish.json"
    record.parent.mkdir()
    earlier = {f"{at}:b": sha256_digest(b"an earlier image"), "elsewhere/app:v1": digest}
    record.write_text(json.dumps(earlier))
    proxy.policy = fail_tag("b", repository)
    argv = _push_argv(small_image, proxy.host, repository, ("a", "b"), record=str(record))
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert f"{at}@{digest} -> {digest}\n{at}:a -> {digest}\n{at}:b not moved\n" in out
    assert f"hostprocess-tool: error: tag b of {repository} at {proxy.host} was not moved" in err
    # b's earlier entry is gone: its failed PUT may have moved it unseen.
    assert json.loads(record.read_text()) == {
        f"{at}@{digest}": digest,
        f"{at}:a": digest,
        "elsewhere/app:v1": digest,
    }
    assert served_digest(anonymous_registry.host, repository, "a") == digest
    assert not tag_exists(anonymous_registry.host, repository, "b")


def test_the_cli_says_no_tag_moved_when_the_manifest_fails(
    anonymous_registry: RegistryServer,
    proxy: FaultProxy,
    small_image: BuiltImage,
    repository: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    proxy.policy = lambda method, path: "400" if manifest_put(method, path) else FORWARD
    record = tmp_path / "hello.publish.json"
    argv = _push_argv(small_image, proxy.host, repository, ("a", "b"), record=str(record))
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert f"{proxy.host}/{repository}:a not moved\n{proxy.host}/{repository}:b not moved\n" in out
    assert " -> " not in out
    assert "HTTP 400" in err
    assert not record.exists()


# --- an address that is not a registry ------------------------------------------------------


NOT_FOUND = (404, [("Content-Type", "text/plain")], b"404 page not found\n")
HTML = (200, [("Content-Type", "text/html; charset=utf-8")], b"<html>Welcome to nginx!</html>")


def test_a_later_tag_step_stops_at_once_when_the_image_did_not_get_there(
    anonymous_registry: RegistryServer,
    proxy: FaultProxy,
    small_image: BuiltImage,
    repository: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each tag is its own publish step (so Pants' summary is exact); once the image failed to
    reach the registry, the later steps fail without spending their retry budget on it."""
    marker = tmp_path / "hello.registry.push-failed"
    proxy.policy = lambda method, path: "400" if manifest_put(method, path) else FORWARD
    assert main(_tag_step(small_image, proxy.host, repository, "a", marker, False)) == 1
    assert "HTTP 400" in marker.read_text()
    seen = len(proxy.records)
    capsys.readouterr()
    assert main(_tag_step(small_image, proxy.host, repository, "b", marker, True)) == 1
    out, err = capsys.readouterr()
    assert len(proxy.records) == seen, "a later step sends nothing"
    assert f"{proxy.host}/{repository}:b not moved" in out
    assert "as the first push of this image" in err and "HTTP 400" in err

    # The next run's first step replaces the marker, and the later steps go on.
    proxy.policy = lambda method, path: FORWARD
    assert main(_tag_step(small_image, proxy.host, repository, "a", marker, False)) == 0
    assert not marker.exists()
    assert main(_tag_step(small_image, proxy.host, repository, "b", marker, True)) == 0
    digest = small_image.image.digest
    assert served_digest(anonymous_registry.host, repository, "b") == digest


def test_a_failed_tag_step_does_not_stop_the_next_tag(
    anonymous_registry: RegistryServer,
    proxy: FaultProxy,
    small_image: BuiltImage,
    repository: str,
    tmp_path: Path,
) -> None:
    """The image got there; only one tag failed: the next tag's step still moves its tag."""
    marker = tmp_path / "hello.registry.push-failed"
    proxy.policy = fail_tag("a", repository)
    assert main(_tag_step(small_image, proxy.host, repository, "a", marker, False)) == 1
    assert not marker.exists()
    assert main(_tag_step(small_image, proxy.host, repository, "b", marker, True)) == 0
    assert served_digest(anonymous_registry.host, repository, "b") == small_image.image.digest
    assert not tag_exists(anonymous_registry.host, repository, "a")


@pytest.mark.parametrize(
    "reply, answer",
    [(NOT_FOUND, "HTTP 404 (text/plain)"), (HTML, "HTTP 200 (text/html; charset=utf-8)")],
    ids=["404", "html"],
)
def test_an_address_that_is_not_a_registry_fails_at_once(
    start_rewriting: _StartRewriting,
    small_image: BuiltImage,
    repository: str,
    reply: tuple[int, list[tuple[str, str]], bytes],
    answer: str,
) -> None:
    proxy = start_rewriting(replaced_reply(reply, lambda method, path: path == "/v2/"))
    started = time.monotonic()
    with pytest.raises(RegistryError) as raised:
        RegistryClient(proxy.host, retry=Retry()).push(small_image.layout, repository, ["v1"])
    assert time.monotonic() - started < 5, "retried within the 120 s budget"
    assert str(raised.value) == (
        f"{proxy.host} is not a registry (check the address): "
        f"GET http://{proxy.host}/v2/ answered {answer}"
    )
    assert raised.value.status == reply[0]
    assert [(r.method, r.path) for r in proxy.records] == [("GET", "/v2/")]


def test_a_registry_briefly_unwell_at_v2_is_still_retried(
    anonymous_registry: RegistryServer, proxy: FaultProxy, small_image: BuiltImage, repository: str
) -> None:
    answers = iter(["503", "429"])
    proxy.policy = lambda method, path: next(answers, FORWARD) if path == "/v2/" else FORWARD
    RegistryClient(proxy.host, retry=FAST_RETRY).push(small_image.layout, repository, ["v1"])
    assert [r.action for r in proxy.records if r.path == "/v2/"] == ["503", "429", FORWARD]
    assert served_digest(anonymous_registry.host, repository, "v1") == small_image.image.digest
