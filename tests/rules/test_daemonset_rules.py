"""`hostprocess_daemonset` through the real rules: package, field errors, publish.

The image is built by the real package rule (tool PEX, layer processes) in the same run,
so the digest a manifest pins is checked against the image's own `image.json` and OCI
layout index; every written manifest is checked against the Kubernetes schemas by
kubernetes-validate; the publish test pushes to a real `docker-registry` on loopback and
asks skopeo for the pinned reference.
"""
from __future__ import annotations

import json
import os
from textwrap import dedent

import pytest
from pants.core.goals.package import BuiltPackage
from pants.core.goals.publish import PublishProcesses
from pants.engine.addresses import Address
from pants.engine.fs import DigestContents
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.process import InteractiveProcess
from pants.testutil.rule_runner import QueryRule, RuleRunner, mock_console

from deploy.kube_schema import assert_valid_yaml
from hostprocess.goals.publish_daemonset import (
    PublishHostProcessDaemonSetFieldSet,
    PublishHostProcessDaemonSetRequest,
)
from hostprocess.util_rules.daemonset import HostProcessDaemonSetFieldSet
from hostprocess.util_rules.image import HostProcessImageFieldSet
from rules.agent_project import START_SCRIPT, agent_build
from rules.test_package_rules import make_rule_runner

pytest.register_assert_rewrite("oci.registry_servers")
from oci.registry_servers import RegistryServer, skopeo_output  # noqa: E402

pytest_plugins = ["oci.registry_servers"]

QUERIES = (
    QueryRule(BuiltPackage, [HostProcessDaemonSetFieldSet]),
    QueryRule(PublishProcesses, [PublishHostProcessDaemonSetRequest]),
)
REGISTRIES = "{'company': {'address': 'registry.example.com', 'default': True}, 'mirror': {'address': 'mirror.example.org:5000'}}"
DAEMONSET = Address("apps/agent", target_name="agent-daemonset")
OUTPUT = "apps.agent/agent-daemonset.yaml"


def runner(registries: str = REGISTRIES) -> RuleRunner:
    return make_rule_runner(f"--hostprocess-registries={registries}", query_rules=QUERIES)


def write_project(
    rule_runner: RuleRunner,
    daemonset: str,
    *,
    image_registries: str = "",
    files: dict[str, str] | None = None,
) -> None:
    rule_runner.write_files(
        {
            "apps/agent/BUILD": agent_build(image_registries) + dedent(daemonset),
            "apps/agent/start.ps1": START_SCRIPT,
            **(files or {}),
        }
    )


def package_daemonset(rule_runner: RuleRunner, address: Address = DAEMONSET) -> dict[str, bytes]:
    field_set = HostProcessDaemonSetFieldSet.create(rule_runner.get_target(address))
    built = rule_runner.request(BuiltPackage, [field_set])
    contents = rule_runner.request(DigestContents, [built.digest])
    assert sorted(a.relpath or "" for a in built.artifacts) == sorted(fc.path for fc in contents)
    return {fc.path: fc.content for fc in contents}


def built_image_digest(rule_runner: RuleRunner) -> str:
    """The image's digest, read from the files its own package rule writes."""
    target = rule_runner.get_target(Address("apps/agent", target_name="agent"))
    built = rule_runner.request(BuiltPackage, [HostProcessImageFieldSet.create(target)])
    files = {fc.path: fc.content for fc in rule_runner.request(DigestContents, [built.digest])}
    digest = json.loads(files["apps.agent/agent.image.json"])["digest"]
    index = json.loads(files["apps.agent/agent/index.json"])
    assert {m["digest"] for m in index["manifests"]} == {digest}
    return digest


def container_image(manifest: dict) -> str:
    [container] = manifest["spec"]["template"]["spec"]["containers"]
    return container["image"]


