"""Checks of the values a user gives for a Kubernetes object, with the rule each breaks.

Each function returns the value in the form the manifest holds, or raises ValueError with
a message that says what is wrong and what is accepted. They run when BUILD files are
read, so the API server never sees the mistake.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

DNS_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
DNS_SUBDOMAIN_RE = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
LABEL_NAME_RE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
LABEL_VALUE_RE = re.compile(r"(|[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)")
QUANTITY_RE = re.compile(
    r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?"
)
PERCENT_OR_INT_RE = re.compile(r"\d+%?")

TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")
TOLERATION_OPERATORS = ("Exists", "Equal")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
RESOURCE_KINDS = ("requests", "limits")
UPDATE_STRATEGIES = ("RollingUpdate", "OnDelete")


def dns_label(value: str) -> str:
    """A namespace: a lowercase RFC 1123 label."""
    if not DNS_LABEL_RE.fullmatch(value):
        raise ValueError(
            "use at most 63 lowercase letters, digits and `-`, starting and ending with a "
            "letter or digit (an RFC 1123 label)."
        )
    return value


def dns_subdomain(value: str) -> str:
    """An object name: a lowercase RFC 1123 subdomain."""
    if not DNS_SUBDOMAIN_RE.fullmatch(value):
        raise ValueError(
            "use at most 253 lowercase letters, digits, `-` and `.`, each `.`-separated part "
            "starting and ending with a letter or digit (an RFC 1123 subdomain)."
        )
    return value


def labels(value: Mapping[str, str]) -> dict[str, str]:
    """Label keys (`[prefix/]name`) and values, as Kubernetes accepts them."""
    for key, label_value in value.items():
        prefix, slash, name = key.rpartition("/")
        if (slash and not DNS_SUBDOMAIN_RE.fullmatch(prefix)) or not LABEL_NAME_RE.fullmatch(name):
            raise ValueError(
                f"the label key {key!r} is invalid: use an optional DNS subdomain prefix and `/`, "
                f"then at most 63 letters, digits, `-`, `_` and `.`, starting and ending with a "
                f"letter or digit."
            )
        if not LABEL_VALUE_RE.fullmatch(label_value):
            raise ValueError(
                f"the value {label_value!r} of label {key!r} is invalid: use at most 63 letters, "
                f"digits, `-`, `_` and `.`, starting and ending with a letter or digit, or ''."
            )
    return dict(value)


def tolerations(value: Sequence[Any]) -> tuple[dict[str, Any], ...]:
    """Pod tolerations, e.g. `{"key": "os", "value": "windows", "effect": "NoSchedule"}`."""
    result = []
    for item in value:
        if not isinstance(item, Mapping):
            raise ValueError(
                f"each toleration is a dict like {{'key': 'os', 'operator': 'Exists'}}, not {item!r}."
            )
        unknown = sorted(set(item) - set(TOLERATION_KEYS))
        if unknown:
            raise ValueError(
                f"the toleration {dict(item)!r} has unknown keys {unknown}: use {list(TOLERATION_KEYS)}."
            )
        operator = item.get("operator", "Equal")
        if operator not in TOLERATION_OPERATORS:
            raise ValueError(
                f"the toleration {dict(item)!r} has the operator {operator!r}: use Exists or Equal."
            )
        if operator == "Exists" and item.get("value"):
            raise ValueError(
                f"the toleration {dict(item)!r} sets a `value` with operator Exists: remove the value."
            )
        if "effect" in item and item["effect"] not in TAINT_EFFECTS:
            raise ValueError(
                f"the toleration {dict(item)!r} has the effect {item['effect']!r}: use {', '.join(TAINT_EFFECTS)}."
            )
        if "tolerationSeconds" in item and (
            not isinstance(item["tolerationSeconds"], int) or item.get("effect") != "NoExecute"
        ):
            raise ValueError(
                f"the toleration {dict(item)!r}: `tolerationSeconds` is a whole number, for the NoExecute effect only."
            )
        for key in ("key", "value", "effect"):
            if key in item and not isinstance(item[key], str):
                raise ValueError(f"the toleration {dict(item)!r}: `{key}` must be a string.")
        result.append(dict(item))
    return tuple(result)


def resources(value: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """`{"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {...}}`, quantities as strings."""
    unknown = sorted(set(value) - set(RESOURCE_KINDS))
    if unknown:
        raise ValueError(f"unknown keys {unknown}: use `requests` and `limits`.")
    result: dict[str, dict[str, str]] = {}
    for kind, amounts in value.items():
        if not isinstance(amounts, Mapping):
            raise ValueError(
                f"`{kind}` is a dict of resource name to quantity, like {{'cpu': '100m'}}, not {amounts!r}."
            )
        result[kind] = {}
        for resource, quantity in amounts.items():
            text = str(quantity)
            if (
                isinstance(quantity, bool)
                or not isinstance(quantity, (str, int, float))
                or not QUANTITY_RE.fullmatch(text)
            ):
                raise ValueError(
                    f"`{kind}.{resource}` = {quantity!r} is not a Kubernetes quantity: use e.g. '250m', '1', '64Mi'."
                )
            result[kind][str(resource)] = text
    return result


def named_items(
    value: Sequence[Any], what: str, required: Sequence[str], *, unique: bool
) -> tuple[dict[str, Any], ...]:
    """Volumes or volume mounts: dicts with a `name` (`unique` or not) and the `required` keys."""
    names: set[str] = set()
    for item in value:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise ValueError(f"each {what} is a dict with a `name`, not {item!r}.")
        missing = [key for key in required if key not in item]
        if missing:
            raise ValueError(
                f"the {what} {item['name']!r} lacks {', '.join(f'`{k}`' for k in missing)}."
            )
        if unique and item["name"] in names:
            raise ValueError(
                f"two {what}s are named {item['name']!r}: {what} names must be unique."
            )
        names.add(item["name"])
    return tuple(dict(item) for item in value)


def max_unavailable(value: str) -> int | str:
    """A DaemonSet rolling update's `maxUnavailable`: a count (`"1"`) or a percentage (`"10%"`)."""
    if not PERCENT_OR_INT_RE.fullmatch(value):
        raise ValueError(
            "use a whole number of pods, like '1', or a percentage of nodes, like '10%'."
        )
    return value if value.endswith("%") else int(value)
