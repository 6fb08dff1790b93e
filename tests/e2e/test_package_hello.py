"""`./pants package examples:hello`, checked with independent tools.

Verifiers: oci-image-tool (layout against the OCI spec), skopeo (reads the layout, the OCI
archive and the docker archive as container tooling does), hivexml (parses every hive),
GNU tar and Python's tarfile (the layer format), and the JSON itself for the platform rules
that make containerd pull the image on every Windows version (REFERENCE section 3).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from e2e.checkout import Checkout, copy_repo, load_json

# The built-in base layer is a pure function of the tool and cc0-legalcode.txt: the same
# bytes on every machine, every checkout path, every run.
BASE_LAYER_DIGEST = "sha256:b9c41e1613838cb61d8a93d81084d0ec01fcd3e458faf73343cccaa36b6ab218"
HIVES = ("DEFAULT", "SAM", "SECURITY", "SOFTWARE", "SYSTEM")
EXPECTED_PATH = (
    "C:\\Windows\\system32;C:\\Windows;C:\\WINDOWS\\System32\\WindowsPowerShell\\v1.0\\;"
)


def run(*argv: str) -> str:
    """Run a verifier; return its stdout (warnings on stderr, e.g. GNU tar's about the
    MSWINDOWS.* PAX keywords it does not know, are not part of the answer)."""
    result = subprocess.run(argv, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


def sha256_file(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":", 1)[1]


def layer_members(layout: Path, digest: str) -> list[tarfile.TarInfo]:
    with tarfile.open(blob(layout, digest), "r:gz") as tar:
        return tar.getmembers()


def assert_no_platform(value: Any, where: str) -> None:
    text = json.dumps(value)
    for key in ('"platform"', '"os.version"', '"os.features"'):
        assert key not in text, f"{where} carries {key}: {text}"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Checkout:
    checkout = copy_repo(tmp_path_factory.mktemp("e2e") / "repo")
    # examples/dockerfile is the same image written as Microsoft's Dockerfile.
    result = checkout.pants("package", "examples:hello", "examples/dockerfile")
    assert result.stdout.count("Image digest: sha256:") == 2
    return checkout


def test_dockerfile_example_builds_the_same_image(packaged: Checkout) -> None:
    """skopeo reads both layouts: same layer blobs, same config apart from history."""
    hello = packaged.dist / "examples" / "hello"
    dockerfile = packaged.dist / "examples.dockerfile" / "dockerfile"
    out = run(
        "oci-image-tool", "validate", "--type", "image", "--ref", "name=latest", str(dockerfile)
    )
    assert "Validation succeeded" in out, out
    manifests = [
        json.loads(run("skopeo", "inspect", "--raw", f"oci:{p}:latest"))
        for p in (hello, dockerfile)
    ]
    assert [l["digest"] for l in manifests[0]["layers"]] == [
        l["digest"] for l in manifests[1]["layers"]
    ]
    configs = [
        json.loads(run("skopeo", "inspect", "--config", f"oci:{p}:latest"))
        for p in (hello, dockerfile)
    ]
    histories = [c.pop("history") for c in configs]
    assert configs[0] == configs[1]
    assert len(histories[0]) == len(histories[1]) == 2


def test_layout_is_valid_oci(packaged: Checkout) -> None:
    layout = packaged.dist / "examples" / "hello"
    out = run("oci-image-tool", "validate", "--type", "image", "--ref", "name=latest", str(layout))
    assert "Validation succeeded" in out, out
    assert load_json(layout / "oci-layout") == {"imageLayoutVersion": "1.0.0"}
    for path in (layout / "blobs" / "sha256").iterdir():
        assert sha256_file(path) == f"sha256:{path.name}", f"blob {path} does not match its name"


def test_single_platform_free_manifest(packaged: Checkout) -> None:
    layout = packaged.dist / "examples" / "hello"
    index = load_json(layout / "index.json")
    assert_no_platform(index, "index.json")
    [entry] = index["manifests"]
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": "latest"}

    raw = run("skopeo", "inspect", "--raw", f"oci:{layout}:latest").encode()
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == entry["digest"]
    manifest = json.loads(raw)
    assert_no_platform(manifest, "the manifest")
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+gzip"
    ] * 2

    config = json.loads(run("skopeo", "inspect", "--config", "--raw", f"oci:{layout}:latest"))
    assert_no_platform(config, "the config")
    assert (config["os"], config["architecture"]) == ("windows", "amd64")
    assert config["config"]["Entrypoint"] == ["powershell.exe", "./hello-world.ps1"]
    assert config["config"]["Env"] == [f"PATH={EXPECTED_PATH}"]
    assert config["created"] == "1970-01-01T00:00:00Z"
    assert len(config["history"]) == len(manifest["layers"])
    diff_ids = []
    for layer in manifest["layers"]:
        path = blob(layout, layer["digest"])
        assert path.stat().st_size == layer["size"]
        diff_ids.append("sha256:" + hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest())
    assert config["rootfs"] == {"type": "layers", "diff_ids": diff_ids}


def test_base_layer_matches_microsofts_shape(packaged: Checkout) -> None:
    layout = packaged.dist / "examples" / "hello"
    manifest = json.loads(run("skopeo", "inspect", "--raw", f"oci:{layout}:latest"))
    base_digest = manifest["layers"][0]["digest"]
    assert base_digest == BASE_LAYER_DIGEST

    members = layer_members(layout, base_digest)
    names = [m.name for m in members]
    assert names == [
        "Files",
        "Files/License.txt",
        "Files/Windows",
        "Files/Windows/System32",
        "Files/Windows/System32/config",
        *(f"Files/Windows/System32/config/{hive}" for hive in HIVES),
        "Files/cc0-legalcode.txt",
    ]
    for member in members:
        assert member.pax_headers["MSWINDOWS.fileattr"] == ("16" if member.isdir() else "32")
        assert (member.mtime, member.uid, member.gid) == (0, 0, 0)

    # GNU tar reads it too (gzip container, PAX headers).
    assert run("tar", "-tzf", str(blob(layout, base_digest))).split() == names

    with tarfile.open(blob(layout, base_digest), "r:gz") as tar:
        legalcode = tar.extractfile("Files/cc0-legalcode.txt").read()  # type: ignore[union-attr]
        assert legalcode == Path("cc0-legalcode.txt").read_bytes()
        for hive in HIVES:
            data = tar.extractfile(f"Files/Windows/System32/config/{hive}").read()  # type: ignore[union-attr]
            path = packaged.root / hive
            path.write_bytes(data)
            xml = run("hivexml", str(path))
            assert "<node name=" in xml and 'root="1"' in xml, xml


def test_user_layer_windows_format(packaged: Checkout) -> None:
    layout = packaged.dist / "examples" / "hello"
    manifest = json.loads(run("skopeo", "inspect", "--raw", f"oci:{layout}:latest"))
    digest = manifest["layers"][1]["digest"]
    members = layer_members(layout, digest)
    assert [m.name for m in members] == ["Hives", "Files", "Files/hello-world.ps1"]
    assert [m.pax_headers["MSWINDOWS.fileattr"] for m in members] == ["16", "16", "32"]
    with tarfile.open(blob(layout, digest), "r:gz") as tar:
        script = tar.extractfile("Files/hello-world.ps1").read()  # type: ignore[union-attr]
    assert script == (packaged.root / "examples" / "hello-world.ps1").read_bytes()
    assert b"Hello World!" in script
    # A gzip header with MTIME 0: the blob does not depend on when it was built.
    assert blob(layout, digest).read_bytes()[4:8] == b"\0\0\0\0"


def test_archives_are_readable_by_skopeo(packaged: Checkout) -> None:
    dist = packaged.dist / "examples"
    layout_digest = json.loads(run("skopeo", "inspect", f"oci:{dist / 'hello'}:latest"))["Digest"]

    docker = json.loads(run("skopeo", "inspect", f"docker-archive:{dist / 'hello.docker.tar'}"))
    assert (docker["Os"], docker["Architecture"]) == ("windows", "amd64")
    assert len(docker["Layers"]) == 2
    with tarfile.open(dist / "hello.docker.tar") as tar:
        [entry] = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert entry["RepoTags"] == ["examples/hello:latest"]

    oci = json.loads(run("skopeo", "inspect", f"oci-archive:{dist / 'hello.oci.tar'}:latest"))
    assert oci["Digest"] == layout_digest
    # The OCI archive is exactly the layout: unpacked, it validates and matches file for file.
    unpacked = packaged.root / "unpacked"
    unpacked.mkdir()
    run("tar", "-xf", str(dist / "hello.oci.tar"), "-C", str(unpacked))
    run("oci-image-tool", "validate", "--type", "image", "--ref", "name=latest", str(unpacked))
    layout_files = sorted(p.relative_to(dist / "hello") for p in (dist / "hello").rglob("*"))
    assert sorted(p.relative_to(unpacked) for p in unpacked.rglob("*")) == layout_files


def test_image_summary(packaged: Checkout) -> None:
    dist = packaged.dist / "examples"
    summary = load_json(dist / "hello.image.json")
    index = load_json(dist / "hello" / "index.json")
    assert summary["digest"] == index["manifests"][0]["digest"]
    assert summary["tags"] == ["latest"]
    manifest = load_json(blob(dist / "hello", summary["digest"]))
    assert [(l["digest"], l["size"]) for l in summary["layers"]] == [
        (l["digest"], l["size"]) for l in manifest["layers"]
    ]


def test_failed_build_keeps_previous_output(packaged: Checkout) -> None:
    dist = packaged.dist / "examples"
    before = {p: p.read_bytes() for p in dist.rglob("*") if p.is_file()}
    build = packaged.root / "examples" / "BUILD"
    original = build.read_text()
    (packaged.root / "elsewhere.txt").write_text("outside the image's directory\n")
    (packaged.root / "BUILD").write_text(
        (packaged.root / "BUILD").read_text()
        + '\nfiles(name="elsewhere", sources=["elsewhere.txt"])\n'
    )
    build.write_text(
        original.replace('dependencies=[":scripts"]', 'dependencies=[":scripts", "//:elsewhere"]')
    )
    try:
        result = packaged.pants("package", "examples:hello", check=False)
    finally:
        build.write_text(original)
    assert result.returncode != 0
    assert "elsewhere.txt" in result.stdout and "relocated_files" in result.stdout, result.stdout
    after = {p: p.read_bytes() for p in dist.rglob("*") if p.is_file()}
    assert after == before
