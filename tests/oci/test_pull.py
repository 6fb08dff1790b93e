"""Tests for pulling a digest-pinned base image, against a real registry on loopback.

Images are pushed with `RegistryClient.push` (indexes with the distribution HTTP API
directly) to the anonymous CNCF distribution registry of registry_servers.py, then pulled
with `pull_base` and the `pull` command. What lands on disk is checked with `hashlib`
against what was pushed; the tampering tests corrupt blobs in the registry's own storage
directory, so the registry really serves bytes that differ from their digest.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from digests import sha256_of

from hostprocess.oci.cli import main
from hostprocess.oci.image import (
    BaseImageError,
    Image,
    Layer,
    RuntimeConfig,
    build_image,
    canonical_json,
    image_from_manifest,
)
from hostprocess.oci.layout import blob_path, layout_files
from hostprocess.oci.pull_base import PulledImage, pull_base
from hostprocess.oci.reference import Reference
from hostprocess.oci.registry import RegistryClient, RegistryError, Retry
from hostprocess.oci.types import MEDIA_TYPES, Compression
from hostprocess.oci.windows.layer import LayerFile, write_layer

pytest.register_assert_rewrite("oci.registry_servers")
from oci.registry_servers import (  # noqa: E402
    BuiltImage,
    RegistryServer,
    build_layout,
    unique_repository,
)

pytest_plugins = ["oci.registry_servers"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
FAST_RETRY = Retry(total_seconds=3, first_delay=0.01, max_delay=0.2)


@pytest.fixture
def repository(request: pytest.FixtureRequest) -> str:
    return unique_repository("pull-" + request.node.name)


@pytest.fixture
def client(anonymous_registry: RegistryServer) -> RegistryClient:
    return RegistryClient(anonymous_registry.host, retry=FAST_RETRY)


@pytest.fixture(autouse=True)
def no_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI looks up credentials: give it an empty Docker config directory, not the host's."""
    empty = tmp_path / "docker-config"
    empty.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(empty))


def _build(directory: Path, cc0_path: Path, marker: str) -> BuiltImage:
    """The built-in base layer plus an app layer unique to `marker`, as an OCI layout."""
    app = [LayerFile("app/marker.txt", f"unique to {marker}\r\n".encode())]
    return build_layout(directory, cc0_path.read_bytes(), app, tags=("v1",))


@pytest.fixture
def pushed(
    tmp_path: Path,
    cc0_path: Path,
    client: RegistryClient,
    repository: str,
    request: pytest.FixtureRequest,
) -> BuiltImage:
    built = _build(tmp_path / "layout", cc0_path, request.node.nodeid)
    client.push(built.layout, repository, built.tags)
    return built


def _reference(host: str, repository: str, digest: str) -> Reference:
    return Reference.parse(f"{host}/{repository}@{digest}")


