"""Tests for the image tool's command line, the commands Pants runs in its sandbox.

Outputs are checked with hashlib, gzip/zstandard, tarfile and skopeo rather than with the
tool's own helpers; errors must be a one-line message and exit code 1, never a traceback.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import zstandard
from digests import sha256_of

from hostprocess.oci.cli import main
from hostprocess.oci.commands import TOOL_OUT, LayerCommand, LayerOptions
from hostprocess.oci.image import Layer, RuntimeConfig, build_image
from hostprocess.oci.layout import layout_files
from hostprocess.oci.types import Compression
from system_tools import system_tool

BASE_LAYER_DIGEST = "sha256:b9c41e1613838cb61d8a93d81084d0ec01fcd3e458faf73343cccaa36b6ab218"
TREE = {
    "app/agent.exe": b"MZ" + bytes(1000),
    "app/conf/agent.yaml": b"key: value\r\n",
    "app/conf/deep/nested/x.dll": b"dll",
    "readme.txt": b"hello\r\n",
}


def _tree(root: Path) -> Path:
    for rel, data in TREE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "empty").mkdir()
    (root / "app" / "conf" / "empty-too").mkdir()
    return root


def _listing(root: Path) -> List[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def _layer_args(out: Path, *extra: str) -> List[str]:
    return ["--out", str(out), "--level", "1", *extra]


def _read_layer_dir(out: Path) -> Tuple[Dict[str, Any], bytes]:
    layer = json.loads((out / "layer.json").read_text())
    blob = (out / "blobs" / "sha256" / layer["digest"].split(":", 1)[1]).read_bytes()
    return layer, blob


def _members(tar_bytes: bytes) -> Tuple[List[str], Dict[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        members = tar.getmembers()
        contents = {m.name: tar.extractfile(m).read() for m in members if m.isfile()}  # type: ignore[union-attr]
    return [m.name for m in members], contents


def _assert_error(capsys: pytest.CaptureFixture, code: int, *fragments: str) -> None:
    captured = capsys.readouterr()
    assert code == 1, f"expected exit code 1, got {code}; stderr: {captured.err!r}"
    assert "Traceback" not in captured.err, captured.err
    assert captured.err.startswith("hostprocess-tool: error: "), captured.err
    assert captured.err.count("\n") == 1, captured.err
    for fragment in fragments:
        assert fragment in captured.err, captured.err


# --- layer ------------------------------------------------------------------------


def test_layer_writes_blob_and_description(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root, out = _tree(tmp_path / "root"), tmp_path / "out"
    code = main(
        ["layer", "--root", str(root), *_layer_args(out, "--mtime", "86400", "--threads", "2")]
    )
    assert code == 0, capsys.readouterr().err
    layer, blob = _read_layer_dir(out)
    hex_digest = hashlib.sha256(blob).hexdigest()
    assert _listing(out) == [
        "blobs",
        "blobs/sha256",
        f"blobs/sha256/{hex_digest}",
        "files.json",
        "layer.json",
    ]
    assert layer == {
        "digest": f"sha256:{hex_digest}",
        "size": len(blob),
        "diff_id": sha256_of(gzip.decompress(blob)),
        "compression": "gzip",
    }
    assert Layer.from_json(layer).compression is Compression.GZIP


def test_layer_tar_holds_the_tree(tmp_path: Path) -> None:
    root, out = _tree(tmp_path / "root"), tmp_path / "out"
    assert main(["layer", "--root", str(root), *_layer_args(out, "--mtime", "86400")]) == 0
    _, blob = _read_layer_dir(out)
    names, contents = _members(gzip.decompress(blob))
    # Only regular files are taken from the tree; their parents get directory entries,
    # empty directories are not carried.
    assert names == [
        "Hives",
        "Files",
        "Files/app",
        "Files/app/agent.exe",
        "Files/app/conf",
        "Files/app/conf/agent.yaml",
        "Files/app/conf/deep",
        "Files/app/conf/deep/nested",
        "Files/app/conf/deep/nested/x.dll",
        "Files/readme.txt",
    ]
    assert contents == {f"Files/{rel}": data for rel, data in TREE.items()}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob)), mode="r:") as tar:
        assert {m.mtime for m in tar.getmembers()} == {86400}


def _file_records(out: Path) -> dict[str, dict[str, Any]]:
    records = json.loads((out / "files.json").read_text())["files"]
    assert [r["path"] for r in records] == sorted(r["path"] for r in records)
    return {record.pop("path"): record for record in records}


def _checksums(data: bytes) -> dict[str, Any]:
    sha1, sha256 = hashlib.sha1(data).hexdigest(), hashlib.sha256(data).hexdigest()
    return {"size": len(data), "sha1": sha1, "sha256": sha256}


@pytest.mark.parametrize("base", [False, True])
def test_a_layer_lists_each_file_it_holds_with_its_checksums(
    tmp_path: Path, cc0_path: Path, base: bool
) -> None:
    """files.json (the SBOM's file list) describes exactly the files in the blob."""
    out = tmp_path / "out"
    if base:
        argv = ["base-layer", "--cc0", str(cc0_path), *_layer_args(out)]
    else:
        argv = ["layer", "--root", str(_tree(tmp_path / "root")), *_layer_args(out)]
    assert main(argv) == 0
    _, blob = _read_layer_dir(out)
    _, contents = _members(gzip.decompress(blob))
    in_blob = {name[len("Files/") :]: _checksums(data) for name, data in contents.items()}
    assert _file_records(out) == in_blob
    if base:
        assert "License.txt" in in_blob and "Windows/System32/config/SYSTEM" in in_blob
    else:
        assert in_blob["readme.txt"] == _checksums(TREE["readme.txt"])


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_layer_other_compressions(tmp_path: Path, compression: str) -> None:
    root, out = _tree(tmp_path / "root"), tmp_path / "out"
    level = "3" if compression == "zstd" else "0"
    argv = ["layer", "--root", str(root), "--out", str(out)]
    assert main([*argv, "--compression", compression, "--level", level]) == 0
    layer, blob = _read_layer_dir(out)
    assert layer["compression"] == compression
    assert layer["digest"] == sha256_of(blob) and layer["size"] == len(blob)
    if compression == "zstd":
        uncompressed = zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    else:
        uncompressed = blob
        assert layer["digest"] == layer["diff_id"]
    assert layer["diff_id"] == sha256_of(uncompressed)
    assert "Files/readme.txt" in _members(uncompressed)[0]


def test_layer_is_reproducible(tmp_path: Path) -> None:
    root = _tree(tmp_path / "root")
    outputs = []
    for name, threads in (("a", "1"), ("b", "4")):
        out = tmp_path / name
        assert main(["layer", "--root", str(root), *_layer_args(out, "--threads", threads)]) == 0
        outputs.append(_read_layer_dir(out))
    assert outputs[0] == outputs[1]


def test_layer_with_missing_root_is_empty(tmp_path: Path) -> None:
    """Pants materialises no `root` directory for an empty tree: that is an empty layer."""
    out = tmp_path / "out"
    assert main(["layer", "--root", str(tmp_path / "absent"), *_layer_args(out)]) == 0
    _, blob = _read_layer_dir(out)
    assert _members(gzip.decompress(blob))[0] == ["Hives", "Files"]


def test_layer_with_special_file_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = _tree(tmp_path / "root")
    os.mkfifo(root / "app" / "pipe")
    code = main(["layer", "--root", str(root), *_layer_args(tmp_path / "out")])
    _assert_error(capsys, code, "pipe", "not a regular file")


def test_layer_with_case_collision_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = _tree(tmp_path / "root")
    (root / "README.TXT").write_bytes(b"upper")
    code = main(["layer", "--root", str(root), *_layer_args(tmp_path / "out")])
    _assert_error(capsys, code, "case-insensitive")


def test_bad_arguments_are_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["layer", "--root", str(tmp_path), "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2  # --level is required
    assert "--level" in capsys.readouterr().err


def test_layer_takes_no_history(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """History belongs to the image config, so it cannot change a layer's cache key."""
    root = _tree(tmp_path / "root")
    with pytest.raises(SystemExit) as exit_info:
        main(["layer", "--root", str(root), *_layer_args(tmp_path / "out", "--created-by", "x")])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --created-by" in capsys.readouterr().err


def test_layer_command_argv_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The argv the rules get from `LayerCommand` is one the tool runs, and the tool writes
    exactly the metadata the command declares, beside `blobs/`."""
    out = tmp_path / TOOL_OUT
    command = LayerCommand(str(_tree(tmp_path / "root")), LayerOptions(out=str(out), level=1))
    assert main(list(command.to_argv())) == 0, capsys.readouterr().err
    assert command.output_directories() == (str(out),)
    assert sorted(os.listdir(out)) == sorted(["blobs", "files.json", *command.metadata])


# --- base-layer ---------------------------------------------------------------------


def test_base_layer_command(tmp_path: Path, capsys: pytest.CaptureFixture, cc0_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["base-layer", "--cc0", str(cc0_path), "--out", str(out)]
    code = main([*argv, "--compression", "gzip", "--level", "1", "--mtime", "0", "--threads", "3"])
    assert code == 0, capsys.readouterr().err
    layer, blob = _read_layer_dir(out)
    assert (
        layer["digest"] == BASE_LAYER_DIGEST
    ), "base layer bytes changed (the e2e test pins them too)"
    assert _listing(out) == [
        "blobs",
        "blobs/sha256",
        "blobs/sha256/" + BASE_LAYER_DIGEST.split(":", 1)[1],
        "files.json",
        "layer.json",
    ]
    assert sha256_of(blob) == BASE_LAYER_DIGEST
    assert layer["diff_id"] == sha256_of(gzip.decompress(blob))
    assert (layer["compression"], layer["size"]) == ("gzip", len(blob))
    assert sorted(layer) == ["compression", "diff_id", "digest", "size"]
    names, _ = _members(gzip.decompress(blob))
    assert names[0] == "Files" and "Hives" not in names


def test_base_layer_missing_cc0(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "no-such-cc0.txt"
    code = main(["base-layer", "--cc0", str(missing), *_layer_args(tmp_path / "out")])
    _assert_error(capsys, code, str(missing))


# --- archive ------------------------------------------------------------------------


def _layout(tmp_path: Path) -> Tuple[Path, bytes, bytes]:
    """A one-layer layout built through the `layer` command; returns (dir, manifest, config)."""
    layer_dir = tmp_path / "layer"
    assert main(["layer", "--root", str(_tree(tmp_path / "root")), *_layer_args(layer_dir)]) == 0
    layer = Layer.from_json(json.loads((layer_dir / "layer.json").read_text()))
    image = build_image(
        RuntimeConfig(cmd=["cmd.exe"]),
        [layer],
        architecture="amd64",
        created=0,
        history=["COPY app"],
    )
    layout = tmp_path / "layout"
    shutil.copytree(layer_dir / "blobs", layout / "blobs")
    for rel, data in layout_files(image, ["v1"]).items():
        (layout / rel).write_bytes(data)
    return layout, image.manifest, image.config


def _skopeo(*argv: str) -> bytes:
    result = subprocess.run([system_tool("skopeo"), *argv], capture_output=True, check=False)
    assert result.returncode == 0, f"skopeo {' '.join(argv)} failed:\n{result.stderr.decode()}"
    return result.stdout


def test_archive_oci(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    layout, manifest, config = _layout(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "image.tar"
    code = main(
        [
            "archive",
            "--layout",
            str(layout),
            "--format",
            "oci-archive",
            "--out",
            str(out),
            "--mtime",
            "7",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert os.listdir(out_dir) == ["image.tar"]
    names, contents = _members(out.read_bytes())
    assert names == _listing(layout)
    assert "manifest.json" not in names
    assert contents["oci-layout"] == b'{"imageLayoutVersion":"1.0.0"}'
    assert _skopeo("inspect", "--raw", f"oci-archive:{out}:v1") == manifest
    assert _skopeo("inspect", "--config", "--raw", f"oci-archive:{out}:v1") == config


def test_archive_docker(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    layout, manifest, config = _layout(tmp_path)
    out = tmp_path / "docker.tar"
    argv = ["archive", "--layout", str(layout), "--format", "docker-archive", "--out", str(out)]
    code = main([*argv, "--repo-tag", "example/hello:v1", "--repo-tag", "example/hello:latest"])
    assert code == 0, capsys.readouterr().err
    names, contents = _members(out.read_bytes())
    assert sorted(names) == sorted(["manifest.json", *_listing(layout)])
    parsed = json.loads(manifest)
    assert json.loads(contents["manifest.json"]) == [
        {
            "Config": "blobs/sha256/" + hashlib.sha256(config).hexdigest(),
            "RepoTags": ["example/hello:v1", "example/hello:latest"],
            "Layers": ["blobs/sha256/" + parsed["layers"][0]["digest"].split(":", 1)[1]],
        }
    ]
    for tag in ("example/hello:v1", "example/hello:latest"):
        assert _skopeo("inspect", "--config", "--raw", f"docker-archive:{out}:{tag}") == config


def test_archive_is_reproducible(tmp_path: Path) -> None:
    layout, _, _ = _layout(tmp_path)
    outputs = []
    for name in ("a.tar", "b.tar"):
        out = tmp_path / name
        argv = ["archive", "--layout", str(layout), "--format", "docker-archive", "--out", str(out)]
        assert main([*argv, "--repo-tag", "x:v1"]) == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("archive_format", ["oci-archive", "docker-archive"])
def test_archive_missing_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture, archive_format: str
) -> None:
    missing = tmp_path / "no-such-layout"
    out = tmp_path / "image.tar"
    code = main(
        ["archive", "--layout", str(missing), "--format", archive_format, "--out", str(out)]
    )
    captured = capsys.readouterr()
    assert code == 1, (
        f"`archive --format {archive_format}` with a missing --layout exited {code} "
        f"(stderr {captured.err!r}) and wrote {out.stat().st_size if out.exists() else 'no'} "
        "bytes: a missing input must be an error, not an empty archive"
    )
    assert not out.exists()
    assert "Traceback" not in captured.err
    assert captured.err.startswith("hostprocess-tool: error: ") and str(missing) in captured.err


def test_docker_archive_of_two_images_fails(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    layout, manifest, _ = _layout(tmp_path)
    index = json.loads((layout / "index.json").read_bytes())
    other = dict(index["manifests"][0], digest=sha256_of(b"another manifest"))
    index["manifests"].append(other)
    (layout / "index.json").write_text(json.dumps(index))
    out = tmp_path / "docker.tar"
    code = main(
        ["archive", "--layout", str(layout), "--format", "docker-archive", "--out", str(out)]
    )
    _assert_error(capsys, code, "expected exactly one")
    assert not out.exists()
