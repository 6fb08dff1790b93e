"""`hostprocess_image_test` on images pinned by digest in a registry, end to end.

The images are made here the way others make them, not by the plugin: layers tarred with GNU
`tar` (a base like Microsoft's script makes it: `Files/` with License.txt and the five hives),
packed as docker archives by hand and pushed with skopeo to a loopback CNCF distribution
registry; an index is PUT with the distribution API. One real `./pants test` in a throwaway
checkout then tests them all by digest: a good image passes; a bad layer, a Linux image and
an index fail, each with words that say why (no engine traceback).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from e2e.checkout import Checkout, copy_repo
from hostprocess.oci.windows.hive import empty_hive
from oci.registry_servers import RegistryServer, skopeo_output, start_registry
from system_tools import run_tool

HIVES = ("DEFAULT", "SAM", "SECURITY", "SOFTWARE", "SYSTEM")
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
HELLO = "Write-Output 'Hello from a pulled image'\r\n"
TESTS = "pulled"  # the checkout's directory of test targets


def sha256_file(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def gnu_tar(directory: Path, out: Path, *members: str) -> Path:
    """`tar -cf out members...` in `directory`: uncompressed, GNU format, as a script would."""
    run_tool("tar", "-cf", str(out), *members, cwd=directory)
    return out


def base_layer(work: Path) -> Path:
    """A HostProcess base layer as Microsoft's script makes one: `Files/` only, with a licence
    text and the five registry hives a parentless Windows layer carries."""
    root = work / "base"
    config = root / "Files" / "Windows" / "System32" / "config"
    config.mkdir(parents=True)
    (root / "Files" / "License.txt").write_bytes(b"A hand-made base layer for tests.\r\n")
    # No tool here writes a hive from nothing (hivexsh only edits an existing one, and no
    # sample hive is installed), so the hive bytes come from the plugin's writer; everything
    # around them (the tree, the tar, the archive, the push) is made without the plugin.
    hive = empty_hive("$$$PROTO.HIV")
    for name in HIVES:
        (config / name).write_bytes(hive)
    return gnu_tar(root, work / "base.tar", "Files")


def docker_archive(
    work: Path, name: str, layers: list[Path], os_name: str, runtime: dict[str, Any]
) -> Path:
    """Docker's archive format by hand: manifest.json, the config, the layer tars."""
    directory = work / f"{name}-archive"
    directory.mkdir()
    names = []
    for n, layer in enumerate(layers):
        names.append(f"layer{n}.tar")
        shutil.copyfile(layer, directory / names[-1])
    config = {
        "architecture": "amd64",
        "os": os_name,
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": [sha256_file(layer) for layer in layers]},
        "history": [{"created_by": f"hand-made layer {n}"} for n in range(len(layers))],
    }
    (directory / "config.json").write_text(json.dumps(config))
    manifest = [
        {"Config": "config.json", "RepoTags": [f"hand-made/{name}:latest"], "Layers": names}
    ]
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return gnu_tar(directory, work / f"{name}.docker.tar", "manifest.json", "config.json", *names)


def push(registry: RegistryServer, archive: Path, repository: str) -> str:
    """skopeo pushes the archive; returns `host/repository@digest` as skopeo reads it back."""
    tagged = f"{registry.host}/{repository}:v1"
    run_tool(
        "skopeo",
        "copy",
        "--retry-times",
        "0",
        "--dest-tls-verify=false",
        f"docker-archive:{archive}",
        f"docker://{tagged}",
    )
    digest = json.loads(skopeo_output(tagged))["Digest"]
    return f"{registry.host}/{repository}@{digest}"


def put_index(registry: RegistryServer, repository: str, entries: list[dict[str, Any]]) -> str:
    """A manifest list over manifests of `repository`, PUT with the distribution API."""
    body = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": entries}).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{repository}/manifests/{digest}",
        data=body,
        method="PUT",
        headers={"Content-Type": DOCKER_LIST},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201, response.status
    # The registry serves it as it is.
    assert skopeo_output(f"{registry.host}/{repository}@{digest}", raw=True) == body
    return f"{registry.host}/{repository}@{digest}"