def _files(directory: Path) -> List[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def _cli_pull(reference: str, out: Path, architecture: str = "amd64") -> int:
    return main(
        ["pull", "--reference", reference, "--architecture", architecture, "--out", str(out)]
    )


def _one_line_error(capsys: pytest.CaptureFixture, *fragments: str) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, f"expected a one-line error, got:\n{captured.err}"
    assert lines[0].startswith("hostprocess-tool: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


# --- a successful pull -----------------------------------------------------------------


def test_pull_writes_verified_manifest_config_and_layers(
    tmp_path: Path,
    anonymous_registry: RegistryServer,
    client: RegistryClient,
    repository: str,
    pushed: BuiltImage,
) -> None:
    out = tmp_path / "pulled"
    reference = _reference(anonymous_registry.host, repository, pushed.image.digest)
    result = pull_base(client, reference, "amd64", out)

    layers = json.loads(pushed.image.manifest)["layers"]
    assert result == PulledImage(str(reference), 2, sum(layer["size"] for layer in layers))
    assert (out / "manifest.json").read_bytes() == pushed.image.manifest
    assert (out / "config.json").read_bytes() == pushed.image.config
    expected = ["config.json", "manifest.json"] + sorted(
        blob_path(layer["digest"]) for layer in layers
    )
    assert _files(out) == sorted(expected), "unexpected (partial?) files were left behind"
    for blob in (out / "blobs" / "sha256").iterdir():
        data = blob.read_bytes()
        assert hashlib.sha256(data).hexdigest() == blob.name
        assert data == (pushed.layout / "blobs" / "sha256" / blob.name).read_bytes()


def test_pulled_base_can_be_built_on(
    tmp_path: Path,
    anonymous_registry: RegistryServer,
    client: RegistryClient,
    repository: str,
    pushed: BuiltImage,
) -> None:
    out = tmp_path / "pulled"
    pull_base(
        client, _reference(anonymous_registry.host, repository, pushed.image.digest), "amd64", out
    )
    parent = image_from_manifest(
        (out / "manifest.json").read_bytes(), (out / "config.json").read_bytes()
    )
    child = build_image(
        RuntimeConfig(cmd=["-Command", "hi"]), [], architecture="amd64", created=0, parent=parent
    )
    assert json.loads(child.manifest)["layers"] == json.loads(pushed.image.manifest)["layers"]
    config = json.loads(child.config)
    assert config["config"] == {
        "Entrypoint": ["powershell.exe", "./hello.ps1"],
        "Cmd": ["-Command", "hi"],
    }


def test_pull_twice_into_the_same_directory(
    tmp_path: Path,
    anonymous_registry: RegistryServer,
    client: RegistryClient,
    repository: str,
    pushed: BuiltImage,
) -> None:
    out = tmp_path / "pulled"
    reference = _reference(anonymous_registry.host, repository, pushed.image.digest)
    first = pull_base(client, reference, "amd64", out)
    before = {name: (out / name).read_bytes() for name in _files(out)}
    assert pull_base(client, reference, "amd64", out) == first
    assert {name: (out / name).read_bytes() for name in _files(out)} == before


def test_cli_pull_succeeds(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    anonymous_registry: RegistryServer,
    repository: str,
    pushed: BuiltImage,
) -> None:
    out = tmp_path / "pulled"
    reference = f"{anonymous_registry.host}/{repository}@{pushed.image.digest}"
    code = _cli_pull(reference, out)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    size = sum(layer["size"] for layer in json.loads(pushed.image.manifest)["layers"])
    assert captured.out == f"Pulled {reference}: 2 layers, {size} bytes, verified.\n"
    assert captured.err == ""
    assert (out / "manifest.json").read_bytes() == pushed.image.manifest


# --- refusals ---------------------------------------------------------------------------------


def _write_blob(layout: Path, data: bytes) -> str:
    digest = sha256_of(data)
    (layout / blob_path(digest)).write_bytes(data)
    return digest


def _push_hand_made(
    directory: Path, client: RegistryClient, repository: str, *, os_name: str, architecture: str
) -> Image:
    """An OCI image whose config is written by hand, so it can be for any platform."""
    (directory / "blobs" / "sha256").mkdir(parents=True)
    partial = directory / "layer.partial"
    with open(partial, "wb") as out:
        digests = write_layer([LayerFile("etc/hostname", f"{os_name}-{architecture}\n".encode())], out,
                              base=True, compression=Compression.GZIP, level=1, mtime=0)  # fmt: skip
    os.replace(partial, directory / blob_path(digests.digest))
    config = canonical_json({
        "architecture": architecture,
        "os": os_name,
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [digests.diff_id]},
        "history": [{"created_by": "hand made"}],
    })  # fmt: skip
    _write_blob(directory, config)
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256_of(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digests.digest,
                    "size": digests.size}],
    })  # fmt: skip
    layer = Layer(digests.digest, digests.size, digests.diff_id, Compression.GZIP)
    image = Image(config, manifest, MEDIA_TYPES["oci"], (layer,))
    for rel, data in layout_files(image, ["v1"]).items():
        (directory / rel).write_bytes(data)
    client.push(directory, repository, ["v1"])
    return image


def test_a_linux_image_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    anonymous_registry: RegistryServer,
    client: RegistryClient,
    repository: str,
) -> None:
    image = _push_hand_made(
        tmp_path / "linux", client, repository, os_name="linux", architecture="amd64"
    )
    reference = _reference(anonymous_registry.host, repository, image.digest)
    out = tmp_path / "pulled"
    with pytest.raises(
        BaseImageError, match="'linux' image: a HostProcess image can only be built on a Windows"
    ):
        pull_base(client, reference, "amd64", out)
    assert not (out / "manifest.json").exists()
    assert not list(
        (out / "blobs" / "sha256").iterdir()
    ), "no layer of a refused image may be pulled"

    code = _cli_pull(str(reference), tmp_path / "cli")
    assert code == 1
    _one_line_error(capsys, str(reference), "Windows")


