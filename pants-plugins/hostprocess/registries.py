"""`[hostprocess].registries`: where images are pushed, by alias, with per-registry settings.

Modelled on the Pants docker backend's `[docker].registries`, so a repository that uses
both configures them the same way. Settings name environment variables for credentials;
they never hold a secret themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from hostprocess.oci.auth import HELPER_PATH_VARIABLE
from hostprocess.oci.reference import validate_registry

ALL_DEFAULT_REGISTRIES = "<all default registries>"
# Where Docker's credentials are found: config.json (HOME, DOCKER_CONFIG) and the
# `docker-credential-*` helpers it names (PATH). Pulls and pushes see these variables only.
CREDENTIAL_LOCATIONS = ("HOME", "PATH", "DOCKER_CONFIG")


def credential_env(env: Mapping[str, str]) -> dict[str, str]:
    """The credential locations from `env`, ready to pass to a tool process."""
    return {
        HELPER_PATH_VARIABLE if name == "PATH" else name: value
        for name, value in env.items()
        if name in CREDENTIAL_LOCATIONS
    }


KNOWN_KEYS = frozenset(
    {
        "address",
        "default",
        "insecure",
        "ca_cert",
        "username_env",
        "password_env",
        "skip_push",
        "signing_key",
        "signing_key_password_env",
    }
)


class RegistryConfigError(ValueError):
    """A registry is unknown or configured wrongly; the message says where to fix it."""


@dataclass(frozen=True)
class RegistryOptions:
    address: str  # host[:port]
    alias: str = ""
    default: bool = False
    insecure: bool = False  # plain HTTP / unverified TLS allowed (loopback needs no flag)
    ca_cert: str = ""  # a PEM bundle to trust in addition to the system's
    username_env: str = ""
    password_env: str = ""
    skip_push: bool = False  # `publish` pushes nothing here (as the docker backend's `skip_push`)
    signing_key: str = ""  # overrides `[hostprocess].signing_key` for images pushed here
    signing_key_password_env: str = ""  # overrides `[hostprocess].signing_key_password_env`

    @classmethod
    def from_dict(cls, alias: str, raw: Mapping[str, Any]) -> RegistryOptions:
        where = f"`[hostprocess].registries` entry `{alias}`"
        if not isinstance(raw, Mapping):
            raise RegistryConfigError(
                f'{where} must be a dict like {{"address": "host:port"}}, not {raw!r}.'
            )
        unknown = sorted(set(raw) - KNOWN_KEYS)
        if unknown:
            raise RegistryConfigError(
                f"{where} has unknown keys {unknown}: use {sorted(KNOWN_KEYS)}."
            )
        if "address" not in raw:
            raise RegistryConfigError(
                f"{where} needs an `address` (host[:port], e.g. `registry.example.com`)."
            )
        address = str(raw["address"])
        try:
            validate_registry(address)
        except ValueError as e:
            raise RegistryConfigError(
                f"{where} has an invalid `address` {address!r}: {e}"
            ) from None
        options = cls(
            address=address,
            alias=alias,
            default=_bool(raw.get("default", False), where, "default"),
            insecure=_bool(raw.get("insecure", False), where, "insecure"),
            ca_cert=str(raw.get("ca_cert", "")),
            username_env=str(raw.get("username_env", "")),
            password_env=str(raw.get("password_env", "")),
            skip_push=_bool(raw.get("skip_push", False), where, "skip_push"),
            signing_key=str(raw.get("signing_key", "")),
            signing_key_password_env=str(raw.get("signing_key_password_env", "")),
        )
        if bool(options.username_env) != bool(options.password_env):
            raise RegistryConfigError(
                f"{where} sets only one of `username_env` and `password_env`: set both or neither."
            )
        return options


def _bool(value: Any, where: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise RegistryConfigError(f"{where} has `{key}` = {value!r}: use true or false.")
    return value


@dataclass(frozen=True)
class Registries:
    """The configured registries, at most one per address, so one host has one set of settings."""

    by_alias: tuple[RegistryOptions, ...]

    def __post_init__(self) -> None:
        first_at: dict[str, RegistryOptions] = {}
        for registry in self.by_alias:
            first = first_at.setdefault(_host_key(registry.address), registry)
            if first is not registry:
                raise RegistryConfigError(
                    f"The `[hostprocess].registries` entries `{first.alias}` "
                    f"({first.address!r}) and `{registry.alias}` ({registry.address!r}) name the "
                    f"same registry, so pulls and pushes could use different settings for it: "
                    f"merge them into one entry and use its `@alias` wherever the other was named."
                )

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Registries:
        return cls(
            tuple(
                RegistryOptions.from_dict(alias, options) for alias, options in sorted(raw.items())
            )
        )

    @property
    def defaults(self) -> tuple[RegistryOptions, ...]:
        return tuple(r for r in self.by_alias if r.default)

    def for_address(self, address: str) -> RegistryOptions:
        """The registry configured at `address` (a valid `host[:port]`), else default settings.

        Every pull and push looks its registry up here, so one host always gets one set of
        TLS and credential settings.
        """
        key = _host_key(address)
        configured = (r for r in self.by_alias if _host_key(r.address) == key)
        return next(configured, RegistryOptions(address=address))

    def resolve(self, values: tuple[str, ...], *, owner: str) -> Iterator[RegistryOptions]:
        """`@alias`, a configured address, a bare `host[:port]`, or all default registries."""
        aliases = {f"@{r.alias}": r for r in self.by_alias}
        for value in values:
            if value == ALL_DEFAULT_REGISTRIES:
                yield from self.defaults
            elif value.startswith("@"):
                if value not in aliases:
                    known = ", ".join(sorted(aliases)) or "none are configured"
                    raise RegistryConfigError(
                        f"The `registries` field of {owner} names the registry alias `{value}`, "
                        f"which `[hostprocess].registries` does not define (known: {known})."
                    )
                yield aliases[value]
            else:
                try:
                    validate_registry(value)
                except ValueError as e:
                    raise RegistryConfigError(
                        f"The `registries` field of {owner} has the invalid registry {value!r}: {e} "
                        f"Use `host[:port]` or `@alias`."
                    ) from None
                yield self.for_address(value)


def _host_key(address: str) -> str:
    """What makes two addresses one registry: host names (and IPv6 hex) ignore case."""
    return address.lower()
