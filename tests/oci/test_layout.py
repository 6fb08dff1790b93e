"""Tests for the OCI layout, OCI archive and docker-archive writers.

A real one-layer image is built on disk and read back by independent tools: skopeo (the
layout, the OCI archive and the docker archive, as container tooling reads them),
oci-image-tool (the layout against the OCI spec), GNU tar and Python's tarfile. A missing
tool fails the test, never skips it.
"""
from __future__ import annotations

import errno
import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Sequence

import pytest
from digests import sha256_of

import hostprocess.oci.layout as layout_module
from hostprocess.oci.image import Image, Layer, RuntimeConfig, build_image
from hostprocess.oci.layout import (
    blob_path,
    docker_manifest_json,
    layout_files,
    read_manifest,
    write_archive,
)
from hostprocess.oci.tar import TarWriter
from hostprocess.oci.types import Compression
from hostprocess.oci.windows.layer import LayerFile, write_layer
from system_tools import run_tool, system_tool

TAGS = ["v1", "latest"]
REF_NAME = "org.opencontainers.image.ref.name"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MTIME = 1234567890  # 2009-02-13 23:31:30 UTC


def _hex(digest: str) -> str:
    assert digest.startswith("sha256:"), digest
    return digest.split(":", 1)[1]


@dataclass
class Built:
    layout: Path
    image: Image
    layer_blob: bytes
    layer: Layer


def _build(tmp_path: Path, tags: Sequence[str] = TAGS, name: str = "layout") -> Built:
    layout = tmp_path / name
    layer_out = io.BytesIO()
    digests = write_layer(
        [
            LayerFile("hpc/agent.exe", b"MZ" + bytes(300)),
            LayerFile("hpc/conf/agent.yaml", b"key: value\r\n"),
        ],
        layer_out,
        base=False,
        compression=Compression.GZIP,
        level=1,
        mtime=0,
        threads=1,
    )
    blob = layer_out.getvalue()
    layer = Layer(digests.digest, digests.size, digests.diff_id, Compression.GZIP)
    image = build_image(
        RuntimeConfig(entrypoint=["C:\\hpc\\agent.exe"]),
        [layer],
        architecture="amd64",
        created=0,
        history=["COPY hpc"],
    )
    for rel, data in layout_files(image, tags).items():
        path = layout / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (layout / "blobs" / "sha256" / _hex(layer.digest)).write_bytes(blob)
    return Built(layout, image, blob, layer)


@pytest.fixture
def built(tmp_path: Path) -> Built:
    return _build(tmp_path)


def _walk(root: Path) -> List[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# --- layout_files -----------------------------------------------------------------


def test_oci_layout_file_is_exact(built: Built) -> None:
    assert layout_files(built.image, TAGS)["oci-layout"] == b'{"imageLayoutVersion":"1.0.0"}'


def test_layout_files_paths_and_blob_names(built: Built) -> None:
    files = layout_files(built.image, TAGS)
    manifest_hex = hashlib.sha256(built.image.manifest).hexdigest()
    config_hex = hashlib.sha256(built.image.config).hexdigest()
    assert set(files) == {
        "oci-layout",
        "index.json",
        f"blobs/sha256/{manifest_hex}",
        f"blobs/sha256/{config_hex}",
    }
    assert files[f"blobs/sha256/{manifest_hex}"] == built.image.manifest
    assert files[f"blobs/sha256/{config_hex}"] == built.image.config
    for rel, data in files.items():
        if rel.startswith("blobs/"):
            assert hashlib.sha256(data).hexdigest() == rel.rsplit("/", 1)[1]


def test_index_has_one_entry_per_tag(built: Built) -> None:
    index = json.loads(layout_files(built.image, TAGS)["index.json"])
    assert set(index) == {"schemaVersion", "mediaType", "manifests"}
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == INDEX_MEDIA_TYPE
    expected: dict[str, Any] = {
        "mediaType": OCI_MANIFEST,
        "digest": sha256_of(built.image.manifest),
        "size": len(built.image.manifest),
    }
    assert index["manifests"] == [
        {**expected, "annotations": {REF_NAME: "v1"}},
        {**expected, "annotations": {REF_NAME: "latest"}},
    ]


@pytest.mark.parametrize("tags", [[], ["only"], ["a", "b", "c"]])
def test_index_never_has_a_platform(built: Built, tags: List[str]) -> None:
    raw = layout_files(built.image, tags)["index.json"]
    for key in (b'"platform"', b'"os.version"', b'"os.features"'):
        assert key not in raw, raw
    entries = json.loads(raw)["manifests"]
    assert len(entries) == max(1, len(tags))
    assert all(set(entry) <= {"mediaType", "digest", "size", "annotations"} for entry in entries)


def test_index_without_tags_has_one_unannotated_entry(built: Built) -> None:
    index = json.loads(layout_files(built.image, [])["index.json"])
    assert index["manifests"] == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": sha256_of(built.image.manifest),
            "size": len(built.image.manifest),
        }
    ]