def test_without_an_architecture_any_platform_is_pulled(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    anonymous_registry: RegistryServer,
    client: RegistryClient,
    repository: str,
) -> None:
    """An image under test: a Linux image is pulled (its test reports it), verified as ever."""
    image = _push_hand_made(
        tmp_path / "linux", client, repository, os_name="linux", architecture="arm64"
    )
    reference = _reference(anonymous_registry.host, repository, image.digest)
    out = tmp_path / "pulled"
    assert pull_base(client, reference, None, out).layers == 1
    assert (out / "manifest.json").read_bytes() == image.manifest
    assert (out / "config.json").read_bytes() == image.config
    [layer] = image.layers
    assert sha256_of((out / blob_path(layer.digest)).read_bytes()) == layer.digest

    cli_out = tmp_path / "cli"
    assert main(["pull", "--reference", str(reference), "--out", str(cli_out)]) == 0
    assert capsys.readouterr().out.startswith(f"Pulled {reference}: 1 layers")
    assert _files(cli_out) == _files(out)


@pytest.mark.parametrize("pushed_for, pulled_for", [("amd64", "arm64"), ("arm64", "amd64")])
def test_another_architecture_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    anonymous_registry: RegistryServer,
    client: RegistryClient,
    repository: str,
    pushed_for: str,
    pulled_for: str,
) -> None:
    image = _push_hand_made(
        tmp_path / "image", client, repository, os_name="windows", architecture=pushed_for
    )
    reference = _reference(anonymous_registry.host, repository, image.digest)
    out = tmp_path / "pulled"
    with pytest.raises(
        BaseImageError, match=f"is for '{pushed_for}', but the image is for '{pulled_for}'"
    ):
        pull_base(client, reference, pulled_for, out)
    assert not (out / "manifest.json").exists()
    assert not list((out / "blobs" / "sha256").iterdir())
    # Control: the same image pulls for its own architecture.
    assert pull_base(client, reference, pushed_for, tmp_path / "ok").layers == 1

    assert _cli_pull(str(reference), tmp_path / "cli", pulled_for) == 1
    _one_line_error(capsys, str(reference), pushed_for, pulled_for)


def test_a_reference_without_a_digest_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    anonymous_registry: RegistryServer,
    client: RegistryClient,
    repository: str,
    pushed: BuiltImage,
) -> None:
    reference = Reference.parse(f"{anonymous_registry.host}/{repository}:v1")
    with pytest.raises(BaseImageError, match="not pinned by digest"):
        pull_base(client, reference, "amd64", tmp_path / "pulled")
    assert not (tmp_path / "pulled").exists()
    assert _cli_pull(str(reference), tmp_path / "cli") == 1
    _one_line_error(capsys, "not pinned by digest")


def test_an_unknown_digest_is_a_registry_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    anonymous_registry: RegistryServer,
    client: RegistryClient,
    repository: str,
    pushed: BuiltImage,
) -> None:
    missing = sha256_of(b"never pushed")
    reference = _reference(anonymous_registry.host, repository, missing)
    with pytest.raises(RegistryError, match="HTTP 404"):
        pull_base(client, reference, "amd64", tmp_path / "pulled")
    assert _cli_pull(str(reference), tmp_path / "cli") == 1
    _one_line_error(capsys, missing, "404")