FULL_DAEMONSET = """
hostprocess_daemonset(
    name="agent-daemonset",
    image=":agent",
    resource_name="agent",
    namespace="kube-system",
    labels={"app.kubernetes.io/part-of": "nodes"},
    node_selector={"node.example.com/pool": "edge"},
    run_as_user_name="NT AUTHORITY\\\\NetworkService",
    tolerations=[{"key": "os", "value": "windows", "effect": "NoSchedule"}],
    max_unavailable="1",
    resources={"requests": {"cpu": "100m"}},
    env={"LOG_LEVEL": "debug"},
    args=["-Verbose"],
    volumes=[{"name": "logs", "hostPath": {"path": "C:\\\\logs"}}],
    volume_mounts=[{"name": "logs", "mountPath": "C:\\\\logs"}],
    service_account="agent",
    priority_class="system-node-critical",
    template="deploy/template.yaml",
    registry="@company",
)
"""
TEMPLATE = "metadata:\n  annotations: {org.example/owner: nodes}\nspec:\n  template:\n    spec:\n      dnsPolicy: ClusterFirstWithHostNet\n"


def test_manifest_pins_the_digest_built_in_the_same_run() -> None:
    rule_runner = runner()
    write_project(rule_runner, FULL_DAEMONSET, files={"apps/agent/deploy/template.yaml": TEMPLATE})
    files = package_daemonset(rule_runner)
    assert list(files) == [OUTPUT]
    manifest = assert_valid_yaml(files[OUTPUT])
    digest = built_image_digest(rule_runner)
    assert container_image(manifest) == f"registry.example.com/windows/agent@{digest}"
    pod = manifest["spec"]["template"]["spec"]
    assert pod["securityContext"]["windowsOptions"] == {
        "hostProcess": True,
        "runAsUserName": "NT AUTHORITY\\NetworkService",
    }
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["nodeSelector"] == {
        "node.example.com/pool": "edge",
        "kubernetes.io/os": "windows",
        "kubernetes.io/arch": "amd64",
    }
    assert manifest["metadata"]["annotations"] == {"org.example/owner": "nodes"}
    assert files[OUTPUT].startswith(
        b"# Written by `pants package apps/agent:agent-daemonset`: do not edit.\n"
    )

    # Same inputs, same bytes; a one-script change gives a new digest, and the manifest pins it.
    assert package_daemonset(rule_runner) == files
    rule_runner.write_files({"apps/agent/start.ps1": "Write-Output 'agent v2 started'\r\n"})
    changed = assert_valid_yaml(package_daemonset(rule_runner)[OUTPUT])
    new_digest = built_image_digest(rule_runner)
    assert new_digest != digest
    assert container_image(changed) == f"registry.example.com/windows/agent@{new_digest}"


def test_one_manifest_per_registry_of_the_image() -> None:
    rule_runner = runner()
    write_project(
        rule_runner,
        'hostprocess_daemonset(name="agent-daemonset", image=":agent")',
        image_registries='registries=["@company", "@mirror"],',
    )
    files = package_daemonset(rule_runner)
    digest = built_image_digest(rule_runner)
    assert sorted(files) == [
        "apps.agent/agent-daemonset.company.yaml",
        "apps.agent/agent-daemonset.mirror.yaml",
    ]
    assert (
        container_image(assert_valid_yaml(files["apps.agent/agent-daemonset.company.yaml"]))
        == f"registry.example.com/windows/agent@{digest}"
    )
    assert (
        container_image(assert_valid_yaml(files["apps.agent/agent-daemonset.mirror.yaml"]))
        == f"mirror.example.org:5000/windows/agent@{digest}"
    )


def package_error(rule_runner: RuleRunner) -> str:
    with pytest.raises(ExecutionError) as e:
        package_daemonset(rule_runner)
    return str(e.value)


def test_an_image_without_a_registry_is_refused_with_the_fix() -> None:
    rule_runner = runner("{}")
    write_project(rule_runner, 'hostprocess_daemonset(name="agent-daemonset", image=":agent")')
    error = package_error(rule_runner)
    assert (
        "The `hostprocess_daemonset` target apps/agent:agent-daemonset pins the image apps/agent:agent"
        in error
    )
    assert 'Set `registries=["registry.example.com"]` on apps/agent:agent' in error
    assert "[hostprocess] registries = " in error


