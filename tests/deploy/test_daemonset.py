"""The pure DaemonSet core: HostProcess settings, fields, template merging and refusals.

Every written manifest is checked against the Kubernetes schemas of several releases by
kubernetes-validate (strict), not only against our own expectations.
"""
from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from deploy.kube_schema import KUBERNETES_VERSIONS, assert_valid_yaml, schema_problems
from hostprocess.deploy.daemonset import DaemonSetSpec, ManifestError, build, render
from hostprocess.deploy.template import TemplateError, load_template

DIGEST = "sha256:" + "ab" * 32
IMAGE = f"registry.example.com/windows/agent@{DIGEST}"


def spec(**overrides: Any) -> DaemonSetSpec:
    fields: dict[str, Any] = dict(
        name="agent",
        container_name="agent",
        architecture="amd64",
        run_as_user_name="NT AUTHORITY\\SYSTEM",
    )
    fields.update(overrides)
    return DaemonSetSpec(**fields)


FULL: dict[str, Any] = dict(
    namespace="kube-system",
    labels={"app.kubernetes.io/part-of": "nodes"},
    selector={"app": "agent"},
    node_selector={"node.example.com/pool": "edge"},
    run_as_user_name="NT AUTHORITY\\Local service",
    tolerations=({"key": "os", "operator": "Equal", "value": "windows", "effect": "NoSchedule"},),
    update_strategy="RollingUpdate",
    max_unavailable="25%",
    resources={"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
    env={"LOG_LEVEL": "debug", "LOG_DIR": "C:\\logs"},
    args=("-Verbose",),
    volumes=({"name": "logs", "hostPath": {"path": "C:\\logs", "type": "DirectoryOrCreate"}},),
    volume_mounts=({"name": "logs", "mountPath": "C:\\logs"},),
    service_account="agent",
    priority_class="system-node-critical",
)


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest["spec"]["template"]["spec"]


def written(manifest: dict[str, Any]) -> dict[str, Any]:
    """`manifest` rendered to YAML, parsed back and checked against the schemas."""
    return assert_valid_yaml(render(manifest, "header"))


def test_minimal_daemonset_is_a_valid_hostprocess_daemonset() -> None:
    manifest = written(build(spec(), IMAGE))
    pod = pod_spec(manifest)
    assert (manifest["apiVersion"], manifest["kind"], manifest["metadata"]) == (
        "apps/v1",
        "DaemonSet",
        {"name": "agent", "labels": {"app.kubernetes.io/name": "agent"}},
    )
    assert pod["securityContext"] == {
        "windowsOptions": {"hostProcess": True, "runAsUserName": "NT AUTHORITY\\SYSTEM"}
    }
    assert pod["hostNetwork"] is True
    assert pod["os"] == {"name": "windows"}
    assert pod["nodeSelector"] == {"kubernetes.io/os": "windows", "kubernetes.io/arch": "amd64"}
    assert pod["containers"] == [{"name": "agent", "image": IMAGE}]
    assert manifest["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "agent"}}
    assert manifest["spec"]["template"]["metadata"]["labels"] == {"app.kubernetes.io/name": "agent"}
    assert manifest["spec"]["updateStrategy"] == {"type": "RollingUpdate"}


def test_every_field_lands_where_kubernetes_reads_it() -> None:
    manifest = written(build(spec(**FULL, architecture="arm64"), IMAGE))
    pod = pod_spec(manifest)
    [container] = pod["containers"]
    labels = {"app.kubernetes.io/part-of": "nodes", "app": "agent"}
    assert manifest["metadata"] == {"name": "agent", "namespace": "kube-system", "labels": labels}
    assert manifest["spec"]["selector"] == {"matchLabels": {"app": "agent"}}
    assert manifest["spec"]["template"]["metadata"]["labels"] == labels
    assert manifest["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%"},
    }
    assert (
        pod["securityContext"]["windowsOptions"]["runAsUserName"] == "NT AUTHORITY\\Local service"
    )
    assert pod["nodeSelector"] == {
        "node.example.com/pool": "edge",
        "kubernetes.io/os": "windows",
        "kubernetes.io/arch": "arm64",
    }
    assert pod["tolerations"] == [
        {"key": "os", "operator": "Equal", "value": "windows", "effect": "NoSchedule"}
    ]
    assert (
        pod["serviceAccountName"] == "agent" and pod["priorityClassName"] == "system-node-critical"
    )
    assert pod["volumes"] == [
        {"name": "logs", "hostPath": {"path": "C:\\logs", "type": "DirectoryOrCreate"}}
    ]
    assert container == {
        "name": "agent",
        "image": IMAGE,
        "args": ["-Verbose"],
        "env": [{"name": "LOG_LEVEL", "value": "debug"}, {"name": "LOG_DIR", "value": "C:\\logs"}],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        "volumeMounts": [{"name": "logs", "mountPath": "C:\\logs"}],
    }


def test_on_delete_and_a_count_of_unavailable_pods() -> None:
    assert written(build(spec(update_strategy="OnDelete"), IMAGE))["spec"]["updateStrategy"] == {
        "type": "OnDelete"
    }
    rolling = written(build(spec(max_unavailable=2), IMAGE))["spec"]["updateStrategy"]
    assert rolling["rollingUpdate"] == {"maxUnavailable": 2}


def test_the_validator_refuses_a_misspelt_or_mistyped_field() -> None:
    """The schema check can fail: strict validation catches what the API server would."""
    manifest = build(spec(), IMAGE)
    misspelt = copy.deepcopy(manifest)
    pod_spec(misspelt)["hostNetwrk"] = True
    mistyped = copy.deepcopy(manifest)
    pod_spec(mistyped)["securityContext"]["windowsOptions"]["hostProcess"] = "yes"
    for broken, words in (
        (misspelt, "'hostNetwrk' was unexpected"),
        (mistyped, "'yes' is not of type"),
    ):
        problems = schema_problems(broken)
        assert len(problems) == len(KUBERNETES_VERSIONS), problems
        assert all(words in p for p in problems), problems


TEMPLATE = """
metadata:
  annotations: {org.example/owner: node-team}
  labels: {app.kubernetes.io/name: something-else}
spec:
  revisionHistoryLimit: 5
  updateStrategy: {type: OnDelete}
  template:
    metadata:
      annotations: {org.example/scrape: "true"}
    spec:
      dnsPolicy: ClusterFirstWithHostNet
      hostNetwork: true
      nodeSelector: {kubernetes.io/os: windows, node.example.com/tier: system}
      tolerations:
        - {key: node.kubernetes.io/unschedulable, operator: Exists, effect: NoSchedule}
      volumes:
        - {name: logs, emptyDir: {}}
        - {name: certs, hostPath: {path: 'C:\\certs'}}
      containers:
        - name: log-shipper
          image: registry.example.com/windows/shipper@sha256:%s
          volumeMounts: [{name: logs, mountPath: 'C:\\logs'}]
        - name: agent
          env: [{name: LOG_LEVEL, value: info}, {name: REGION, value: eu}]
          livenessProbe:
            exec: {command: [powershell.exe, -Command, exit 0]}
            periodSeconds: 30
""" % (
    "cd" * 32
)


def test_template_is_merged_under_the_generated_manifest() -> None:
    template = load_template(TEMPLATE.encode(), "deploy/template.yaml")
    manifest = written(build(spec(**FULL), IMAGE, template, "deploy/template.yaml"))
    pod = pod_spec(manifest)
    # The template's own settings are kept...
    assert manifest["metadata"]["annotations"] == {"org.example/owner": "node-team"}
    assert manifest["spec"]["revisionHistoryLimit"] == 5
    assert manifest["spec"]["template"]["metadata"]["annotations"] == {"org.example/scrape": "true"}
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    # ...the target's values win...
    assert manifest["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    # (`app.kubernetes.io/name` is not a selector label here)
    assert manifest["metadata"]["labels"]["app.kubernetes.io/name"] == "something-else"
    assert manifest["spec"]["selector"] == {"matchLabels": {"app": "agent"}}
    # ...maps merge, tolerations add up, named lists merge by name in the template's order.
    assert pod["nodeSelector"] == {
        "kubernetes.io/os": "windows",
        "node.example.com/tier": "system",
        "node.example.com/pool": "edge",
        "kubernetes.io/arch": "amd64",
    }
    assert [t["key"] for t in pod["tolerations"]] == ["node.kubernetes.io/unschedulable", "os"]
    assert [v["name"] for v in pod["volumes"]] == ["logs", "certs"]
    assert pod["volumes"][0] == FULL["volumes"][0]  # ours replaces the template's `logs` whole
    shipper, agent = pod["containers"]
    assert shipper["name"] == "log-shipper" and agent["image"] == IMAGE
    assert agent["env"] == [
        {"name": "LOG_LEVEL", "value": "debug"},
        {"name": "REGION", "value": "eu"},
        {"name": "LOG_DIR", "value": "C:\\logs"},
    ]
    assert agent["livenessProbe"]["periodSeconds"] == 30
    assert pod["securityContext"]["windowsOptions"] == {
        "hostProcess": True,
        "runAsUserName": "NT AUTHORITY\\Local service",
    }


def test_same_inputs_give_the_same_bytes_whatever_the_order() -> None:
    template = load_template(TEMPLATE.encode(), "t.yaml")
    first = render(build(spec(**FULL), IMAGE, template, "t.yaml"), "Written by a test")
    reordered_full = {
        k: (dict(reversed(list(v.items()))) if isinstance(v, dict) and k != "env" else v)
        for k, v in FULL.items()
    }
    reordered_template = yaml.safe_load(yaml.safe_dump(template, sort_keys=False))
    reordered_template = dict(reversed(list(reordered_template.items())))
    second = render(
        build(spec(**reordered_full), IMAGE, reordered_template, "t.yaml"), "Written by a test"
    )
    assert first == second
    assert first.startswith(b"# Written by a test\napiVersion: apps/v1\nkind: DaemonSet\n")
    assert b"&id" not in first and b"*id" not in first  # no YAML aliases for the shared labels


@pytest.mark.parametrize(
    "template, error",
    [
        ("kind: Deployment", "`kind: Deployment`: this target writes a apps/v1 DaemonSet"),
        ("apiVersion: extensions/v1beta1", "`apiVersion: extensions/v1beta1`"),
        (
            "spec: {template: {spec: {hostNetwork: false}}}",
            "hostNetwork: False`: HostProcess pods must use the node's network",
        ),
        (
            "spec: {template: {spec: {hostPID: true}}}",
            "`spec.template.spec.hostPID: true`: Windows pods cannot share",
        ),
        (
            "spec: {template: {spec: {os: {name: linux}}}}",
            "`spec.template.spec.os.name: linux`: HostProcess pods run on Windows",
        ),
        (
            "spec: {template: {spec: {nodeSelector: {kubernetes.io/os: linux}}}}",
            "nodeSelector.kubernetes.io/os: linux`: this image runs on windows nodes only",
        ),
        (
            "spec: {template: {spec: {nodeSelector: {kubernetes.io/arch: arm64}}}}",
            "nodeSelector.kubernetes.io/arch: arm64`: this image runs on amd64 nodes only",
        ),
        (
            "spec: {template: {spec: {securityContext: {windowsOptions: {hostProcess: false}}}}}",
            "securityContext.windowsOptions.hostProcess: False`: every container of a HostProcess pod must be a HostProcess container",
        ),
        (
            "spec: {template: {spec: {containers: [{name: sidecar, image: 'x@sha256:00', securityContext: {windowsOptions: {hostProcess: false}}}]}}}",
            "`spec.template.spec.containers[sidecar].securityContext.windowsOptions.hostProcess: False`: every container",
        ),
        (
            "spec: {template: {spec: {initContainers: [{name: init, securityContext: {windowsOptions: {hostProcess: false}}}]}}}",
            "`spec.template.spec.initContainers[init].securityContext.windowsOptions.hostProcess: False`",
        ),
        (
            "spec: {template: {spec: {containers: [{name: agent, image: 'windows/agent:latest'}]}}}",
            "containers[agent].image`: the image is pinned to the digest this build produced",
        ),
        (
            "spec: {template: {spec: {containers: [{name: agent, securityContext: {privileged: true}}]}}}",
            "containers[agent].securityContext.privileged`: a Linux-only setting",
        ),
        (
            "spec: {template: {spec: {securityContext: {runAsUser: 0}}}}",
            "securityContext.runAsUser`: a Linux-only setting",
        ),
        (
            "spec: {template: {spec: {securityContext: {windowsOptions: {runAsUserName: 'CONTOSO\\svc-agent'}}}}}",
            "is a domain or local user account, which HostProcess containers cannot run as",
        ),
        (
            "spec: {template: {spec: {securityContext: {windowsOptions: {runAsUserName: 'NT AUTHORITY\\NetworkService'}}}}}",
            "runAsUserName: NT AUTHORITY\\NetworkService` differs from the target's `run_as_user_name` (NT AUTHORITY\\SYSTEM)",
        ),
    ],
)
def test_template_settings_that_break_hostprocess_are_refused(template: str, error: str) -> None:
    with pytest.raises(TemplateError) as e:
        build(spec(), IMAGE, load_template(template.encode(), "deploy/t.yaml"), "deploy/t.yaml")
    assert "The template deploy/t.yaml cannot be used for a HostProcess DaemonSet:" in str(e.value)
    assert error in str(e.value)


def test_every_template_problem_is_reported_at_once() -> None:
    template = "spec: {template: {spec: {hostNetwork: false, hostIPC: true, os: {name: linux}}}}"
    with pytest.raises(TemplateError) as e:
        build(spec(), IMAGE, load_template(template.encode(), "t.yaml"), "t.yaml")
    assert str(e.value).count("\n  - ") == 3


def test_a_template_that_sets_what_hostprocess_needs_is_accepted() -> None:
    template = """
    spec: {template: {spec: {hostNetwork: true, os: {name: windows}, nodeSelector: {kubernetes.io/os: windows},
      securityContext: {windowsOptions: {hostProcess: true, runAsUserName: 'nt authority\\system'}}}}}
    """
    written(build(spec(), IMAGE, load_template(template.encode(), "t.yaml"), "t.yaml"))


@pytest.mark.parametrize(
    "text, error",
    [
        (b"spec: [unclosed", "t.yaml is not valid YAML"),
        (b"- a list\n", "t.yaml must hold exactly one YAML document, a mapping"),
        (b"spec: {}\n---\nspec: {}\n", "(found 2 documents)"),
        (b"", "(found 0 documents)"),
    ],
)
def test_unreadable_templates_are_refused(text: bytes, error: str) -> None:
    with pytest.raises(TemplateError) as e:
        load_template(text, "t.yaml")
    assert error in str(e.value)


@pytest.mark.parametrize(
    "overrides, error",
    [
        (
            {"node_selector": {"kubernetes.io/os": "linux"}},
            "`node_selector` sets kubernetes.io/os=linux, but a HostProcess image for amd64 runs only where kubernetes.io/os=windows",
        ),
        (
            {"node_selector": {"kubernetes.io/arch": "arm64"}},
            "`node_selector` sets kubernetes.io/arch=arm64",
        ),
        (
            {"labels": {"app.kubernetes.io/name": "other"}},
            "`labels` sets app.kubernetes.io/name=other, but the `selector` needs app.kubernetes.io/name=agent",
        ),
        (
            {"update_strategy": "OnDelete", "max_unavailable": 1},
            "`max_unavailable` applies to the RollingUpdate strategy only",
        ),
        (
            {"volume_mounts": ({"name": "data", "mountPath": "C:\\data"},)},
            "mounts the volume 'data', which neither `volumes` nor the template defines",
        ),
    ],
)
def test_contradicting_fields_are_refused(overrides: dict[str, Any], error: str) -> None:
    with pytest.raises(ManifestError) as e:
        build(spec(**overrides), IMAGE)
    assert error in str(e.value)


def test_only_digest_references_are_written() -> None:
    with pytest.raises(ManifestError, match="is not pinned by digest"):
        build(spec(), "registry.example.com/windows/agent:latest")
