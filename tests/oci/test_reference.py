"""Tests for image reference parsing and formatting (the distribution reference grammar)."""
from __future__ import annotations

from typing import Callable

import pytest

from hostprocess.oci.reference import (
    Reference,
    is_registry_component,
    name_without_tag,
    validate_digest,
    validate_registry,
    validate_repository,
    validate_tag,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "text, registry, repository, tag, digest",
    [
        ("ubuntu", None, "ubuntu", None, None),
        ("ubuntu:22.04", None, "ubuntu", "22.04", None),
        ("library/ubuntu:latest", None, "library/ubuntu", "latest", None),
        ("team/app", None, "team/app", None, None),  # no '.', ':' or localhost: not a host
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/app:v1", "localhost:5000", "app", "v1", None),
        ("localhost:5000", None, "localhost", "5000", None),  # a tag, as Docker reads it
        ("registry.example.com/team/app", "registry.example.com", "team/app", None, None),
        (
            f"registry.example.com:443/team/app:v1@{DIGEST}",
            "registry.example.com:443",
            "team/app",
            "v1",
            DIGEST,
        ),
        (f"ghcr.io/o/app@{DIGEST}", "ghcr.io", "o/app", None, DIGEST),
        ("127.0.0.1:5000/a/b/c:Tag_1.0-x", "127.0.0.1:5000", "a/b/c", "Tag_1.0-x", None),
        ("[::1]:5000/app:v1", "[::1]:5000", "app", "v1", None),
        ("[::1]/app", "[::1]", "app", None, None),
        (
            "Registry.Example.COM/app",
            "Registry.Example.COM",
            "app",
            None,
            None,
        ),  # hosts may be any case
        ("a__b/c--d/e.f_g:_", None, "a__b/c--d/e.f_g", "_", None),
        ("my-reg.local:5000/x", "my-reg.local:5000", "x", None, None),
    ],
)
def test_parse(
    text: str, registry: str | None, repository: str, tag: str | None, digest: str | None
) -> None:
    reference = Reference.parse(text)
    assert (reference.registry, reference.repository, reference.tag, reference.digest) == (
        registry,
        repository,
        tag,
        digest,
    )
    assert str(reference) == text


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "it is empty"),
        ("Team/app", "repository 'Team/app' must be lowercase"),
        ("registry.example.com/Team/app", "repository 'Team/app' must be lowercase"),
        ("app:", "tag '' must be"),
        ("app:-v1", "tag '-v1' must be"),
        ("app:.v1", "tag '.v1' must be"),
        ("app:" + "a" * 129, "must be 1-128"),
        ("app:v1:v2", "repository 'app:v1' must be"),
        ("app@sha256:abc", "digest 'sha256:abc' must be"),
        ("app@sha512:" + "ab" * 64, "must be 'sha256:'"),
        ("app@" + DIGEST.upper(), "64 lowercase hex"),
        ("registry.example.com/", "repository '' must be"),
        ("registry.example.com//app", "repository '/app' must be"),
        ("app/", "repository 'app/' must be"),
        ("a..b", "repository 'a..b' must be"),
        ("a-/b", "repository 'a-/b' must be"),
        ("my_registry:5000/app", "registry 'my_registry:5000' is not a host name"),
        ("registry.example.com:port/app", "registry 'registry.example.com:port' is not"),
        ("-bad.example.com/app", "registry '-bad.example.com' is not"),
        ("[1::2::3]:5000/app", "invalid IPv6 address"),
        ("app@" + DIGEST + "@" + DIGEST, "digest"),
        ("r.io/" + "a" * 251, "longer than 255 characters"),
    ],
)
def test_invalid_references_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        Reference.parse(text)
    assert str(raised.value).startswith(f"invalid image reference {text!r}: ")
    assert message in str(raised.value)


def test_longest_name_is_accepted() -> None:
    assert Reference.parse("r.io/" + "a" * 250).name == "r.io/" + "a" * 250


def test_construction_validates_and_formats() -> None:
    reference = Reference("127.0.0.1:5000", "team/app", tag="v1")
    assert reference.name == "127.0.0.1:5000/team/app"
    assert str(reference) == "127.0.0.1:5000/team/app:v1"
    assert (
        str(Reference("127.0.0.1:5000", "team/app", digest=DIGEST))
        == f"127.0.0.1:5000/team/app@{DIGEST}"
    )
    assert Reference(None, "app").name == "app"
    with pytest.raises(ValueError, match="must be lowercase"):
        Reference("r.io", "App")
    with pytest.raises(ValueError, match="is not a host name"):
        Reference("bad host", "app")