def _put_manifest(host: str, repository: str, media_type: str, body: bytes) -> str:
    """PUT a manifest by its digest with the distribution API; returns the digest."""
    digest = sha256_of(body)
    request = urllib.request.Request(
        f"http://{host}/v2/{repository}/manifests/{digest}",
        data=body,
        method="PUT",
        headers={"Content-Type": media_type},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        assert response.headers["Docker-Content-Digest"] == digest
    return digest


@pytest.mark.parametrize("index_type", [OCI_INDEX, DOCKER_LIST])
def test_an_index_is_refused_naming_its_entries(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    anonymous_registry: RegistryServer,
    client: RegistryClient,
    repository: str,
    pushed: BuiltImage,
    index_type: str,
) -> None:
    linux = _push_hand_made(
        tmp_path / "linux", client, repository, os_name="linux", architecture="amd64"
    )
    entries: List[Dict[str, Any]] = [
        {"mediaType": OCI_MANIFEST, "digest": pushed.image.digest, "size": len(pushed.image.manifest),
         "platform": {"os": "windows", "architecture": "amd64", "os.version": "10.0.20348.2340"}},
        {"mediaType": OCI_MANIFEST, "digest": linux.digest, "size": len(linux.manifest),
         "platform": {"os": "linux", "architecture": "amd64"}},
    ]  # fmt: skip
    index = canonical_json({"schemaVersion": 2, "mediaType": index_type, "manifests": entries})
    digest = _put_manifest(anonymous_registry.host, repository, index_type, index)
    assert client.pull_manifest(repository, digest) == index  # the registry really serves our index

    reference = _reference(anonymous_registry.host, repository, digest)
    out = tmp_path / "pulled"
    with pytest.raises(BaseImageError) as raised:
        pull_base(client, reference, "amd64", out)
    message = str(raised.value)
    assert message.startswith(
        f"{reference} is an image index (a manifest list), not a single image"
    )
    host_repo = f"{anonymous_registry.host}/{repository}"
    assert f"{host_repo}@{pushed.image.digest} (windows/amd64/10.0.20348.2340)" in message
    assert f"{host_repo}@{linux.digest} (linux/amd64)" in message
    assert not out.exists() or not any(out.rglob("*")), "nothing may be written for an index"

    assert _cli_pull(str(reference), tmp_path / "cli") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    # The message deliberately lists the entries on lines of their own, to pick from.
    assert captured.err.startswith(f"hostprocess-tool: error: {reference} is an image index")
    assert pushed.image.digest in captured.err and linux.digest in captured.err


def test_an_index_to_test_is_refused_naming_its_entries(
    tmp_path: Path,
    anonymous_registry: RegistryServer,
    client: RegistryClient,
    repository: str,
    pushed: BuiltImage,
) -> None:
    """Without an architecture (an image under test) the fix is to test one manifest."""
    entries = [{"mediaType": OCI_MANIFEST, "digest": pushed.image.digest,
                "size": len(pushed.image.manifest), "platform": {"os": "windows", "architecture": "amd64"}}]  # fmt: skip
    index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    digest = _put_manifest(anonymous_registry.host, repository, OCI_INDEX, index)
    reference = _reference(anonymous_registry.host, repository, digest)
    with pytest.raises(BaseImageError) as raised:
        pull_base(client, reference, None, tmp_path / "pulled")
    assert str(raised.value) == (
        f"{reference} is an image index (a manifest list), not a single image: test one manifest "
        f"by its digest instead, one of:\n"
        f"  {anonymous_registry.host}/{repository}@{pushed.image.digest} (windows/amd64)"
    )


def test_an_oci_manifest_without_the_optional_media_type_is_pulled(
    tmp_path: Path,
    anonymous_registry: RegistryServer,
    client: RegistryClient,
    repository: str,
    pushed: BuiltImage,
) -> None:
    """The OCI image spec makes a manifest's own `mediaType` optional ("SHOULD be used"); older
    OCI tooling omits it, and the registry serves such a manifest with its Content-Type."""
    manifest = json.loads(pushed.image.manifest)
    del manifest["mediaType"]
    body = canonical_json(manifest)
    digest = _put_manifest(anonymous_registry.host, repository, OCI_MANIFEST, body)
    out = tmp_path / "pulled"
    try:
        pull_base(client, _reference(anonymous_registry.host, repository, digest), "amd64", out)
    except BaseImageError as error:
        pytest.fail(
            f"BUG: a valid OCI image manifest without a mediaType field was refused: {error}"
        )
    assert (out / "manifest.json").read_bytes() == body


# --- tampering in the registry's storage ---------------------------------------------------------


def _stored_blob(registry: RegistryServer, digest: str) -> Path:
    """Where distribution's filesystem driver keeps a blob (layers, configs and manifests alike)."""
    storage = registry.log_path.parent / "storage"  # start_registry's rootdirectory
    assert storage.is_dir(), f"no registry storage at {storage}"
    hex_digest = digest.split(":", 1)[1]
    path = (
        storage
        / "docker"
        / "registry"
        / "v2"
        / "blobs"
        / "sha256"
        / hex_digest[:2]
        / hex_digest
        / "data"
    )
    assert path.is_file(), f"blob {digest} is not stored at {path}"
    assert sha256_of(path.read_bytes()) == digest
    return path


@contextmanager
def _corrupted(path: Path, corrupt: Callable[[bytes], bytes]) -> Iterator[None]:
    """Change a stored blob in place, keeping its size (as bit rot would), and restore it after."""
    original = path.read_bytes()
    changed = corrupt(original)
    assert len(changed) == len(original) and changed != original
    path.write_bytes(changed)
    try:
        yield
    finally:
        path.write_bytes(original)


def _flip_middle_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def _change_config_digest(manifest: bytes) -> bytes:
    """Still valid JSON (so the registry serves it), but no longer the pushed bytes."""
    config_digest = json.loads(manifest)["config"]["digest"]
    last = config_digest[-1]
    return manifest.replace(
        config_digest.encode(), (config_digest[:-1] + ("0" if last != "0" else "1")).encode()
    )


def test_a_tampered_layer_is_refused_and_not_kept(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    anonymous_registry: RegistryServer,
    client: RegistryClient,
    repository: str,
    pushed: BuiltImage,
) -> None:
    app = json.loads(pushed.image.manifest)["layers"][1]["digest"]  # unique to this test's image
    reference = _reference(anonymous_registry.host, repository, pushed.image.digest)
    out = tmp_path / "pulled"
    with _corrupted(_stored_blob(anonymous_registry, app), _flip_middle_byte):
        with pytest.raises(
            RegistryError, match=f"served blob {re.escape(app)} with different content"
        ):
            pull_base(client, reference, "amd64", out)
        hex_digest = app.split(":")[1]
        leftovers = [name for name in _files(out) if hex_digest in name]
        assert leftovers == [], f"the corrupt blob was kept: {leftovers}"
        assert not (out / "manifest.json").exists(), "a failed pull must not look complete"

        assert _cli_pull(str(reference), tmp_path / "cli") == 1
        _one_line_error(capsys, app, "different content")
        assert not [name for name in _files(tmp_path / "cli") if hex_digest in name]
    # Control: restored, the same pull succeeds into the same directory.
    assert pull_base(client, reference, "amd64", out).layers == 2
    assert sha256_of((out / blob_path(app)).read_bytes()) == app


def test_a_tampered_config_is_refused_and_not_kept(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    anonymous_registry: RegistryServer,
    client: RegistryClient,
    repository: str,
    pushed: BuiltImage,
) -> None:
    config = pushed.image.config_descriptor.digest
    reference = _reference(anonymous_registry.host, repository, pushed.image.digest)
    out = tmp_path / "pulled"
    with _corrupted(_stored_blob(anonymous_registry, config), _flip_middle_byte):
        with pytest.raises(
            RegistryError, match=f"served blob {re.escape(config)} with different content"
        ):
            pull_base(client, reference, "amd64", out)
        assert _files(out) == [], "nothing may be kept when the config is not the pinned one"
        assert _cli_pull(str(reference), tmp_path / "cli") == 1
        _one_line_error(capsys, config, "different content")


def test_a_tampered_manifest_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    anonymous_registry: RegistryServer,
    client: RegistryClient,
    repository: str,
    pushed: BuiltImage,
) -> None:
    reference = _reference(anonymous_registry.host, repository, pushed.image.digest)
    out = tmp_path / "pulled"
    with _corrupted(_stored_blob(anonymous_registry, pushed.image.digest), _change_config_digest):
        with pytest.raises(
            RegistryError,
            match=f"manifest for {re.escape(pushed.image.digest)} whose digest differs",
        ):
            pull_base(client, reference, "amd64", out)
        assert not out.exists() or _files(out) == []
        assert _cli_pull(str(reference), tmp_path / "cli") == 1
        _one_line_error(capsys, pushed.image.digest, "digest differs")
