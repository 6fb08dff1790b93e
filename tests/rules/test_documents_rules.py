"""The SBOMs and provenance `package` writes, through the real rules and tool processes.

Each document is validated by its project's own library (the `verify-documents` PEX, see
tests/verifiers) and its content is checked against what the test itself knows of the
inputs: checksums from hashlib, the targets and the URL the BUILD file names.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from textwrap import dedent
from typing import Any

from pants.core.goals.package import BuiltPackage
from pants.core.target_types import ArchiveTarget, FileTarget, http_source
from pants.core.util_rules import archive, system_binaries
from pants.engine.addresses import Address
from pants.engine.fs import Digest, DigestContents
from pants.testutil.rule_runner import QueryRule, RuleRunner

from hostprocess.util_rules.image import HostProcessImageFieldSet
from rules.rule_runners import tool_rule_runner
from rules.test_package_rules import package

VERIFY_DOCUMENTS = Path("tests.verifiers/verify-documents.pex").absolute()
SCRIPT = b"Write-Output 'agent started'\r\n"
CONFIG = b"level: info\n"
TOOL = b"MZ" + bytes(range(256)) * 8


def _runner(tmp_path: Path, image_fields: str, *options: str) -> tuple[RuleRunner, str]:
    """apps/agent: a script, an archive of a config file, and a binary from an http_source."""
    downloaded = tmp_path / "tool.exe"
    downloaded.write_bytes(TOOL)
    url = f"file://{downloaded}"
    rule_runner = tool_rule_runner(
        target_types=[ArchiveTarget, FileTarget],
        query_rules=[
            *archive.rules(),
            *system_binaries.rules(),
            QueryRule(BuiltPackage, [HostProcessImageFieldSet]),
            QueryRule(DigestContents, [Digest]),
        ],
        options=options,
        objects={"http_source": http_source},
    )
    rule_runner.write_files(
        {
            "apps/agent/start.ps1": SCRIPT,
            "apps/agent/conf/agent.yaml": CONFIG,
            "apps/agent/BUILD": dedent(
                f"""
                files(name="scripts", sources=["start.ps1"])
                files(name="conf", sources=["conf/agent.yaml"])
                archive(name="config", format="tar", files=[":conf"])
                file(
                    name="tool",
                    source=http_source(
                        "{url}",
                        len={len(TOOL)},
                        sha256="{hashlib.sha256(TOOL).hexdigest()}",
                        filename="tool.exe",
                    ),
                )
                hostprocess_image(
                    name="agent",
                    dependencies=[":scripts", ":config", ":tool"],
                    entrypoint=["powershell.exe", "-File", "start.ps1"],
                    repository="windows/agent",
                    {image_fields}
                )
                """
            ),
        }
    )
    return rule_runner, url


def _verify(kind: str, document: bytes, tmp_path: Path) -> str:
    path = tmp_path / f"document.{kind}.json"
    path.write_bytes(document)
    result = subprocess.run(
        [str(VERIFY_DOCUMENTS), kind, str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _checksums(data: bytes) -> list[dict[str, str]]:
    return [
        {"algorithm": "SHA1", "checksumValue": hashlib.sha1(data).hexdigest()},
        {"algorithm": "SHA256", "checksumValue": hashlib.sha256(data).hexdigest()},
    ]


def test_the_spdx_sbom_lists_every_file_download_and_package(tmp_path: Path) -> None:
    rule_runner, url = _runner(tmp_path, "")
    files = package(rule_runner, Address("apps/agent", target_name="agent"))
    summary = json.loads(files["apps.agent/agent.image.json"])
    assert sorted(summary["documents"]) == ["provenance", "spdx"]  # the defaults
    spdx = files["apps.agent/agent.spdx.json"]
    assert summary["documents"]["spdx"]["digest"] == "sha256:" + hashlib.sha256(spdx).hexdigest()
    _verify("spdx", spdx, tmp_path)

    document = json.loads(spdx)
    by_name = {f["fileName"]: f for f in document["files"]}
    # The base layer's files and ours, each with checksums of its bytes.
    assert {"./License.txt", "./Windows/System32/config/SYSTEM"} <= set(by_name)
    assert sorted(by_name["./start.ps1"]["checksums"], key=str) == sorted(
        _checksums(SCRIPT), key=str
    )
    assert sorted(by_name["./tool.exe"]["checksums"], key=str) == sorted(_checksums(TOOL), key=str)
    assert "C:\\start.ps1" in by_name["./start.ps1"]["comment"]
    assert "apps/agent/start.ps1:scripts" in by_name["./start.ps1"]["comment"]  # its file target
    assert "apps/agent/start.ps1" in by_name["./start.ps1"]["comment"]
    archive = by_name["./config.tar"]
    packages = {p["name"]: p for p in document["packages"]}
    # A file:// URL is no SPDX download location: NOASSERTION, and the URL in the comment.
    downloads = [p for p in document["packages"] if url in p.get("comment", "")]
    assert len(downloads) == 1, packages
    assert downloads[0]["downloadLocation"] == "NOASSERTION"
    assert {"algorithm": "SHA256", "checksumValue": hashlib.sha256(TOOL).hexdigest()} in downloads[
        0
    ]["checksums"]
    artifacts = [p for p in document["packages"] if "apps/agent:config" in json.dumps(p)]
    assert artifacts, packages
    described = [r for r in document["relationships"] if r["relationshipType"] == "DESCRIBES"]
    assert len(described) == 1
    image_package = next(
        p for p in document["packages"] if p["SPDXID"] == described[0]["relatedSpdxElement"]
    )
    assert {
        "algorithm": "SHA256",
        "checksumValue": summary["digest"].split(":")[1],
    } in image_package["checksums"]
    assert archive["SPDXID"] in json.dumps(document["relationships"])


def test_the_provenance_names_the_image_its_fields_and_every_input(tmp_path: Path) -> None:
    rule_runner, url = _runner(tmp_path, "")
    files = package(rule_runner, Address("apps/agent", target_name="agent"))
    summary = json.loads(files["apps.agent/agent.image.json"])
    provenance = files["apps.agent/agent.provenance.json"]
    _verify("provenance", provenance, tmp_path)
    statement: dict[str, Any] = json.loads(provenance)
    assert statement["subject"] == [
        {"name": "windows/agent", "digest": {"sha256": summary["digest"].split(":")[1]}}
    ]
    definition = statement["predicate"]["buildDefinition"]
    external = definition["externalParameters"]
    assert external["target"] == "apps/agent:agent"
    assert external["fields"]["entrypoint"] == ["powershell.exe", "-File", "start.ps1"]
    assert definition["internalParameters"]["compression"] == "gzip"
    dependencies = json.dumps(definition["resolvedDependencies"])
    assert hashlib.sha256(SCRIPT).hexdigest() in dependencies
    assert url in dependencies
    assert "image_tool.lock" in dependencies


def test_sbom_formats_and_provenance_fields_choose_the_documents(tmp_path: Path) -> None:
    rule_runner, _ = _runner(tmp_path, 'sbom_formats=["cyclonedx"], provenance=False,')
    files = package(rule_runner, Address("apps/agent", target_name="agent"))
    written = sorted(
        path for path in files if path.endswith((".spdx.json", ".cdx.json", ".provenance.json"))
    )
    assert written == ["apps.agent/agent.cdx.json"]
    _verify("cyclonedx", files["apps.agent/agent.cdx.json"], tmp_path)
    bom = json.loads(files["apps.agent/agent.cdx.json"])
    assert bom["specVersion"] == "1.6"
    assert bom["metadata"]["component"]["type"] == "container"


def test_every_document_can_be_turned_off_repository_wide(tmp_path: Path) -> None:
    rule_runner, _ = _runner(
        tmp_path, "", "--hostprocess-sbom-formats=[]", "--no-hostprocess-provenance"
    )
    files = package(rule_runner, Address("apps/agent", target_name="agent"))
    summary = json.loads(files["apps.agent/agent.image.json"])
    assert summary["documents"] == {}
    assert not [path for path in files if path.endswith((".spdx.json", ".provenance.json"))]
