"""A team's checked-in manifest template, merged under the generated DaemonSet.

The template keeps a team's conventions (annotations, DNS policy, sidecars, probes...). What
the build decides wins: the pinned image, the HostProcess settings, the selector. Whatever in
the template would break a HostProcess pod is refused, with the reason, rather than silently
overridden: the team then fixes its template instead of wondering which value applies.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import yaml

from hostprocess.deploy.accounts import run_as_user_name

# Lists whose items are matched by `name` (the template's order first): containers merge key
# by key; env variables, volumes, mounts and ports are replaced whole, as their sources
# (`value`/`valueFrom`, `hostPath`/`emptyDir`...) exclude each other.
MERGED_BY_NAME = frozenset({"containers", "initContainers"})
REPLACED_BY_NAME = frozenset({"env", "volumes", "volumeMounts", "ports"})
# Lists whose template items are kept and ours appended (duplicates dropped).
CONCATENATED = frozenset({"tolerations"})
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
# Pod and container securityContext fields the API server refuses for Windows pods.
LINUX_POD_SECURITY = (
    "seLinuxOptions",
    "seccompProfile",
    "appArmorProfile",
    "fsGroup",
    "fsGroupChangePolicy",
    "sysctls",
    "runAsUser",
    "runAsGroup",
    "supplementalGroups",
)
LINUX_CONTAINER_SECURITY = (
    "seLinuxOptions",
    "seccompProfile",
    "appArmorProfile",
    "capabilities",
    "readOnlyRootFilesystem",
    "privileged",
    "allowPrivilegeEscalation",
    "procMount",
    "runAsUser",
    "runAsGroup",
)


class TemplateError(ValueError):
    """The template cannot be used; the message lists every problem with its reason."""


def load_template(text: bytes, path: str) -> dict[str, Any]:
    """The template's one YAML document, which must be a mapping."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        raise TemplateError(f"{path} is not valid YAML: {e}") from None
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise TemplateError(
            f"{path} must hold exactly one YAML document, a mapping like `spec: {{...}}` "
            f"(found {len(documents)} documents)."
        )
    return documents[0]


def check_template(
    template: Mapping[str, Any],
    *,
    path: str,
    kind: str,
    api_version: str,
    container: str,
    account: str,
    architecture: str,
) -> None:
    """Refuse what would break a HostProcess pod or contradict the target's fields."""
    problems = list(_problems(template, kind, api_version, container, account, architecture))
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise TemplateError(
            f"The template {path} cannot be used for a HostProcess {kind}:\n{listed}"
        )


def _problems(
    template: Mapping[str, Any],
    kind: str,
    api_version: str,
    container: str,
    account: str,
    architecture: str,
) -> Iterator[str]:
    for key, ours in (("kind", kind), ("apiVersion", api_version)):
        if key in template and template[key] != ours:
            yield f"`{key}: {template[key]}`: this target writes a {api_version} {kind}; remove `{key}` or make it `{ours}`."
    pod = _mapping(_mapping(_mapping(template.get("spec")).get("template")).get("spec"))
    where = "spec.template.spec"
    if "hostNetwork" in pod and pod["hostNetwork"] is not True:
        yield f"`{where}.hostNetwork: {pod['hostNetwork']}`: HostProcess pods must use the node's network (hostNetwork: true); remove it."
    for key in ("hostPID", "hostIPC"):
        if pod.get(key):
            yield f"`{where}.{key}: true`: Windows pods cannot share the node's process or IPC namespace; remove it."
    os_name = _mapping(pod.get("os")).get("name")
    if os_name not in (None, "windows"):
        yield f"`{where}.os.name: {os_name}`: HostProcess pods run on Windows; remove it or make it `windows`."
    selector = _mapping(pod.get("nodeSelector"))
    for label, value in (("kubernetes.io/os", "windows"), ("kubernetes.io/arch", architecture)):
        if label in selector and selector[label] != value:
            yield f"`{where}.nodeSelector.{label}: {selector[label]}`: this image runs on {value} nodes only; remove it."
    yield from _security_problems(
        _mapping(pod.get("securityContext")),
        f"{where}.securityContext",
        LINUX_POD_SECURITY,
        account,
    )
    for list_key in CONTAINER_LISTS:
        for item in _sequence(pod.get(list_key)):
            item = _mapping(item)
            name = item.get("name", "?")
            at = f"{where}.{list_key}[{name}]"
            if list_key == "containers" and name == container and "image" in item:
                yield f"`{at}.image`: the image is pinned to the digest this build produced; remove `image` from the template."
            yield from _security_problems(
                _mapping(item.get("securityContext")),
                f"{at}.securityContext",
                LINUX_CONTAINER_SECURITY,
                account,
            )


def _security_problems(
    context: Mapping[str, Any], at: str, linux_only: Sequence[str], account: str
) -> Iterator[str]:
    windows = _mapping(context.get("windowsOptions"))
    if "hostProcess" in windows and windows["hostProcess"] is not True:
        yield f"`{at}.windowsOptions.hostProcess: {windows['hostProcess']}`: every container of a HostProcess pod must be a HostProcess container; remove it."
    if "runAsUserName" in windows:
        try:
            named = run_as_user_name(str(windows["runAsUserName"]))
        except ValueError as e:
            yield f"`{at}.windowsOptions.runAsUserName`: {e}"
        else:
            if named != account:
                yield f"`{at}.windowsOptions.runAsUserName: {named}` differs from the target's `run_as_user_name` ({account}): set the account with that field and remove it here."
    for key in linux_only:
        if key in context:
            yield f"`{at}.{key}`: a Linux-only setting, which the API server refuses for Windows pods; remove it."


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else []


def merge(template: Any, ours: Any, key: str = "") -> Any:
    """`ours` over `template`: mappings merge key by key, named lists by `name`, tolerations
    add up, anything else is ours."""
    if isinstance(template, Mapping) and isinstance(ours, Mapping):
        merged = dict(template)
        for k, value in ours.items():
            merged[k] = merge(template[k], value, k) if k in template else value
        return merged
    if isinstance(template, list) and isinstance(ours, list):
        named = key in MERGED_BY_NAME or key in REPLACED_BY_NAME
        if named and _all_named(template) and _all_named(ours):
            by_name = {item["name"]: item for item in ours}
            combine = merge if key in MERGED_BY_NAME else _replaced
            merged_list = [
                combine(item, by_name.pop(item["name"])) if item["name"] in by_name else item
                for item in template
            ]
            return merged_list + [item for item in ours if item["name"] in by_name]
        if key in CONCATENATED:
            return template + [item for item in ours if item not in template]
    return ours


def _replaced(_template: Any, ours: Any, _key: str = "") -> Any:
    """A named item that replaces the template's item of that name whole."""
    return ours


def _all_named(items: Sequence[Any]) -> bool:
    return all(isinstance(item, Mapping) and "name" in item for item in items)
