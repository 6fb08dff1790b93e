"""`hostprocess_image` publish through the real rules: what the push process is given.

A registry's `ca_cert` reaches the push as the pull gets it: the path as configured, with
a relative file put at that path in the process's sandbox (never joined to the build root).
The request deadlines of `[hostprocess]` reach it as flags.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import pytest
from pants.core.goals.publish import PublishProcesses
from pants.engine.addresses import Address
from pants.engine.fs import DigestContents
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import QueryRule, RuleRunner

from hostprocess.goals.publish import (
    PublishHostProcessImageFieldSet,
    PublishHostProcessImageRequest,
)
from rules.agent_project import START_SCRIPT, agent_build
from rules.rule_runners import wrapped_error
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
    rule_runner = _two_registries(registries, "")
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


def _signing_runner(image_fields: str, *options: str) -> RuleRunner:
    """ci without a key of its own, prod with one."""
    registries = (
        "{'ci': {'address': 'registry.ci.internal:5000', 'default': True}, "
        "'prod': {'address': 'prod.example', 'default': True, 'signing_key': 'keys/prod.pem'}}"
    )
    return _two_registries(registries, image_fields, *options)


def _two_registries(registries: str, image_fields: str, *options: str) -> RuleRunner:
    """The agent image, tagged v1 and latest, with `image_fields`, pushed to `registries`."""
    rule_runner = make_rule_runner(
        f"--hostprocess-registries={registries}",
        *options,
        query_rules=(QueryRule(PublishProcesses, [PublishHostProcessImageRequest]),),
    )
    rule_runner.write_files(
        {
            "apps/agent/BUILD": agent_build(f'image_tags=["v1", "latest"], {image_fields}'),
            "apps/agent/start.ps1": START_SCRIPT,
            "keys/signing.pem": "a private key the rules never read",
        }
    )
    return rule_runner


def _steps(rule_runner: RuleRunner) -> list[tuple[list[str], dict[str, bytes], dict[str, str]]]:
    """Each push step's argv (from `push`), sandbox files and environment."""
    field_set = PublishHostProcessImageFieldSet.create(rule_runner.get_target(IMAGE))
    jobs = rule_runner.request(PublishProcesses, [PublishHostProcessImageRequest(field_set, ())])
    steps = []
    for job in jobs:
        assert job.process is not None
        process = job.process.process
        argv = list(process.argv)
        contents = rule_runner.request(DigestContents, [process.input_digest])
        files = {fc.path: fc.content for fc in contents}
        steps.append((argv[argv.index("push") :], files, dict(process.env)))
    return steps


def test_the_first_step_of_each_registry_attaches_the_documents_and_signs() -> None:
    """The key goes to the push as an absolute path (never into a sandbox); each registry's
    own `signing_key` overrides `[hostprocess].signing_key`; later tags only move."""
    rule_runner = _signing_runner(
        "",
        "--hostprocess-signing-key=keys/signing.pem",
        "--hostprocess-signing-key-password-env=HOSTPROCESS_TEST_KEY_PASSWORD",
    )
    steps = _steps(rule_runner)
    keys = {}
    for argv, files, env in steps:
        registry = _flag_value(argv, "--registry")
        assert not [path for path in files if path.endswith(".pem")], files
        if "--follows" in argv:
            assert not {"--attach", "--signing-key", "--public-key-out"} & set(argv), argv
            continue
        attached = [argv[i + 1] for i, flag in enumerate(argv) if flag == "--attach"]
        assert attached == [
            "spdx=documents/agent.spdx.json",
            "provenance=documents/agent.provenance.json",
        ]
        for spec in attached:
            assert spec.split("=", 1)[1] in files
        keys[registry] = _flag_value(argv, "--signing-key")
        assert _flag_value(argv, "--signing-key-password-env") == "HOSTPROCESS_TEST_KEY_PASSWORD"
        assert _flag_value(argv, "--public-key-out").endswith(
            f"agent.{registry.replace(':', '-')}.pub"
        )
    build_root = rule_runner.build_root
    assert keys == {
        "registry.ci.internal:5000": f"{build_root}/keys/signing.pem",
        "prod.example": f"{build_root}/keys/prod.pem",
    }


def _signed_registries(rule_runner: RuleRunner) -> list[str]:
    return [
        _flag_value(argv, "--registry")
        for argv, _, _ in _steps(rule_runner)
        if "--signing-key" in argv
    ]


def test_sign_false_never_signs() -> None:
    rule_runner = _signing_runner("sign=False,", "--hostprocess-signing-key=keys/signing.pem")
    assert _signed_registries(rule_runner) == []


def test_without_sign_only_registries_with_a_key_sign() -> None:
    """No `[hostprocess].signing_key`: prod still signs with its own key, ci does not."""
    assert _signed_registries(_signing_runner("")) == ["prod.example"]


def test_sign_true_without_a_key_fails_naming_the_target_and_registry() -> None:
    rule_runner = _signing_runner("sign=True,")
    with pytest.raises(ExecutionError) as error:
        _steps(rule_runner)
    message = str(wrapped_error(error.value))
    assert "apps/agent:agent" in message and "sign=True" in message
    assert "registry.ci.internal:5000" in message and "signing_key" in message