def test_index_json_is_canonical(built: Built) -> None:
    raw = layout_files(built.image, TAGS)["index.json"]
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    assert layout_files(built.image, TAGS) == layout_files(built.image, list(TAGS))


@pytest.mark.parametrize("tag", TAGS)
def test_skopeo_reads_layout(built: Built, tag: str) -> None:
    raw = run_tool("skopeo", "inspect", "--raw", f"oci:{built.layout}:{tag}").stdout
    assert raw == built.image.manifest
    config = run_tool("skopeo", "inspect", "--config", "--raw", f"oci:{built.layout}:{tag}").stdout
    assert config == built.image.config


def test_skopeo_rejects_unknown_tag(built: Built) -> None:
    """Control: skopeo really resolves the tag through the index annotations."""
    result = subprocess.run(
        [system_tool("skopeo"), "inspect", "--raw", f"oci:{built.layout}:nope"], capture_output=True
    )
    assert result.returncode != 0


@pytest.mark.parametrize("tag", TAGS)
def test_oci_image_tool_validates_layout(built: Built, tag: str) -> None:
    run_tool(
        "oci-image-tool", "validate", "--type", "image", "--ref", f"name={tag}", str(built.layout)
    )


def test_oci_image_tool_rejects_corrupt_layout(built: Built) -> None:
    """Control: a layer blob that no longer matches its digest is caught."""
    blob = built.layout / "blobs" / "sha256" / _hex(built.layer.digest)
    blob.write_bytes(gzip.compress(b"not the layer"))
    result = subprocess.run(
        [
            system_tool("oci-image-tool"),
            "validate",
            "--type",
            "image",
            "--ref",
            "name=v1",
            str(built.layout),
        ],
        capture_output=True,
    )
    assert result.returncode != 0


# --- docker_manifest_json -----------------------------------------------------------


def test_docker_manifest_json(built: Built) -> None:
    manifest = json.loads(built.image.manifest)
    raw = docker_manifest_json(manifest, ["example/hello:v1", "example/hello:latest"])
    config_hex = hashlib.sha256(built.image.config).hexdigest()
    assert json.loads(raw) == [
        {
            "Config": f"blobs/sha256/{config_hex}",
            "RepoTags": ["example/hello:v1", "example/hello:latest"],
            "Layers": [f"blobs/sha256/{_hex(built.layer.digest)}"],
        }
    ]
    for path in [json.loads(raw)[0]["Config"], *json.loads(raw)[0]["Layers"]]:
        assert (built.layout / path).is_file(), path


def test_docker_manifest_json_layers_in_order_and_no_tags() -> None:
    manifest = {
        "config": {"digest": "sha256:" + "c" * 64},
        "layers": [{"digest": "sha256:" + "2" * 64}, {"digest": "sha256:" + "1" * 64}],
    }
    assert json.loads(docker_manifest_json(manifest, [])) == [
        {
            "Config": "blobs/sha256/" + "c" * 64,
            "RepoTags": [],
            "Layers": ["blobs/sha256/" + "2" * 64, "blobs/sha256/" + "1" * 64],
        }
    ]


# --- read_manifest ------------------------------------------------------------------


def test_read_manifest_returns_the_manifest(built: Built) -> None:
    assert read_manifest(built.layout) == (built.image.digest, built.image.manifest)


def test_read_manifest_rejects_a_corrupt_manifest_blob(built: Built) -> None:
    (built.layout / blob_path(built.image.digest)).write_bytes(built.image.manifest + b" ")
    with pytest.raises(ValueError, match="does not match its digest"):
        read_manifest(built.layout)


