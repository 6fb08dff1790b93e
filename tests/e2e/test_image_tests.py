"""`./pants test` runs `hostprocess_image_test` targets: the examples pass, a re-run with no
change comes from Pants' process cache (no daemon, so not memoized), a failing assertion is
reported in the test output and in the JUnit report of `--test-report`.
"""
from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from e2e.checkout import copy_repo

EXAMPLE_TESTS = ("examples:hello-test", "examples/node-agent:node-agent-test")


def summary_line(output: str, address: str) -> str:
    match = re.search(rf"^(?:✓|✕) {re.escape(address)} .*$", output, re.MULTILINE)
    assert match, f"no result line for {address}:\n{output}"
    return match.group(0)


def test_image_tests_run_cached_and_report_failures(tmp_path: Path) -> None:
    checkout = copy_repo(tmp_path / "repo")
    # A test no cache can hold yet: it names a path unique to this run.
    unique = f"C:\\\\absent-{uuid.uuid4().hex}.txt"
    build = checkout.root / "examples" / "BUILD"
    original = build.read_text()
    build.write_text(
        original
        + f'\nhostprocess_image_test(name="fresh-test", image=":hello", files={{"{unique}": {{"exists": False}}}})\n'
    )

    first = checkout.pants("test", "examples::").stdout
    for address in EXAMPLE_TESTS:
        assert summary_line(first, address).startswith(f"✓ {address} succeeded"), first
    fresh = summary_line(first, "examples:fresh-test")
    assert fresh.startswith("✓ examples:fresh-test succeeded") and "(cached" not in fresh, first

    second = checkout.pants("test", "examples::").stdout
    for address in (*EXAMPLE_TESTS, "examples:fresh-test"):
        line = summary_line(second, address)
        assert line.startswith(f"✓ {address} succeeded") and line.endswith(
            "(cached locally)."
        ), second

    # The same path must now exist: a failure naming target, assertion, expected and actual.
    build.write_text(
        original
        + f'\nhostprocess_image_test(name="fresh-test", image=":hello", files={{"{unique}": {{}}}})\n'
    )
    failed = checkout.pants("test", "--test-report", "examples:fresh-test", check=False)
    assert failed.returncode != 0, failed.stdout
    path = unique.replace("\\\\", "\\")
    assert f"  FAIL  {path} exists  [container-structure-test]" in failed.stdout, failed.stdout
    assert "the image holds: no such path" in failed.stdout
    assert "nearest existing paths: C:\\" in failed.stdout
    assert summary_line(failed.stdout, "examples:fresh-test").startswith(
        "✕ examples:fresh-test failed"
    )
    report = checkout.dist / "test" / "reports" / "examples.fresh-test.xml"
    case = ET.parse(report).getroot().find("testsuite/testcase")
    assert case is not None and case.get("name") == f"{path} exists"
    failure = case.find("failure")
    assert failure is not None and (failure.text or "").startswith(
        f"examples:fresh-test: {path} exists\n"
    )
