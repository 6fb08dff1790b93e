"""The Windows accounts a HostProcess container may run as (`runAsUserName`).

HostProcess containers run as one of three built-in service accounts, or as a temporary
user made from a local group of the node (named without a domain). Domain accounts and
ordinary local users are not supported by containerd/hcsshim, so they are refused here,
before the pod is scheduled and fails on the node.
"""

from __future__ import annotations

SYSTEM = "NT AUTHORITY\\SYSTEM"
LOCAL_SERVICE = "NT AUTHORITY\\Local service"
NETWORK_SERVICE = "NT AUTHORITY\\NetworkService"
SERVICE_ACCOUNTS = (SYSTEM, LOCAL_SERVICE, NETWORK_SERVICE)
DEFAULT_ACCOUNT = SYSTEM

# Windows accepts each service account's name with or without the space, in any case.
_CANONICAL = {
    "nt authority\\system": SYSTEM,
    "nt authority\\localservice": LOCAL_SERVICE,
    "nt authority\\networkservice": NETWORK_SERVICE,
}
# Characters Windows refuses in account and group names.
INVALID_NAME_CHARACTERS = frozenset('"/\\[]:;|=,+*?<>@')
# Kubernetes' limit for the user part of `runAsUserName`.
MAX_GROUP_NAME = 104


def run_as_user_name(value: str) -> str:
    """The canonical spelling of a service account, or `value` as a local group name.

    Raises ValueError, saying what is accepted, for anything else.
    """
    domain, backslash, user = value.rpartition("\\")
    canonical = (
        _CANONICAL.get(f"{domain}\\{user.replace(' ', '')}".casefold()) if backslash else None
    )
    if canonical:
        return canonical
    accepted = (
        f"use one of {', '.join(repr(a) for a in SERVICE_ACCOUNTS)}, or the name of a local "
        f"group on the node (no domain, e.g. 'hpc-agents')"
    )
    if backslash:
        raise ValueError(
            f"{value!r} is a domain or local user account, which HostProcess containers cannot "
            f"run as: {accepted}."
        )
    problem = _group_name_problem(value)
    if problem:
        raise ValueError(f"{value!r} is not a valid local group name ({problem}): {accepted}.")
    return value


def _group_name_problem(name: str) -> str:
    if not name:
        return "it is empty"
    if len(name) > MAX_GROUP_NAME:
        return f"longer than {MAX_GROUP_NAME} characters"
    bad = sorted({c for c in name if c in INVALID_NAME_CHARACTERS or ord(c) < 32})
    if bad:
        return f"it contains {''.join(bad)!r}"
    if not name.strip(". "):
        return "it is only dots and spaces"
    return ""
