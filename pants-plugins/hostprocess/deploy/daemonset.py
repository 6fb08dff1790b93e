"""The DaemonSet that runs a HostProcess image on every Windows node, as YAML bytes.

Everything HostProcess needs is fixed here rather than left to the user: pod-level
`hostProcess: true` with a supported `runAsUserName`, `hostNetwork: true`, `os.name:
windows` and a Windows node selector for the image's architecture. The image is always a
digest reference. Keys are sorted, so the same inputs give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from hostprocess.deploy.template import check_template, merge

API_VERSION = "apps/v1"
KIND = "DaemonSet"
OS_LABEL = "kubernetes.io/os"
ARCH_LABEL = "kubernetes.io/arch"
NAME_LABEL = "app.kubernetes.io/name"


class ManifestError(ValueError):
    """The fields cannot make a valid HostProcess manifest; the message says which and why."""


@dataclass(frozen=True)
class DaemonSetSpec:
    """What a `hostprocess_daemonset` target asks for, with its defaults applied."""

    name: str
    container_name: str
    architecture: str
    run_as_user_name: str
    namespace: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    selector: Mapping[str, str] = field(default_factory=dict)  # empty: {NAME_LABEL: name}
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    update_strategy: str = "RollingUpdate"
    max_unavailable: int | str | None = None
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    volumes: tuple[Mapping[str, Any], ...] = ()
    volume_mounts: tuple[Mapping[str, Any], ...] = ()
    service_account: str = ""
    priority_class: str = ""


def node_selector(spec: DaemonSetSpec) -> dict[str, str]:
    """The user's node selector with the Windows OS and the image's architecture added."""
    fixed = {OS_LABEL: "windows", ARCH_LABEL: spec.architecture}
    for label, value in fixed.items():
        if spec.node_selector.get(label, value) != value:
            raise ManifestError(
                f"`node_selector` sets {label}={spec.node_selector[label]}, but a HostProcess image "
                f"for {spec.architecture} runs only where {label}={value}: remove that entry."
            )
    return {**spec.node_selector, **fixed}


def pod_labels(spec: DaemonSetSpec) -> tuple[dict[str, str], dict[str, str]]:
    """(selector, pod labels): the selector's labels are always among the pod's."""
    selector = dict(spec.selector) or {NAME_LABEL: spec.name}
    for key, value in selector.items():
        if spec.labels.get(key, value) != value:
            raise ManifestError(
                f"`labels` sets {key}={spec.labels[key]}, but the `selector` needs {key}={value} "
                f"on the pods: change one of them."
            )
    return selector, {**spec.labels, **selector}


def _container(spec: DaemonSetSpec, image: str) -> dict[str, Any]:
    container: dict[str, Any] = {"name": spec.container_name, "image": image}
    if spec.args:
        container["args"] = list(spec.args)
    if spec.env:
        container["env"] = [{"name": k, "value": v} for k, v in spec.env.items()]
    if spec.resources:
        container["resources"] = {kind: dict(amounts) for kind, amounts in spec.resources.items()}
    if spec.volume_mounts:
        container["volumeMounts"] = [dict(m) for m in spec.volume_mounts]
    return container


def _update_strategy(spec: DaemonSetSpec) -> dict[str, Any]:
    strategy: dict[str, Any] = {"type": spec.update_strategy}
    if spec.max_unavailable is not None:
        if spec.update_strategy != "RollingUpdate":
            raise ManifestError(
                f"`max_unavailable` applies to the RollingUpdate strategy only, not "
                f'{spec.update_strategy}: remove it or use `update_strategy="RollingUpdate"`.'
            )
        strategy["rollingUpdate"] = {"maxUnavailable": spec.max_unavailable}
    return strategy


def daemonset(spec: DaemonSetSpec, image: str) -> dict[str, Any]:
    """The generated DaemonSet (before any template), running `image` (a digest reference)."""
    if "@sha256:" not in image:
        raise ManifestError(f"the image {image!r} is not pinned by digest.")
    selector, labels = pod_labels(spec)
    pod: dict[str, Any] = {
        "os": {"name": "windows"},
        "hostNetwork": True,
        "securityContext": {
            "windowsOptions": {"hostProcess": True, "runAsUserName": spec.run_as_user_name}
        },
        "nodeSelector": node_selector(spec),
        "containers": [_container(spec, image)],
    }
    optional = {
        "tolerations": [dict(t) for t in spec.tolerations],
        "volumes": [dict(v) for v in spec.volumes],
        "serviceAccountName": spec.service_account,
        "priorityClassName": spec.priority_class,
    }
    pod.update((k, v) for k, v in optional.items() if v)
    metadata: dict[str, Any] = {"name": spec.name, "labels": labels}
    if spec.namespace:
        metadata["namespace"] = spec.namespace
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": selector},
            "updateStrategy": _update_strategy(spec),
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def build(
    spec: DaemonSetSpec,
    image: str,
    template: Mapping[str, Any] | None = None,
    template_path: str = "",
) -> dict[str, Any]:
    """The DaemonSet, merged over `template` (checked first), checked as a whole."""
    manifest = daemonset(spec, image)
    if template is not None:
        manifest = _merged(spec, manifest, template, template_path)
    _check_mounts(manifest)
    return manifest


def _merged(
    spec: DaemonSetSpec, ours: dict[str, Any], template: Mapping[str, Any], template_path: str
) -> dict[str, Any]:
    check_template(
        template,
        path=template_path,
        kind=KIND,
        api_version=API_VERSION,
        container=spec.container_name,
        account=spec.run_as_user_name,
        architecture=spec.architecture,
    )
    return merge(template, ours)


def _check_mounts(manifest: Mapping[str, Any]) -> None:
    pod = manifest["spec"]["template"]["spec"]
    volumes = {v.get("name") for v in pod.get("volumes", []) if isinstance(v, Mapping)}
    for container in pod.get("containers", []):
        for mount in container.get("volumeMounts", []) if isinstance(container, Mapping) else []:
            if isinstance(mount, Mapping) and mount.get("name") not in volumes:
                raise ManifestError(
                    f"the container {container.get('name')!r} mounts the volume "
                    f"{mount.get('name')!r}, which neither `volumes` nor the template defines."
                )


class _Dumper(yaml.SafeDumper):
    """Writes a mapping used twice (the pod and DaemonSet labels) in full, not as an alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(manifest: Mapping[str, Any], header: str) -> bytes:
    """YAML with sorted keys, after `header` as `#` comment lines."""
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    body = yaml.dump(
        manifest,
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=1000,
    )
    return (comments + body).encode()