def test_a_registry_the_image_is_not_published_to_is_refused() -> None:
    rule_runner = runner()
    write_project(
        rule_runner,
        'hostprocess_daemonset(name="agent-daemonset", image=":agent", registry="@mirror")',
    )
    error = package_error(rule_runner)
    assert (
        "The `registry` field of the `hostprocess_daemonset` target apps/agent:agent-daemonset is '@mirror'"
        in error
    )
    assert (
        "(registry.example.com): choose one of them, or add it to the image's `registries`" in error
    )


@pytest.mark.parametrize(
    "daemonset, files, fragments",
    [
        (
            'hostprocess_daemonset(name="agent-daemonset", image=":scripts")',
            {},
            ["names apps/agent:scripts, which is a `files` target: name a `hostprocess_image`"],
        ),
        (
            'hostprocess_daemonset(name="agent-daemonset", image=":agent", node_selector={"kubernetes.io/os": "linux"})',
            {},
            ["apps/agent:agent-daemonset", "`node_selector` sets kubernetes.io/os=linux"],
        ),
        (
            'hostprocess_daemonset(name="agent-daemonset", image=":agent", template="t.yaml")',
            {"apps/agent/t.yaml": "spec:\n  template:\n    spec:\n      hostNetwork: false\n"},
            [
                "apps/agent:agent-daemonset",
                "The template apps/agent/t.yaml cannot be used",
                "hostNetwork: False`: HostProcess pods must use the node's network",
            ],
        ),
        (
            'hostprocess_daemonset(name="agent-daemonset", image=":agent", template="t.yaml")',
            {"apps/agent/t.yaml": "spec: [\n"},
            [
                "The `template` of the `hostprocess_daemonset` target apps/agent:agent-daemonset",
                "apps/agent/t.yaml is not valid YAML",
            ],
        ),
        (
            'hostprocess_daemonset(name="agent-daemonset", image=":agent", volume_mounts=[{"name": "data", "mountPath": "C:\\\\data"}])',
            {},
            ["mounts the volume 'data', which neither `volumes` nor the template defines"],
        ),
    ],
)
def test_problems_found_while_packaging_name_the_target(
    daemonset: str, files: dict[str, str], fragments: list[str]
) -> None:
    rule_runner = runner()
    write_project(rule_runner, daemonset, files=files)
    error = package_error(rule_runner)
    for fragment in fragments:
        assert fragment in error, error


@pytest.mark.parametrize(
    "field, value, fix",
    [
        (
            "run_as_user_name",
            '"CONTOSO\\\\agent"',
            "is a domain or local user account, which HostProcess containers cannot run as",
        ),
        (
            "run_as_user_name",
            '"agents@contoso"',
            "is not a valid local group name (it contains '@')",
        ),
        ("namespace", '"Kube-System"', "an RFC 1123 label"),
        ("resource_name", '"Agent"', "an RFC 1123 subdomain"),
        ("labels", '{"app": "-x"}', "the value '-x' of label 'app' is invalid"),
        ("selector", '{"app/": "x"}', "the label key 'app/' is invalid"),
        (
            "node_selector",
            '{"pool": "edge pool"}',
            "the value 'edge pool' of label 'pool' is invalid",
        ),
        ("tolerations", '[{"key": "os", "operator": "In"}]', "use Exists or Equal"),
        ("tolerations", '{"key": "os"}', "use a list of dicts"),
        ("resources", '{"limits": {"memory": "1GB"}}', "is not a Kubernetes quantity"),
        ("max_unavailable", '"ten"', "a percentage of nodes"),
        ("volumes", '[{"hostPath": {"path": "C:\\\\x"}}]', "each volume is a dict with a `name`"),
        ("volume_mounts", '[{"name": "logs"}]', "the volume mount 'logs' lacks `mountPath`"),
        ("service_account", '"Agent_SA"', "an RFC 1123 subdomain"),
        ("priority_class", '"Critical"', "an RFC 1123 subdomain"),
    ],
)
def test_invalid_fields_are_refused_when_the_build_file_is_read(
    field: str, value: str, fix: str
) -> None:
    rule_runner = runner()
    write_project(
        rule_runner,
        f'hostprocess_daemonset(name="agent-daemonset", image=":agent", {field}={value})',
    )
    with pytest.raises(ExecutionError) as e:
        rule_runner.get_target(DAEMONSET)
    error = str(e.value)
    assert (
        f"The `{field}` field of the `hostprocess_daemonset` target apps/agent:agent-daemonset has the invalid value"
        in error
    ), error
    assert fix in error, error