def entry(registry: RegistryServer, reference: str, os_name: str) -> dict[str, Any]:
    raw = skopeo_output(reference, raw=True)
    return {
        "mediaType": DOCKER_MANIFEST,
        "digest": reference.split("@")[1],
        "size": len(raw),
        "platform": {"os": os_name, "architecture": "amd64"},
    }


@dataclass(frozen=True)
class Images:
    good: str
    bad: str
    linux: str
    index: str
    index_entries: tuple[str, ...]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    server = start_registry(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def images(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> Images:
    work = tmp_path_factory.mktemp("images")
    base = base_layer(work)
    runtime = {"Entrypoint": ["powershell.exe", "-File", "hello.ps1"]}

    good_root = work / "good"
    (good_root / "Hives").mkdir(parents=True)
    (good_root / "Files").mkdir()
    (good_root / "Files" / "hello.ps1").write_text(HELLO)
    good_layer = gnu_tar(good_root, work / "good.tar", "Hives", "Files")

    # A hard link in `Files/` to a file under `Hives/`: its target leaves `Files/`.
    bad_root = work / "bad"
    (bad_root / "Hives").mkdir(parents=True)
    (bad_root / "Files").mkdir()
    (bad_root / "Files" / "hello.ps1").write_text(HELLO)
    (bad_root / "Hives" / "notes.txt").write_text("not a hive\r\n")
    os.link(bad_root / "Hives" / "notes.txt", bad_root / "Files" / "notes.txt")
    bad_layer = gnu_tar(bad_root, work / "bad.tar", "Hives", "Files")
    listing = run_tool("tar", "-tvf", str(bad_layer)).stdout.decode()
    assert re.search(r"^h.* Files/notes\.txt link to Hives/notes\.txt$", listing, re.M), listing

    linux_root = work / "linux"
    (linux_root / "etc").mkdir(parents=True)
    (linux_root / "etc" / "hostname").write_text("linux\n")
    linux_layer = gnu_tar(linux_root, work / "linux.tar", "etc/hostname")

    good = push(
        registry,
        docker_archive(work, "good", [base, good_layer], "windows", runtime),
        "hand-made/good",
    )
    bad = push(
        registry,
        docker_archive(work, "bad", [base, bad_layer], "windows", runtime),
        "hand-made/bad",
    )
    linux_archive = docker_archive(work, "linux", [linux_layer], "linux", {"Cmd": ["/bin/sh"]})
    linux = push(registry, linux_archive, "hand-made/linux")
    # The index: the good and the Linux image again, in one repository, and a list over them.
    in_multi = [
        push(registry, docker_archive(work, "multi-win", [base, good_layer], "windows", runtime), "hand-made/multi"),
        push(registry, linux_archive, "hand-made/multi"),
    ]  # fmt: skip
    index = put_index(
        registry,
        "hand-made/multi",
        [entry(registry, in_multi[0], "windows"), entry(registry, in_multi[1], "linux")],
    )
    return Images(good, bad, linux, index, tuple(in_multi))


@dataclass(frozen=True)
class Run:
    checkout: Checkout
    output: str


@pytest.fixture(scope="module")
def first_run(
    images: Images, registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    """One `./pants test` of the four test targets, in a checkout of its own."""
    checkout = copy_repo(tmp_path_factory.mktemp("checkout") / "repo")
    checkout.set_registries({"loopback": {"address": registry.host, "insecure": True}})
    directory = checkout.root / TESTS
    directory.mkdir()
    (directory / "BUILD").write_text(
        f"""\
hostprocess_image_test(
    name="good-test",
    image="{images.good}",
    files={{
        "C:\\\\hello.ps1": {{"type": "file", "matches": "Hello from a pulled image"}},
        "C:\\\\License.txt": {{}},
        "C:\\\\Windows\\\\System32\\\\config\\\\SYSTEM": {{"type": "file"}},
    }},
    entrypoint=["powershell.exe", "-File", "hello.ps1"],
    os="windows",
    architecture="amd64",
    layer_count=2,
)
hostprocess_image_test(name="bad-test", image="{images.bad}", files={{"C:\\\\hello.ps1": {{}}}})
hostprocess_image_test(name="linux-test", image="{images.linux}")
hostprocess_image_test(name="index-test", image="{images.index}")
"""
    )
    result = checkout.pants("test", "--test-output=all", f"{TESTS}::", check=False)
    assert result.returncode != 0, result.stdout  # three of the four must fail
    return Run(checkout, result.stdout)


@pytest.fixture(scope="module")
def run(first_run: Run) -> str:
    """The first run's whole output."""
    return first_run.output


def summary_line(output: str, name: str) -> str:
    address = f"{TESTS}:{name}"
    match = re.search(rf"^(?:✓|✕) {re.escape(address)} .*$", output, re.MULTILINE)
    assert match, f"no result line for {address}:\n{output}"
    return match.group(0)


def report(output: str, name: str, image: str) -> str:
    """The runner's report for one test: from its header to its passed/failed count."""
    header = f"{TESTS}:{name}: "
    match = re.search(
        rf"^{re.escape(header)}\d+ assertions on the image {re.escape(image)}\n.*?^\d+ passed, \d+ failed$",
        output,
        re.MULTILINE | re.DOTALL,
    )
    assert match, f"no report of {TESTS}:{name} on {image}:\n{output}"
    return match.group(0)


def test_no_engine_error(run: str) -> None:
    """Every failure is a failed test, never an exception of the rules or the runner."""
    assert "Engine traceback" not in run and "Traceback (most recent call last)" not in run, run


def test_a_good_pulled_image_passes(run: str, images: Images) -> None:
    assert summary_line(run, "good-test").startswith(f"✓ {TESTS}:good-test succeeded"), run
    text = report(run, "good-test", images.good)
    assert "  PASS  C:\\hello.ps1 content matches 'Hello from a pulled image'" in text, text
    assert "  PASS  layer count is 2" in text and "  FAIL  " not in text, text


def test_a_hard_link_leaving_files_fails_naming_the_rule(run: str, images: Images) -> None:
    assert summary_line(run, "bad-test").startswith(f"✕ {TESTS}:bad-test failed"), run
    text = report(run, "bad-test", images.bad)
    failed = re.findall(r"^  FAIL  ([a-z0-9-]+):", text, re.M)
    assert failed == ["layer-hard-links"], text  # the one rule the hand-made layer breaks
    assert "'Files/notes.txt' -> 'Hives/notes.txt': its target is outside Files/" in text, text


def test_a_linux_image_is_tested_and_fails_clearly(run: str, images: Images) -> None:
    # The pull takes it (a base would be refused); the runner's `windows-image` check reports it.
    assert summary_line(run, "linux-test").startswith(f"✕ {TESTS}:linux-test failed"), run
    text = report(run, "linux-test", images.linux)
    assert "  FAIL  windows-image: " in text, text
    assert "The config says `os: 'linux'`: this is not a Windows image" in text, text
    assert "Layer(s) 1 of 1 are not in the Windows layer format" in text, text


def test_an_index_fails_listing_its_manifests(run: str, images: Images) -> None:
    assert summary_line(run, "index-test").startswith(f"✕ {TESTS}:index-test failed"), run
    assert (
        f"{images.index} is an image index (a manifest list), not a single image: test one "
        "manifest by its digest instead, one of:\n"
        f"  {images.index_entries[0]} (windows/amd64)\n"
        f"  {images.index_entries[1]} (linux/amd64)\n"
    ) in run, run


def test_a_rerun_needs_no_registry(first_run: Run, registry: RegistryServer) -> None:
    """The pull is cached by digest as a base's is: with the registry gone, the unchanged
    test is not run again, and its image is not pulled again."""
    registry.stop()
    again = first_run.checkout.pants("test", f"{TESTS}:good-test").stdout
    line = summary_line(again, "good-test")
    assert line.startswith(f"✓ {TESTS}:good-test succeeded") and line.endswith(
        "(cached locally)."
    ), again