@pytest.mark.parametrize(
    "component, expected",
    [
        ("localhost", True),
        ("registry.example.com", True),
        ("host:5000", True),
        ("[::1]", True),
        ("team", False),
    ],
)
def test_registry_detection(component: str, expected: bool) -> None:
    assert is_registry_component(component) is expected


# The distribution spec's grammar (distribution/reference/regexp.go), written out by hand:
#   tag            [\w][\w.-]{0,127}                      (\w: ASCII letters, digits, `_`)
#   path-component [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
#   domain         component(\.component)*(:port)?, component [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?
#   digest         here only sha256: 64 lowercase hex digits
@pytest.mark.parametrize(
    "validate, value, reason",
    [
        (validate_tag, "latest", None),
        (validate_tag, "_", None),
        (validate_tag, "1.0.0-rc_1", None),
        (validate_tag, "V" + "-" * 127, None),
        (validate_tag, "a" * 128, None),
        (validate_tag, "a" * 129, "must be 1-128"),
        (validate_tag, "", "must be 1-128"),
        (validate_tag, ".hidden", "not starting with '.' or '-'"),
        (validate_tag, "-rc", "not starting with '.' or '-'"),
        (validate_tag, "a+b", "must be 1-128"),
        (validate_tag, "v1/x", "must be 1-128"),
        (validate_tag, "caf\u00e9", "must be 1-128"),  # \w is ASCII in the grammar
        (validate_repository, "app", None),
        (validate_repository, "team/app/x9", None),
        (validate_repository, "a.b_c__d-e---f", None),
        (validate_repository, "App", "must be lowercase"),
        (validate_repository, "team/App", "must be lowercase"),
        (validate_repository, "a___b", "'/'-separated components"),  # `_` or `__`, not three
        (validate_repository, "a._b", "'/'-separated components"),  # one separator at a time
        (validate_repository, "_a", "'/'-separated components"),
        (validate_repository, "a-", "'/'-separated components"),
        (validate_repository, "a//b", "'/'-separated components"),
        (validate_repository, "/a", "'/'-separated components"),
        (validate_repository, "a b", "'/'-separated components"),
        (validate_repository, "", "'/'-separated components"),
        (validate_registry, "localhost", None),
        (validate_registry, "localhost:5000", None),
        (validate_registry, "Registry.Example.com:443", None),
        (validate_registry, "a-b.c", None),
        (validate_registry, "10.0.0.1:5000", None),
        (validate_registry, "[fe80::1]:5000", None),
        (validate_registry, "a_b.io", "is not a host name"),
        (validate_registry, "a-.io", "is not a host name"),
        (validate_registry, "r.io:", "is not a host name"),
        (validate_registry, "r.io:https", "is not a host name"),
        (validate_registry, "https://r.io", "is not a host name"),
        (validate_registry, "[12345::1]", "invalid IPv6 address"),
        (validate_registry, "[fe80::g]", "is not a host name"),
        (validate_digest, DIGEST, None),
        (validate_digest, "sha256:" + "a" * 63, "64 lowercase hex"),
        (validate_digest, "sha256:" + "A" * 64, "64 lowercase hex"),
        (validate_digest, "sha512:" + "a" * 128, "must be 'sha256:'"),
        (validate_digest, "a" * 64, "must be 'sha256:'"),
    ],
)
def test_validators_follow_the_grammar(
    validate: Callable[[str], None], value: str, reason: str | None
) -> None:
    if reason is None:
        validate(value)
        return
    with pytest.raises(ValueError) as raised:
        validate(value)
    assert repr(value) in str(raised.value) and reason in str(raised.value), str(raised.value)


@pytest.mark.parametrize(
    "text, name",
    [
        ("app", "app"),
        ("app:v1", "app"),
        ("team/app:v1@" + DIGEST, "team/app"),
        ("localhost:5000/app", "localhost:5000/app"),  # a port, not a tag
        ("localhost:5000/app:v1", "localhost:5000/app"),
        ("[::1]:5000/team/app:latest", "[::1]:5000/team/app"),
        ("Team/App:V1", "Team/App"),  # unvalidated: for a message suggesting the pinned form
    ],
)
def test_name_without_tag(text: str, name: str) -> None:
    assert name_without_tag(text) == name