def test_an_invalid_target_name_needs_a_resource_name() -> None:
    rule_runner = runner()
    write_project(rule_runner, 'hostprocess_daemonset(name="agent_daemonset", image=":agent")')
    with pytest.raises(ExecutionError) as e:
        rule_runner.get_target(Address("apps/agent", target_name="agent_daemonset"))
    assert (
        "unset, it is the target name, which is not a valid Kubernetes name: set `resource_name`"
        in str(e.value)
    )


def run_interactive(rule_runner: RuleRunner, process: InteractiveProcess) -> tuple[int, str]:
    """The exit code and output of a publish step, run as the publish goal runs it."""
    with mock_console(rule_runner.options_bootstrapper) as (_, stdio):
        result = rule_runner.run_interactive_process(process)
        return result.exit_code, stdio.get_stdout() + stdio.get_stderr()


def test_publish_pushes_the_image_then_writes_the_manifest(
    anonymous_registry: RegistryServer,
) -> None:
    rule_runner = runner(f"{{'ci': {{'address': '{anonymous_registry.host}', 'default': True}}}}")
    write_project(rule_runner, 'hostprocess_daemonset(name="agent-daemonset", image=":agent")')
    field_set = PublishHostProcessDaemonSetFieldSet.create(rule_runner.get_target(DAEMONSET))
    jobs = rule_runner.request(
        PublishProcesses, [PublishHostProcessDaemonSetRequest(field_set, ())]
    )
    digest = built_image_digest(rule_runner)
    reference = f"{anonymous_registry.host}/windows/agent@{digest}"
    push, write = jobs
    assert push.names == (f"{anonymous_registry.host}/windows/agent:latest",)
    assert write.names == (f"dist/{OUTPUT}",)
    assert write.description == f"dist/ as a manifest pinning {reference}"
    assert dict(write.data) == {"manifest": f"dist/{OUTPUT}", "image": reference, "digest": digest}
    assert push.process and write.process
    written = rule_runner.build_root + f"/dist/{OUTPUT}"

    # Before the push the record does not show the digest: the manifest is not written.
    code, output = run_interactive(rule_runner, write.process)
    assert (
        code == 1
        and f"does not show {reference} as pushed (its push failed or did not run)" in output
    ), output
    assert not os.path.exists(written)

    code, output = run_interactive(rule_runner, push.process)
    assert code == 0, output
    code, output = run_interactive(rule_runner, write.process)
    assert (code, output) == (0, f"Wrote {written}, pinning {reference}\n")
    assert sorted(os.listdir(os.path.dirname(written))) == [
        "agent-daemonset.yaml",
        "agent.publish.json",
    ]  # no partial file left
    with open(written, "rb") as f:
        content = f.read()
    assert container_image(assert_valid_yaml(content)) == reference
    assert content == package_daemonset(rule_runner)[OUTPUT]
    # The registry serves exactly that digest under the pinned reference (skopeo, not our client).
    assert json.loads(skopeo_output(reference))["Digest"] == digest


def test_publish_of_a_skip_push_image_writes_nothing() -> None:
    rule_runner = runner()
    write_project(
        rule_runner,
        'hostprocess_daemonset(name="agent-daemonset", image=":agent")',
        image_registries="skip_push=True,",
    )
    field_set = PublishHostProcessDaemonSetFieldSet.create(rule_runner.get_target(DAEMONSET))
    [job] = rule_runner.request(
        PublishProcesses, [PublishHostProcessDaemonSetRequest(field_set, ())]
    )
    assert job.process is None and job.names == (f"dist/{OUTPUT}",)
    assert "its image apps/agent:agent has `skip_push=True`" in (job.description or "")
