"""`hostprocess_image` publish through the real rules: what the push process is given.

A registry's `ca_cert` reaches the push as the pull gets it: the path as configured, with
a relative file put at that path in the process's sandbox (never joined to the build root).
The request deadlines of `[hostprocess]` reach it as flags.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from pants.core.goals.publish import PublishProcesses
from pants.engine.addresses import Address
from pants.engine.fs import Digest, DigestContents
from pants.testutil.rule_runner import QueryRule, RuleRunner

from hostprocess.goals.publish import (
    PublishHostProcessImageFieldSet,
    PublishHostProcessImageRequest,
)
from rules.agent_project import START_SCRIPT, agent_build
from rules.test_package_rules import make_rule_runner

CA_PEM = b"-----BEGIN CERTIFICATE-----\nnot really a certificate\n-----END CERTIFICATE-----\n"
IMAGE = Address("apps/agent", target_name="agent")


def _runner(ca_cert: str, *options: str) -> RuleRunner:
    registries = f"{{'ci': {{'address': 'registry.ci.internal:5000', 'default': True, 'ca_cert': '{ca_cert}'}}}}"
    rule_runner = make_rule_runner(
        f"--hostprocess-registries={registries}",
        *options,
        query_rules=(QueryRule(PublishProcesses, [PublishHostProcessImageRequest]),),
    )
    rule_runner.write_files(
        {
            "apps/agent/BUILD": agent_build('image_tags=["v1"],'),
            "apps/agent/start.ps1": START_SCRIPT,
            "certs/ca.pem": CA_PEM,
        }
    )
    return rule_runner


def _push(rule_runner: RuleRunner) -> tuple[List[str], Dict[str, bytes]]:
    """The push process's argv after the tool's entry point, and its sandbox's files."""
    field_set = PublishHostProcessImageFieldSet.create(rule_runner.get_target(IMAGE))
    [job] = rule_runner.request(PublishProcesses, [PublishHostProcessImageRequest(field_set, ())])
    assert job.process is not None
    process = job.process.process
    argv = list(process.argv)
    contents = rule_runner.request(DigestContents, [process.input_digest])
    return argv[argv.index("push") :], {fc.path: fc.content for fc in contents}


def _flag_value(argv: List[str], flag: str) -> str:
    assert argv.count(flag) == 1, argv
    return argv[argv.index(flag) + 1]


def test_a_relative_ca_cert_is_in_the_push_sandbox() -> None:
    argv, files = _push(_runner("certs/ca.pem"))
    assert _flag_value(argv, "--ca-cert") == "certs/ca.pem"
    assert files["certs/ca.pem"] == CA_PEM
    assert _flag_value(argv, "--layout") + "/index.json" in files
    assert _flag_value(argv, "--registry") == "registry.ci.internal:5000"
    assert Path(_flag_value(argv, "--record")).is_absolute()  # written in the workspace


def test_an_absolute_ca_cert_is_passed_as_is(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(CA_PEM)
    argv, files = _push(_runner(str(ca)))
    assert _flag_value(argv, "--ca-cert") == str(ca)
    assert not [path for path in files if path.endswith(".pem")]


def test_the_registry_deadlines_reach_the_push() -> None:
    argv, _ = _push(_runner("certs/ca.pem"))
    assert _flag_value(argv, "--timeout") == "60.0"
    assert _flag_value(argv, "--min-throughput") == str(64 * 1024)
    options = ("--hostprocess-registry-timeout=7.5", "--hostprocess-registry-min-throughput=8")
    argv, _ = _push(_runner("certs/ca.pem", *options))
    assert _flag_value(argv, "--timeout") == "7.5"
    assert _flag_value(argv, "--min-throughput") == str(8 * 1024)


def test_each_tag_is_its_own_publish_step_and_later_ones_follow_the_first() -> None:
    """So that Pants' summary says exactly which tags moved (see `oci/cli.py`'s `push`)."""
    registries = (
        "{'ci': {'address': 'registry.ci.internal:5000', 'default': True}, "
        "'backup': {'address': 'backup.example', 'default': True}}"
    )
    rule_runner = make_rule_runner(
        f"--hostprocess-registries={registries}",
        query_rules=(QueryRule(PublishProcesses, [PublishHostProcessImageRequest]),),
    )
    rule_runner.write_files(
        {
            "apps/agent/BUILD": agent_build('image_tags=["v1", "latest"],'),
            "apps/agent/start.ps1": START_SCRIPT,
        }
    )
    field_set = PublishHostProcessImageFieldSet.create(rule_runner.get_target(IMAGE))
    jobs = rule_runner.request(PublishProcesses, [PublishHostProcessImageRequest(field_set, ())])
    steps = []
    for job in jobs:
        assert job.process is not None
        argv = list(job.process.process.argv)
        argv = argv[argv.index("push") :]
        registry = _flag_value(argv, "--registry")
        assert (
            _flag_value(argv, "--failure-marker")
            == _flag_value(argv, "--record")[: -len(".publish.json")]
            + f".{registry.replace(':', '-')}.push-failed"
        )
        steps.append((job.names, registry, _flag_value(argv, "--tag"), "--follows" in argv))
    ci, backup = "registry.ci.internal:5000", "backup.example"
    assert steps == [  # the registries in their aliases' order, each first tag first
        ((f"{backup}/windows/agent:v1",), backup, "v1", False),
        ((f"{backup}/windows/agent:latest",), backup, "latest", True),
        ((f"{ci}/windows/agent:v1",), ci, "v1", False),
        ((f"{ci}/windows/agent:latest",), ci, "latest", True),
    ]
