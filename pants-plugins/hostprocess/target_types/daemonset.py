"""The `hostprocess_daemonset` target: a Kubernetes DaemonSet pinned to a built image.

Values are checked by the pure `hostprocess.deploy` modules when BUILD files are read, so
a mistake is reported with the target's address, the field and the fix before any build.
"""

from __future__ import annotations

from typing import Any, Optional

from pants.core.goals.package import OutputPathField
from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    AsyncFieldMixin,
    DictStringToStringField,
    Field,
    OptionalSingleSourceField,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.frozendict import FrozenDict
from pants.util.strutil import help_text

from hostprocess.deploy import values
from hostprocess.deploy.accounts import DEFAULT_ACCOUNT, SERVICE_ACCOUNTS, run_as_user_name
from hostprocess.target_types.fields import checked_value, invalid_field

ALIAS = "hostprocess_daemonset"


class DaemonSetImageField(StringField, AsyncFieldMixin):
    alias = "image"
    required = True
    value: str
    help = help_text(
        """
        The address of the `hostprocess_image` the DaemonSet runs, e.g.
        `//examples/node-agent:node-agent`. It is built in the same run, and the manifest pins
        it as `<registry>/<repository>@sha256:<digest>`, never by tag.
        """
    )


class DaemonSetRegistryField(StringField):
    alias = "registry"
    help = help_text(
        """
        Which of the image's `registries` the manifest pulls from (`@alias` or `host[:port]`).
        Unset: one manifest per registry of the image (`<name>.yaml` for one registry,
        `<name>.<alias or host>.yaml` for each of several).
        """
    )


class ResourceNameField(StringField):
    alias = "resource_name"
    help = (
        "The DaemonSet's `metadata.name` (and its container's name). Defaults to the target name."
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            return checked_value(ALIAS, cls, value, address, values.dns_subdomain)
        try:
            values.dns_subdomain(address.target_name)
        except ValueError as e:
            raise invalid_field(
                ALIAS,
                address,
                cls.alias,
                address.target_name,
                f"unset, it is the target name, which is not a valid Kubernetes name: set "
                f"`resource_name`, and {e}",
            ) from None
        return value


class NamespaceField(StringField):
    alias = "namespace"
    help = "The namespace of the DaemonSet. Unset: none is written (kubectl's current namespace applies)."

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        return (
            None if value is None else checked_value(ALIAS, cls, value, address, values.dns_label)
        )


class K8sLabelsField(DictStringToStringField):
    alias = "labels"
    help = help_text(
        "Labels of the DaemonSet and its pods (the `selector` labels are always added)."
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[dict[str, str]], address: Address) -> Any:
        value = super().compute_value(raw_value, address)
        return (
            value
            if value is None
            else FrozenDict(checked_value(ALIAS, cls, value, address, values.labels))
        )


class SelectorField(K8sLabelsField):
    alias = "selector"
    help = help_text(
        """
        The DaemonSet's `selector.matchLabels`, also set on its pods. Default:
        `{"app.kubernetes.io/name": <resource_name>}`. Kubernetes does not allow changing it
        once the DaemonSet exists.
        """
    )


class NodeSelectorField(K8sLabelsField):
    alias = "node_selector"
    help = help_text(
        """
        Extra node labels the pods need, e.g. `{"node.example.com/pool": "gpu"}`.
        `kubernetes.io/os: windows` and `kubernetes.io/arch: <the image's architecture>` are
        always added; a different value for either is refused.
        """
    )


class RunAsUserNameField(StringField):
    alias = "run_as_user_name"
    default = DEFAULT_ACCOUNT
    value: str
    help = help_text(
        f"""
        The account the HostProcess containers run as (`runAsUserName`): one of
        {", ".join(f"`{a}`" for a in SERVICE_ACCOUNTS)}, or the name of a local group on the
        node (without a domain), whose temporary member the container becomes. Domain and
        local user accounts are refused: HostProcess containers cannot run as them.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> str:
        value = super().compute_value(raw_value, address)
        return checked_value(ALIAS, cls, value, address, run_as_user_name)


class TolerationsField(Field):
    alias = "tolerations"
    value: tuple[FrozenDict[str, Any], ...]
    default = ()
    help = help_text(
        """
        Pod tolerations, as a list of dicts with Kubernetes' keys (`key`, `operator`, `value`,
        `effect`, `tolerationSeconds`), e.g. `[{"key": "os", "value": "windows", "effect":
        "NoSchedule"}]` for clusters that taint their Windows nodes.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[list[dict[str, Any]]], address: Address) -> Any:
        value = super().compute_value(raw_value, address)
        if not isinstance(value, (list, tuple)):
            raise invalid_field(ALIAS, address, cls.alias, value, "use a list of dicts.")
        checked = checked_value(ALIAS, cls, value, address, values.tolerations)
        return tuple(FrozenDict.deep_freeze(t) for t in checked)


class UpdateStrategyField(StringField):
    alias = "update_strategy"
    default = "RollingUpdate"
    valid_choices = values.UPDATE_STRATEGIES
    help = "`RollingUpdate` (replace pods node by node when the image changes) or `OnDelete`."


