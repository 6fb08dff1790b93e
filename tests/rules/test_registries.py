"""`[hostprocess].registries` parsing and `registries` field resolution: errors say where to fix."""
from __future__ import annotations

import pytest

from hostprocess.registries import (
    ALL_DEFAULT_REGISTRIES,
    Registries,
    RegistryConfigError,
    RegistryOptions,
)

CONFIG = {
    "company": {"address": "registry.example.com", "default": True},
    "ci": {"address": "127.0.0.1:5000", "insecure": True, "username_env": "U", "password_env": "P"},
}


def test_defaults_aliases_and_addresses() -> None:
    registries = Registries.from_dict(CONFIG)
    assert [r.address for r in registries.resolve((ALL_DEFAULT_REGISTRIES,), owner="x:y")] == [
        "registry.example.com"
    ]
    [ci] = registries.resolve(("@ci",), owner="x:y")
    assert ci == RegistryOptions(
        "127.0.0.1:5000", "ci", insecure=True, username_env="U", password_env="P"
    )
    [by_address] = registries.resolve(("registry.example.com",), owner="x:y")
    assert by_address.alias == "company"
    [ad_hoc] = registries.resolve(("other.example.org:443",), owner="x:y")
    assert ad_hoc == RegistryOptions("other.example.org:443")


def test_skip_push_is_per_registry() -> None:
    """As the docker backend's: images still name the registry; `publish` pushes nothing there."""
    registries = Registries.from_dict(
        {**CONFIG, "example": {"address": "registry.example.org", "skip_push": True}}
    )
    [example] = registries.resolve(("@example",), owner="x:y")
    assert example == RegistryOptions("registry.example.org", "example", skip_push=True)
    assert not any(r.skip_push for r in registries.resolve(("@ci", "@company"), owner="x:y"))


@pytest.mark.parametrize(
    "config, fragments",
    [
        ({"a": {"default": True}}, ["`a`", "needs an `address`"]),
        (
            {"a": {"address": "https://registry.example.com"}},
            ["`a`", "invalid `address`", "https://registry.example.com"],
        ),
        ({"a": {"address": "r.example.com", "insecur": True}}, ["`a`", "unknown keys", "insecur"]),
        ({"a": {"address": "r.example.com", "default": "yes"}}, ["`a`", "`default`", "'yes'"]),
        ({"a": {"address": "r.example.com", "skip_push": 1}}, ["`a`", "`skip_push`", "1"]),
        (
            {"a": {"address": "r.example.com", "username_env": "U"}},
            ["`a`", "username_env", "password_env"],
        ),
        ({"a": "r.example.com"}, ["`a`", "must be a dict"]),
    ],
)
def test_bad_registry_config(config: dict, fragments: list[str]) -> None:
    with pytest.raises(RegistryConfigError) as exc:
        Registries.from_dict(config)
    for fragment in fragments:
        assert fragment in str(exc.value), str(exc.value)
    assert "[hostprocess].registries" in str(exc.value)


@pytest.mark.parametrize(
    "value, fragments",
    [
        ("@nope", ["examples:hello", "`registries`", "`@nope`", "@ci, @company"]),
        ("not a host", ["examples:hello", "`registries`", "'not a host'", "host[:port]"]),
        ("http://r.example.com", ["examples:hello", "'http://r.example.com'"]),
    ],
)
def test_bad_registries_field_values(value: str, fragments: list[str]) -> None:
    with pytest.raises(RegistryConfigError) as exc:
        list(Registries.from_dict(CONFIG).resolve((value,), owner="examples:hello"))
    for fragment in fragments:
        assert fragment in str(exc.value), str(exc.value)


@pytest.mark.parametrize(
    "other_address",
    ["registry.example.com", "Registry.Example.COM"],  # host names ignore case
)
def test_two_aliases_for_one_address_are_refused(other_address: str) -> None:
    config = {**CONFIG, "mirror": {"address": other_address, "insecure": True}}
    with pytest.raises(RegistryConfigError) as exc:
        Registries.from_dict(config)
    message = str(exc.value)
    for fragment in [
        "[hostprocess].registries",
        "`company`",
        "`mirror`",
        repr(other_address),
        "merge them",
    ]:
        assert fragment in message, message


def test_same_host_other_port_is_another_registry() -> None:
    registries = Registries.from_dict({**CONFIG, "tls": {"address": "127.0.0.1:5443"}})
    assert registries.for_address("127.0.0.1:5443").alias == "tls"
    assert registries.for_address("127.0.0.1:5000").alias == "ci"


@pytest.mark.parametrize(
    "host, alias",
    [("127.0.0.1:5000", "ci"), ("REGISTRY.example.com", "company"), ("other.example.org", "")],
)
def test_pull_and_publish_resolve_one_registry_for_a_host(host: str, alias: str) -> None:
    """Pulling a base from `host` (for_address) and publishing to it get the same settings."""
    registries = Registries.from_dict(CONFIG)
    pulled_from = registries.for_address(host)
    [pushed_to] = registries.resolve((host,), owner="x:y")
    assert pulled_from == pushed_to
    assert pulled_from.alias == alias
    if alias:
        [by_alias] = registries.resolve((f"@{alias}",), owner="x:y")
        assert pulled_from == by_alias
    else:
        assert pulled_from == RegistryOptions(host)
