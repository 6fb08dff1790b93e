"""Stacking, end to end: image chains, multi-layer images, external bases pinned by digest.

Every build is a real `./pants` run in a throwaway checkout; results are checked with
oci-image-tool, skopeo and the registry's own storage, not with our code.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import socket
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from e2e.checkout import Checkout, copy_repo, load_json

BASE_LAYER_DIGEST = "sha256:b9c41e1613838cb61d8a93d81084d0ec01fcd3e458faf73343cccaa36b6ab218"


def run(*argv: str) -> str:
    result = subprocess.run(argv, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


def summary(checkout: Checkout, output: str) -> dict:
    return load_json(checkout.dist / f"{output}.image.json")


def layer_digests(checkout: Checkout, output: str) -> list[str]:
    return [layer["digest"] for layer in summary(checkout, output)["layers"]]


def layer_names(layout: Path, digest: str) -> list[str]:
    data = (layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        return tar.getnames()


class Registry:
    """The CNCF distribution registry (Debian's docker-registry) on a loopback port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.storage = root / "storage"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config = self.root / "config.yml"
        config.write_text(
            f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {self.storage}\n"
            f"  delete:\n    enabled: true\nhttp:\n  addr: {self.host}\n"
        )
        log = open(self.root / "registry.log", "ab")
        self.process = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=log, stderr=log
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"registry did not start:\n{(self.root / 'registry.log').read_text()}")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None

    def blob_files(self) -> dict[str, int]:
        """Every blob the registry stores, by digest, with its size: read from its storage."""
        blobs = self.storage / "docker/registry/v2/blobs/sha256"
        return {f"sha256:{p.parent.name}": p.stat().st_size for p in blobs.glob("*/*/data")}

    def blob_data(self, digest: str) -> Path:
        hex_digest = digest.split(":")[1]
        return (
            self.storage / "docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest / "data"
        )


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    server = Registry(tmp_path_factory.mktemp("registry"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stacked(tmp_path_factory: pytest.TempPathFactory) -> Checkout:
    checkout = copy_repo(tmp_path_factory.mktemp("stack") / "repo")
    checkout.pants(
        "package", "examples:hello", "examples/org-base", "examples/node-agent:node-agent"
    )
    return checkout


def test_three_level_chain(stacked: Checkout) -> None:
    hello = layer_digests(stacked, "examples/hello")
    org = layer_digests(stacked, "examples.org-base/org-base")
    agent = layer_digests(stacked, "examples.node-agent/node-agent")
    # Shared parts are the same bytes: the built-in base everywhere, the org layer in the app.
    assert hello[0] == org[0] == agent[0] == BASE_LAYER_DIGEST
    assert agent[:2] == org and len(agent) == 5

    layout = stacked.dist / "examples.node-agent" / "node-agent"
    out = run("oci-image-tool", "validate", "--type", "image", "--ref", "name=latest", str(layout))
    assert "Validation succeeded" in out
    raw = run("skopeo", "inspect", "--raw", f"oci:{layout}:1.2.3")
    assert "platform" not in raw
    assert [layer["digest"] for layer in json.loads(raw)["layers"]] == agent
    config = json.loads(run("skopeo", "inspect", "--config", "--raw", f"oci:{layout}:latest"))
    assert "os.version" not in config and config["os"] == "windows"
    assert config["config"]["Env"][0].startswith("PATH=C:\\Windows\\system32")  # inherited
    assert config["config"]["Env"][1].startswith("AGENT_CONFIG=")  # added
    assert config["config"]["Labels"] == {
        "org.example.base": "2026.11",
        "org.example.component": "node-agent",
    }
    assert len(config["history"]) == 5

    assert layer_names(layout, agent[1]) == [
        "Hives",
        "Files",
        "Files/tools",
        "Files/tools/NodeLog.ps1",
    ]
    assert layer_names(layout, agent[2]) == [
        "Hives",
        "Files",
        "Files/dashboards.zip",
    ]  # an `archive` package
    assert layer_names(layout, agent[3]) == [
        "Hives",
        "Files",
        "Files/config",
        "Files/config/agent.yaml",
    ]
    assert layer_names(layout, agent[4]) == ["Hives", "Files", "Files/start-agent.ps1"]


def test_one_script_change_rebuilds_and_republishes_one_layer(
    stacked: Checkout, registry: Registry
) -> None:
    # `example`: the alias node-agent's `registries` names (pants.toml's, skip_push), here the
    # loopback registry and the default, so org-base is pushed there too.
    registries = (
        f"--hostprocess-registries={{'example': {{'address': '{registry.host}', 'default': True}}}}"
    )
    # The image alone: its SBOM and provenance change with the script too, and go up as
    # referrers of the new image (test_supply_chain.py); here only layers are counted.
    no_documents = ("--hostprocess-sbom-formats=[]", "--no-hostprocess-provenance")
    stacked.pants("publish", "examples/org-base", registries, *no_documents)
    publish = ("publish", "examples/node-agent:node-agent", registries, *no_documents)
    first = stacked.pants(*publish)
    # The two layers it shares with its base are mounted from the base's repository.
    assert "2 mounted" in first.stdout, first.stdout
    before_layers = layer_digests(stacked, "examples.node-agent/node-agent")
    before_blobs = registry.blob_files()

    script = stacked.root / "examples" / "node-agent" / "start-agent.ps1"
    script.write_bytes(script.read_bytes() + b'Write-NodeLog "ready"\r\n')
    stacked.pants("package", "examples/node-agent:node-agent")
    after_layers = layer_digests(stacked, "examples.node-agent/node-agent")
    assert after_layers[:4] == before_layers[:4] and after_layers[4] != before_layers[4]

    result = stacked.pants(*publish)
    new_blobs = {d: size for d, size in registry.blob_files().items() if d not in before_blobs}
    image = summary(stacked, "examples.node-agent/node-agent")
    # The registry received exactly the changed layer and the new config (and stores the new
    # manifest among its blobs), nothing else.
    assert set(new_blobs) == {after_layers[4], image["config"]["digest"], image["digest"]}
    assert new_blobs[after_layers[4]] == image["layers"][4]["size"]
    uploaded = new_blobs[after_layers[4]] + new_blobs[image["config"]["digest"]]
    assert f"Uploaded 2 blobs ({uploaded} bytes)" in result.stdout, result.stdout


def test_http_source_binary_pinned_by_digest(stacked: Checkout, tmp_path: Path) -> None:
    agent = tmp_path / "agent-1.2.3.exe"
    agent.write_bytes(b"MZ" + hashlib.sha256(b"agent").digest() * 1000)
    sha256 = hashlib.sha256(agent.read_bytes()).hexdigest()
    build = stacked.root / "examples" / "node-agent" / "BUILD"
    original = build.read_text()
    build.write_text(
        original.replace(
            'layers=[":dashboards", ":config"]', 'layers=[":agent-bin", ":dashboards", ":config"]'
        )
        + f'\nfile(name="agent-bin", source=http_source("file://{agent}", len={agent.stat().st_size}, sha256="{sha256}", filename="agent.exe"))\n'
    )
    try:
        stacked.pants("package", "examples/node-agent:node-agent")
    finally:
        build.write_text(original)
    layers = layer_digests(stacked, "examples.node-agent/node-agent")
    layout = stacked.dist / "examples.node-agent" / "node-agent"
    assert layer_names(layout, layers[2]) == ["Hives", "Files", "Files/agent.exe"]


def test_external_base_pinned_by_digest(
    stacked: Checkout, registry: Registry, tmp_path: Path
) -> None:
    registries = (
        f"--hostprocess-registries={{'ci': {{'address': '{registry.host}', 'default': True}}}}"
    )
    stacked.pants("publish", "examples/org-base", registries)
    org = summary(stacked, "examples.org-base/org-base")
    app_dir = stacked.root / "examples" / "on-external"
    app_dir.mkdir()
    (app_dir / "app.ps1").write_text("Write-Output app\n")
    (app_dir / "BUILD").write_text(
        "files(name='app', sources=['app.ps1'])\n"
        f"hostprocess_image(name='app-image', base='{registry.host}/{org['repository']}@{org['digest']}',"
        " dependencies=[':app'], entrypoint=['powershell.exe', './app.ps1'])\n"
        "hostprocess_image(name='from-dockerfile', dockerfile='Dockerfile.windows')\n"
    )
    # The same image as a Dockerfile: FROM the pinned reference means the same external base.
    (app_dir / "Dockerfile.windows").write_text(
        f"FROM {registry.host}/{org['repository']}@{org['digest']}\n"
        "COPY app.ps1 .\n"
        'ENTRYPOINT ["powershell.exe", "./app.ps1"]\n'
    )
    result = stacked.pants(
        "package", "examples/on-external:app-image", "examples/on-external:from-dockerfile"
    )
    assert (
        f"Pulling the base image {registry.host}/{org['repository']}@{org['digest']}"
        in result.stdout
    )
    first = layer_digests(stacked, "examples.on-external/app-image")
    assert first[:2] == [layer["digest"] for layer in org["layers"]]
    assert layer_digests(stacked, "examples.on-external/from-dockerfile") == first
    layout = stacked.dist / "examples.on-external" / "app-image"
    run("oci-image-tool", "validate", "--type", "image", "--ref", "name=latest", str(layout))

    # With the registry down, a rebuild (the app layer changed) takes the base from the cache.
    registry.stop()
    try:
        (app_dir / "app.ps1").write_text("Write-Output app v2\n")
        stacked.pants("package", "examples/on-external:app-image")
        second = layer_digests(stacked, "examples.on-external/app-image")
        assert second[:2] == first[:2] and second[2] != first[2]
    finally:
        registry.start()

    # A tampered blob in the registry is detected and refused (a base never pulled before).
    stacked.pants("publish", "examples:hello", registries)
    hello = summary(stacked, "examples/hello")
    tampered = registry.blob_data(hello["layers"][1]["digest"])
    data = tampered.read_bytes()
    tampered.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    (app_dir / "BUILD").write_text(
        (app_dir / "BUILD")
        .read_text()
        .replace(f"{org['repository']}@{org['digest']}", f"{hello['repository']}@{hello['digest']}")
    )
    result = stacked.pants("package", "examples/on-external:app-image", check=False)
    assert result.returncode != 0
    assert (
        hello["layers"][1]["digest"] in result.stdout and "different content" in result.stdout
    ), result.stdout


def test_unpinned_base_is_refused(stacked: Checkout) -> None:
    app_dir = stacked.root / "examples" / "unpinned"
    app_dir.mkdir()
    (app_dir / "BUILD").write_text(
        "hostprocess_image(name='x', base='mcr.microsoft.com/oss/kubernetes/windows-host-process-containers-base-image:v1.0.0')\n"
    )
    result = stacked.pants("package", "examples/unpinned:x", check=False)
    assert result.returncode != 0
    assert (
        "windows-host-process-containers-base-image@sha256:<digest>" in result.stdout
    ), result.stdout