class MaxUnavailableField(StringField):
    alias = "max_unavailable"
    help = help_text(
        """
        How many nodes may be without a running pod during a rolling update: a count (`"1"`)
        or a percentage of nodes (`"10%"`). Unset: Kubernetes' default, 1.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            checked_value(ALIAS, cls, value, address, values.max_unavailable)
        return value


class ResourcesField(Field):
    alias = "resources"
    value: Optional[FrozenDict[str, FrozenDict[str, str]]]
    default = None
    help = help_text(
        """
        The container's resource requests and limits, e.g.
        `{"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}`.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[dict[str, Any]], address: Address) -> Any:
        value = super().compute_value(raw_value, address)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise invalid_field(
                ALIAS, address, cls.alias, value, "use a dict with `requests` and/or `limits`."
            )
        return FrozenDict.deep_freeze(checked_value(ALIAS, cls, value, address, values.resources))


class K8sEnvField(DictStringToStringField):
    alias = "env"
    help = help_text(
        """
        Environment variables of the container, in order (`$(NAME)` references to earlier ones
        work as in Kubernetes). They add to, and override, the image's `env`.
        """
    )


class ArgsField(StringSequenceField):
    alias = "args"
    help = "The container's `args`: they replace the image's `cmd`, after its `entrypoint`."


class _NamedItemsField(Field):
    value: tuple[FrozenDict[str, Any], ...]
    default = ()
    what: str
    required_keys: tuple[str, ...]
    unique: bool

    @classmethod
    def compute_value(cls, raw_value: Optional[list[dict[str, Any]]], address: Address) -> Any:
        value = super().compute_value(raw_value, address)
        if not isinstance(value, (list, tuple)):
            raise invalid_field(ALIAS, address, cls.alias, value, "use a list of dicts.")
        checked = checked_value(
            ALIAS,
            cls,
            value,
            address,
            lambda v: values.named_items(v, cls.what, cls.required_keys, unique=cls.unique),
        )
        return tuple(FrozenDict.deep_freeze(item) for item in checked)


class VolumesField(_NamedItemsField):
    alias = "volumes"
    what = "volume"
    required_keys = ("name",)
    unique = True
    help = help_text(
        """
        Pod volumes as Kubernetes writes them, e.g. `[{"name": "logs", "hostPath": {"path":
        "C:\\\\var\\\\log\\\\agent", "type": "DirectoryOrCreate"}}]`. HostProcess containers also see
        the node's whole file system directly.
        """
    )


class VolumeMountsField(_NamedItemsField):
    alias = "volume_mounts"
    what = "volume mount"
    required_keys = ("name", "mountPath")
    unique = False
    help = help_text(
        """
        The container's volume mounts, e.g. `[{"name": "logs", "mountPath": "C:\\\\logs"}]`; each
        `name` must be a volume of `volumes` or of the template.
        """
    )


class _ObjectNameField(StringField):
    """The name of another Kubernetes object: an RFC 1123 subdomain, when set."""

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        return (
            None
            if value is None
            else checked_value(ALIAS, cls, value, address, values.dns_subdomain)
        )


class ServiceAccountField(_ObjectNameField):
    alias = "service_account"
    help = "The pods' `serviceAccountName`. Unset: the namespace's default service account."


class PriorityClassField(_ObjectNameField):
    alias = "priority_class"
    help = help_text(
        """
        The pods' `priorityClassName`, e.g. `system-node-critical` for components a node
        cannot work without.
        """
    )


class TemplateField(OptionalSingleSourceField):
    alias = "template"
    expected_file_extensions = (".yaml", ".yml")
    help = help_text(
        """
        A checked-in YAML file (one DaemonSet document, or just the parts you need, e.g.
        `spec.template.metadata.annotations`) merged under the generated manifest: the
        target's values win, lists of named items (containers, env, volumes, mounts) merge by
        `name`, tolerations add up. Settings that would break a HostProcess pod
        (`hostNetwork: false`, `hostProcess: false` on any container, a non-Windows node
        selector or `os.name`, Linux-only security settings, an `image` for the pinned
        container) are refused with the reason.
        """
    )


class HostProcessDaemonSetTarget(Target):
    alias = ALIAS
    core_fields = (
        *COMMON_TARGET_FIELDS,
        DaemonSetImageField,
        DaemonSetRegistryField,
        ResourceNameField,
        NamespaceField,
        K8sLabelsField,
        SelectorField,
        NodeSelectorField,
        RunAsUserNameField,
        TolerationsField,
        UpdateStrategyField,
        MaxUnavailableField,
        ResourcesField,
        K8sEnvField,
        ArgsField,
        VolumesField,
        VolumeMountsField,
        ServiceAccountField,
        PriorityClassField,
        TemplateField,
        OutputPathField,
    )
    help = help_text(
        """
        A Kubernetes DaemonSet that runs a `hostprocess_image` on every Windows node, written
        by `package` to `dist/<output_path>.yaml` with the image pinned to the digest built in
        the same run. HostProcess settings (`hostProcess: true`, a supported
        `runAsUserName`, `hostNetwork: true`, a Windows node selector) are always set.
        `publish` pushes the image first, then writes the manifest.
        """
    )
