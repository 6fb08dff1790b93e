"""The account and value checks that run when BUILD files are read."""
from __future__ import annotations

from typing import Any, Callable

import pytest

from hostprocess.deploy import values
from hostprocess.deploy.accounts import run_as_user_name


@pytest.mark.parametrize(
    "given, written",
    [
        ("NT AUTHORITY\\SYSTEM", "NT AUTHORITY\\SYSTEM"),
        ("nt authority\\system", "NT AUTHORITY\\SYSTEM"),
        ("NT AUTHORITY\\Local service", "NT AUTHORITY\\Local service"),
        ("NT AUTHORITY\\LocalService", "NT AUTHORITY\\Local service"),
        ("NT AUTHORITY\\LOCAL SERVICE", "NT AUTHORITY\\Local service"),
        ("NT AUTHORITY\\NetworkService", "NT AUTHORITY\\NetworkService"),
        ("NT AUTHORITY\\Network Service", "NT AUTHORITY\\NetworkService"),
        ("hpc-agents", "hpc-agents"),
        ("Node Agents", "Node Agents"),
    ],
)
def test_service_accounts_and_local_groups_are_accepted(given: str, written: str) -> None:
    assert run_as_user_name(given) == written


@pytest.mark.parametrize(
    "value, error",
    [
        ("CONTOSO\\svc-agent", "is a domain or local user account"),
        (".\\Administrator", "is a domain or local user account"),
        ("NT AUTHORITY\\IUSR", "is a domain or local user account"),
        ("", "(it is empty)"),
        ("agents@contoso", "(it contains '@')"),
        ("a" * 105, "(longer than 104 characters)"),
        ("...", "(it is only dots and spaces)"),
        ("tab\tgroup", "(it contains '\\t')"),
    ],
)
def test_other_accounts_are_refused_with_what_is_accepted(value: str, error: str) -> None:
    with pytest.raises(ValueError) as e:
        run_as_user_name(value)
    assert error in str(e.value)
    assert (
        "'NT AUTHORITY\\\\SYSTEM', 'NT AUTHORITY\\\\Local service', 'NT AUTHORITY\\\\NetworkService'"
        in str(e.value)
    )


@pytest.mark.parametrize(
    "check, value, error",
    [
        (values.dns_label, "Kube-System", "an RFC 1123 label"),
        (values.dns_label, "a" * 64, "an RFC 1123 label"),
        (values.dns_subdomain, "node_agent", "an RFC 1123 subdomain"),
        (values.labels, {"app/": "x"}, "the label key 'app/' is invalid"),
        (values.labels, {"Bad_Prefix/app": "x"}, "the label key 'Bad_Prefix/app' is invalid"),
        (values.labels, {"app": "-x"}, "the value '-x' of label 'app' is invalid"),
        (values.tolerations, ["os=windows"], "each toleration is a dict"),
        (values.tolerations, [{"key": "os", "efect": "NoSchedule"}], "unknown keys ['efect']"),
        (
            values.tolerations,
            [{"key": "os", "operator": "In"}],
            "has the operator 'In': use Exists or Equal",
        ),
        (
            values.tolerations,
            [{"key": "os", "operator": "Exists", "value": "windows"}],
            "sets a `value` with operator Exists",
        ),
        (values.tolerations, [{"key": "os", "effect": "NoRun"}], "has the effect 'NoRun'"),
        (
            values.tolerations,
            [{"key": "os", "effect": "NoSchedule", "tolerationSeconds": 60}],
            "for the NoExecute effect only",
        ),
        (values.tolerations, [{"key": 1}], "`key` must be a string"),
        (
            values.resources,
            {"request": {"cpu": "1"}},
            "unknown keys ['request']: use `requests` and `limits`",
        ),
        (values.resources, {"limits": "1Gi"}, "`limits` is a dict of resource name to quantity"),
        (
            values.resources,
            {"limits": {"memory": "1GB"}},
            "`limits.memory` = '1GB' is not a Kubernetes quantity",
        ),
        (
            values.resources,
            {"limits": {"cpu": True}},
            "`limits.cpu` = True is not a Kubernetes quantity",
        ),
        (values.max_unavailable, "ten", "a whole number of pods, like '1', or a percentage"),
        (values.max_unavailable, "-1", "a whole number of pods"),
    ],
)
def test_invalid_values_are_refused_with_the_rule(
    check: Callable[[Any], Any], value: Any, error: str
) -> None:
    with pytest.raises(ValueError) as e:
        check(value)
    assert error in str(e.value)


def test_named_items() -> None:
    mounts = [{"name": "logs", "mountPath": "C:\\a"}, {"name": "logs", "mountPath": "C:\\b"}]
    assert values.named_items(mounts, "volume mount", ("name", "mountPath"), unique=False) == tuple(
        mounts
    )
    with pytest.raises(ValueError, match="two volumes are named 'logs'"):
        values.named_items([{"name": "logs"}, {"name": "logs"}], "volume", ("name",), unique=True)
    with pytest.raises(ValueError, match="the volume mount 'logs' lacks `mountPath`"):
        values.named_items([{"name": "logs"}], "volume mount", ("name", "mountPath"), unique=False)
    with pytest.raises(ValueError, match="each volume is a dict with a `name`"):
        values.named_items([{"hostPath": {}}], "volume", ("name",), unique=True)


def test_valid_values_come_back_in_manifest_form() -> None:
    assert values.resources({"limits": {"cpu": 2, "memory": "1.5Gi"}}) == {
        "limits": {"cpu": "2", "memory": "1.5Gi"}
    }
    assert values.max_unavailable("3") == 3 and values.max_unavailable("10%") == "10%"
    assert values.labels({"example.com/team": "nodes", "tier": ""}) == {
        "example.com/team": "nodes",
        "tier": "",
    }
    assert values.dns_subdomain("node-agent.v2") == "node-agent.v2"
