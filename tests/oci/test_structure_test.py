"""The image test core without the external tool: reading archives back (layers stacked,
names compared as NTFS does), translating `C:\\` paths for container-structure-test, our
own checks and the reports. Archives are written here with Python's tarfile, not our writer."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import zstandard

from hostprocess.compat.catalog import CHECKS
from hostprocess.structure_test.archive_reader import read_archive
from hostprocess.structure_test.checks import Outcome, Plan, junit_xml, plan, relative_path
from oci.tar_members import write_tar


def own_outcomes(planned: Plan) -> list[Outcome]:
    """The plan's items, every one decided by our own checks (none left to the tool)."""
    assert all(isinstance(item, Outcome) for item in planned.items), planned.items
    return [item for item in planned.items if isinstance(item, Outcome)]


def layer(entries: dict[str, bytes | None], compress: str = "gzip") -> bytes:
    """A layer tar: name -> content, None for a directory."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    data = raw.getvalue()
    return gzip.compress(data) if compress == "gzip" else zstandard.ZstdCompressor().compress(data)


def archive(
    tmp_path: Path,
    layers: list[bytes],
    config: dict[str, Any],
    index_entry: dict[str, Any] | None = None,
) -> Path:
    blobs = {hashlib.sha256(b).hexdigest(): b for b in layers}
    config_bytes = json.dumps(config).encode()
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"digest": f"sha256:{config_hex}", "size": len(config_bytes)},
        "layers": [{"digest": f"sha256:{h}", "size": len(b)} for h, b in zip(blobs, layers)],
    }
    manifest_bytes = json.dumps(manifest).encode()
    manifest_hex = hashlib.sha256(manifest_bytes).hexdigest()
    entry = {
        "digest": f"sha256:{manifest_hex}",
        "mediaType": manifest["mediaType"],
        **(index_entry or {}),
    }
    members = {
        "manifest.json": json.dumps(
            [
                {
                    "Config": f"blobs/sha256/{config_hex}",
                    "Layers": [f"blobs/sha256/{h}" for h in blobs],
                }
            ]
        ).encode(),
        "index.json": json.dumps({"schemaVersion": 2, "manifests": [entry]}).encode(),
        f"blobs/sha256/{config_hex}": config_bytes,
        f"blobs/sha256/{manifest_hex}": manifest_bytes,
        **{f"blobs/sha256/{h}": b for h, b in blobs.items()},
    }
    return write_tar(tmp_path / "image.docker.tar", members)


CONFIG: dict[str, Any] = {
    "os": "windows",
    "architecture": "amd64",
    "config": {
        "Entrypoint": ["bin\\agent.exe"],
        "Env": ["Path=%SystemRoot%\\System32\\;C:\\tools"],
    },
}


@pytest.fixture
def image_path(tmp_path: Path) -> Path:
    base = layer(
        {
            "Hives": None,
            "Files": None,
            "Files/bin": None,
            "Files/bin/agent.exe": b"old",
            "Files/logs": None,
            "Files/logs/a.log": b"a",
        }
    )
    top = layer(
        {
            "Files": None,
            "Files/BIN/Agent.EXE": b"new!",
            "Files/.wh.logs": b"",
            "Files/conf.yaml": b"level: info\n",
        },
        compress="zstd",
    )
    return archive(tmp_path, [base, top], CONFIG)


def test_layers_stack_as_on_ntfs(image_path: Path) -> None:
    image = read_archive(image_path, ["bin/AGENT.exe"])
    agent = image.find("BIN/agent.exe")
    assert agent is not None and agent.path == "BIN/Agent.EXE" and agent.size == 4
    assert agent.sha256 == hashlib.sha256(b"new!").hexdigest()  # the later layer's bytes
    assert image.find("logs") is None and image.find("logs/a.log") is None  # whiteout
    conf = image.find("conf.yaml")
    assert conf is not None and conf.sha256 is None  # only the asked-for paths are hashed
    assert image.find("bin") is not None and image.find("bin").is_dir  # type: ignore[union-attr]
    assert "hives" not in image.files and "" in image.files


def test_paths_are_translated_in_the_case_the_image_holds(image_path: Path) -> None:
    spec = {
        "files": [
            {"path": "C:\\bin\\agent.exe", "matches": ["new"]},
            {"path": "C:\\Missing\\x.txt"},
        ]
    }
    checks = plan(read_archive(image_path), spec).cst
    configs = [c.config for c in checks]
    assert configs[0]["fileExistenceTests"][0]["path"] == "/Files/BIN/Agent.EXE"
    assert configs[1]["fileContentTests"][0] == {
        "name": "C:\\bin\\agent.exe",
        "path": "/Files/BIN/Agent.EXE",
        "expectedContents": ["new"],
    }
    assert configs[2]["fileExistenceTests"][0]["path"] == "/Files/Missing/x.txt"
    assert checks[2].notes == ("nearest existing paths: C:\\bin, C:\\conf.yaml",)


def test_nearest_paths_prefer_similar_names_then_the_closest_parent(image_path: Path) -> None:
    image = read_archive(image_path)
    assert image.paths.nearest("bin/agent.ex", directories=True) == ("C:\\BIN\\Agent.EXE",)
    assert image.paths.nearest("BIN/zzz", directories=True) == (
        "C:\\bin",
        "C:\\BIN\\Agent.EXE",
    )  # a similar name, then the parent's contents


@pytest.mark.parametrize(
    "env, passed",
    [
        (["Path=%SystemRoot%\\System32\\;C:\\tools"], True),
        (["PATH=C:\\WINDOWS\\system32;C:\\Windows"], True),
        (["PATH=C:\\tools;C:\\Windows"], False),
        (["PATH="], False),
        ([], True),  # unset: the node's PATH applies
    ],
)
def test_path_keeps_system32(tmp_path: Path, env: list[str], passed: bool) -> None:
    config = {**CONFIG, "config": {"Env": env}}
    [outcome] = own_outcomes(
        plan(
            read_archive(archive(tmp_path, [layer({"Files": None})], config)),
            {"checks": ["path-keeps-system32"]},
        )
    )
    assert outcome.passed is passed, outcome


def test_own_checks_read_config_manifest_and_index(tmp_path: Path) -> None:
    config = {**CONFIG, "os.version": "10.0.20348.1"}
    path = archive(tmp_path, [layer({"Files": None})], config, {"platform": {"os": "windows"}})
    checks = ["entrypoint-program", "no-os-version", "single-manifest"]
    spec = {
        "checks": checks,
        "architecture": "arm64",
        "layer_count": 2,
    }
    planned = own_outcomes(plan(read_archive(path), spec))
    outcomes = {o.name.split(": ", 1)[0]: o for o in planned}
    # One outcome per check, in the order asked, named by the check and what must hold.
    assert [o.name for o in planned] == [
        "architecture is 'arm64'",
        "layer count is 2",
        *(f"{name}: {CHECKS[name].summary}" for name in checks),
    ]
    assert outcomes["architecture is 'arm64'"].actual == "'amd64'"
    assert outcomes["layer count is 2"].actual == "1"
    program = outcomes["entrypoint-program"]
    assert program.expected == CHECKS["entrypoint-program"].summary
    assert program.actual == (
        "The command line `bin\\agent.exe` starts `bin\\agent.exe`, which is neither a Windows "
        "system program nor in the image (looked for at C:\\bin\\agent.exe, with the "
        "extensions of PATHEXT)."
    )
    assert program.notes == (
        "nearest files the image holds: (none)",
        f"on a node: {CHECKS['entrypoint-program'].prevents} "
        f"(reported at {CHECKS['entrypoint-program'].source})",
    )
    assert outcomes["no-os-version"].actual == (
        "The config records os.version='10.0.20348.1': containerd would then pull the image "
        "only on nodes of that Windows build."
    )
    assert outcomes["single-manifest"].actual.startswith(
        "The image is not a single platform-free manifest: the index entry sha256:"
    )
    assert outcomes["single-manifest"].actual.endswith(" has a platform {'os': 'windows'}.")
    assert not any(o.passed for o in outcomes.values())


def test_junit_report_names_target_and_assertion(image_path: Path) -> None:
    outcomes = own_outcomes(plan(read_archive(image_path), {"layer_count": 3, "os": "windows"}))
    root = ET.fromstring(junit_xml("apps:agent-test", outcomes))
    suite = root.find("testsuite")
    assert (
        suite is not None
        and suite.get("name") == "apps:agent-test"
        and suite.get("failures") == "1"
    )
    failure = suite.find("testcase/failure")
    assert (
        failure is not None
        and failure.text == "apps:agent-test: layer count is 3\nexpected: 3\nthe image holds: 2"
    )


def test_relative_path() -> None:
    assert relative_path("C:\\") == ""
    assert relative_path("c:\\a\\b\\") == "a/b"