def test_read_manifest_rejects_two_images(tmp_path: Path, built: Built) -> None:
    other = build_image(
        RuntimeConfig(cmd=["other"]),
        [built.layer],
        architecture="amd64",
        created=0,
        history=["COPY hpc"],
    )
    for rel, data in layout_files(other, ["other"]).items():
        if rel.startswith("blobs/"):
            (built.layout / rel).write_bytes(data)
    index = json.loads((built.layout / "index.json").read_bytes())
    index["manifests"].append(
        json.loads(layout_files(other, ["other"])["index.json"])["manifests"][0]
    )
    (built.layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="2 images"):
        read_manifest(built.layout)


def test_read_manifest_rejects_empty_index(built: Built) -> None:
    (built.layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": []}))
    with pytest.raises(ValueError, match="0 images"):
        read_manifest(built.layout)


def test_read_manifest_missing_layout(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        read_manifest(tmp_path / "missing")


# --- write_archive ------------------------------------------------------------------


def _members(archive: Path) -> List[tarfile.TarInfo]:
    with tarfile.open(archive, "r:") as tar:
        return tar.getmembers()


def _expected_layout_entries(built: Built) -> List[str]:
    blobs = sorted(
        [
            hashlib.sha256(built.image.manifest).hexdigest(),
            hashlib.sha256(built.image.config).hexdigest(),
            _hex(built.layer.digest),
        ]
    )
    return [
        "blobs",
        "blobs/sha256",
        *[f"blobs/sha256/{b}" for b in blobs],
        "index.json",
        "oci-layout",
    ]


def test_oci_archive_entries_sorted_with_fixed_metadata(tmp_path: Path, built: Built) -> None:
    archive = tmp_path / "image.tar"
    write_archive(built.layout, archive, mtime=MTIME)
    members = _members(archive)
    names = [m.name for m in members]
    assert names == _expected_layout_entries(built)
    for member in members:
        assert member.isdir() or member.isfile(), member.name
        assert member.isdir() == (built.layout / member.name).is_dir(), member.name
        assert (member.mtime, member.uid, member.gid) == (MTIME, 0, 0), member.name
        assert member.mode == (0o755 if member.isdir() else 0o644), member.name
    with tarfile.open(archive, "r:") as tar:
        for member in members:
            if member.isfile():
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                assert data == (built.layout / member.name).read_bytes(), member.name


def test_directories_precede_their_contents(tmp_path: Path, built: Built) -> None:
    # Extra nesting, and names that sort between a directory and its contents.
    (built.layout / "blobs-x").write_bytes(b"x")
    (built.layout / "blobs" / "sha256" / "zz" / "deeper").mkdir(parents=True)
    (built.layout / "blobs" / "sha256" / "zz" / "deeper" / "f").write_bytes(b"f")
    (built.layout / "blobs" / "sha256.txt").write_bytes(b"t")
    archive = tmp_path / "image.tar"
    write_archive(built.layout, archive, mtime=0)
    names = [m.name for m in _members(archive)]
    assert sorted(names) == _walk(built.layout), "archive must hold every path exactly once"
    for i, name in enumerate(names):
        parent = name.rsplit("/", 1)[0] if "/" in name else None
        if parent is not None:
            assert parent in names[:i], f"{name} precedes its directory {parent}: {names}"
    assert names == sorted(names, key=lambda n: n.split("/")), names


def test_gnu_tar_lists_archive(tmp_path: Path, built: Built) -> None:
    archive = tmp_path / "image.tar"
    write_archive(built.layout, archive, mtime=MTIME)
    result = subprocess.run(
        [system_tool("tar"), "--full-time", "-tvf", str(archive)],
        capture_output=True,
        text=True,
        env={**os.environ, "TZ": "UTC"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[-1] for line in lines] == _expected_layout_entries(built)
    for line in lines:
        assert " 2009-02-13 23:31:30 " in line, line
        assert line.split()[1] == "0/0", line


def test_archive_is_reproducible(tmp_path: Path, built: Built) -> None:
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    write_archive(built.layout, first, mtime=MTIME)
    os.utime(built.layout / "index.json", (1, 1))  # host metadata must not leak in
    write_archive(built.layout, second, mtime=MTIME)
    assert first.read_bytes() == second.read_bytes()
    third = tmp_path / "c.tar"
    write_archive(built.layout, third, mtime=MTIME + 1)
    assert third.read_bytes() != first.read_bytes()


def test_archive_leaves_only_the_output(tmp_path: Path, built: Built) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    write_archive(built.layout, out_dir / "image.tar", mtime=0)
    assert os.listdir(out_dir) == ["image.tar"]


@pytest.mark.parametrize("tag", TAGS)
def test_skopeo_reads_oci_archive(tmp_path: Path, built: Built, tag: str) -> None:
    archive = tmp_path / "image.tar"
    write_archive(built.layout, archive, mtime=MTIME)
    assert (
        run_tool("skopeo", "inspect", "--raw", f"oci-archive:{archive}:{tag}").stdout
        == built.image.manifest
    )


def _docker_archive(tmp_path: Path, built: Built, repo_tags: List[str]) -> Path:
    archive = tmp_path / "docker.tar"
    manifest_json = docker_manifest_json(json.loads(built.image.manifest), repo_tags)
    write_archive(built.layout, archive, extra_files={"manifest.json": manifest_json}, mtime=MTIME)
    return archive


def test_docker_archive_entries(tmp_path: Path, built: Built) -> None:
    archive = _docker_archive(tmp_path, built, ["example/hello:v1"])
    members = _members(archive)
    names = [m.name for m in members]
    assert sorted(names) == sorted(["manifest.json", *_expected_layout_entries(built)])
    assert [n for n in names if n != "manifest.json"] == _expected_layout_entries(built)
    assert all((m.mtime, m.uid, m.gid) == (MTIME, 0, 0) for m in members)
    with tarfile.open(archive, "r:") as tar:
        data = tar.extractfile("manifest.json").read()  # type: ignore[union-attr]
    assert json.loads(data)[0]["RepoTags"] == ["example/hello:v1"]
    result = subprocess.run(
        [system_tool("tar"), "-tvf", str(archive)], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_skopeo_reads_docker_archive(tmp_path: Path, built: Built) -> None:
    archive = _docker_archive(tmp_path, built, ["example/hello:v1"])
    config = run_tool("skopeo", "inspect", "--config", "--raw", f"docker-archive:{archive}").stdout
    assert config == built.image.config
    tagged = run_tool(
        "skopeo", "inspect", "--config", "--raw", f"docker-archive:{archive}:example/hello:v1"
    )
    assert tagged.stdout == built.image.config
    info = json.loads(run_tool("skopeo", "inspect", f"docker-archive:{archive}").stdout)
    assert (info["Os"], info["Architecture"]) == ("windows", "amd64")
    assert info["Layers"] == [built.layer.diff_id]  # docker-archive reports uncompressed digests


# --- write_archive atomicity --------------------------------------------------------


def _assert_failed_cleanly(out_dir: Path, before: List[str]) -> None:
    after = sorted(os.listdir(out_dir))
    assert after == before, (
        f"write_archive failed but left {sorted(set(after) - set(before))} in {out_dir}: "
        "a failed write must leave no partial file behind"
    )


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


def test_unreadable_path_leaves_no_partial_file(built: Built, out_dir: Path) -> None:
    (built.layout / "blobs" / "sha256" / "dangling").symlink_to(built.layout / "missing")
    with pytest.raises(OSError):
        write_archive(built.layout, out_dir / "image.tar", mtime=0)
    _assert_failed_cleanly(out_dir, [])


def test_special_file_leaves_no_partial_file(built: Built, out_dir: Path) -> None:
    os.mkfifo(built.layout / "fifo")
    with pytest.raises(ValueError, match="not a regular file"):
        write_archive(built.layout, out_dir / "image.tar", mtime=0)
    _assert_failed_cleanly(out_dir, [])


def test_sink_error_leaves_no_partial_file(
    built: Built, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class FullDisk(TarWriter):
        writes = 0

        def _write(self, data: bytes) -> None:
            FullDisk.writes += 1
            if FullDisk.writes > 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            super()._write(data)

    monkeypatch.setattr(layout_module, "TarWriter", FullDisk)
    with pytest.raises(OSError, match="No space"):
        write_archive(built.layout, out_dir / "image.tar", mtime=0)
    assert FullDisk.writes > 3, "the simulated sink was not used"
    _assert_failed_cleanly(out_dir, [])


def test_failed_write_keeps_previous_archive(built: Built, out_dir: Path) -> None:
    out = out_dir / "image.tar"
    out.write_bytes(b"previous archive")
    (built.layout / "dangling").symlink_to(built.layout / "missing")
    with pytest.raises(OSError):
        write_archive(built.layout, out, mtime=0)
    assert out.read_bytes() == b"previous archive"
    _assert_failed_cleanly(out_dir, ["image.tar"])
