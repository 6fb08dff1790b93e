"""Image references: `[registry[:port]/]repository[:tag][@sha256:<hex>]`.

The grammar is the distribution project's: lowercase path components joined by `/`, a
registry only when the first component looks like a host (it has a `.` or a `:`, or is
`localhost`), tags of at most 128 word characters, `.` and `-`. Publishing pushes to an
explicit registry, so a reference without one keeps `registry=None` rather than gaining
Docker Hub's `docker.io/library/` defaults.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from hostprocess.oci.types import validate_digest

NAME_MAX_LENGTH = 255
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?")
_IPV6_DOMAIN = re.compile(r"\[([0-9a-fA-F:.]+)\](?::[0-9]+)?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # the grammar's \w is ASCII-only


@dataclass(frozen=True)
class Reference:
    """A parsed image reference; `str()` gives it back in canonical form."""

    registry: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        if self.registry is not None:
            validate_registry(self.registry)
        validate_repository(self.repository)
        if self.tag is not None:
            validate_tag(self.tag)
        if self.digest is not None:
            validate_digest(self.digest)
        if len(self.name) > NAME_MAX_LENGTH:
            raise ValueError(
                f"image name {self.name!r} is longer than {NAME_MAX_LENGTH} characters"
            )

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Split `text` into its parts, raising ValueError that quotes it if any part is invalid."""
        try:
            return cls._split(text)
        except ValueError as error:
            raise ValueError(f"invalid image reference {text!r}: {error}") from None

    @classmethod
    def _split(cls, text: str) -> Reference:
        if not text:
            raise ValueError("it is empty")
        name, at, digest = text.partition("@")
        name, tag = _split_tag(name)
        first, has_slash, rest = name.partition("/")
        if has_slash and is_registry_component(first):
            return cls(first, rest, tag, digest if at else None)
        return cls(None, name, tag, digest if at else None)

    @property
    def name(self) -> str:
        """`registry/repository`, or just the repository when no registry was given."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def _split_tag(name: str) -> tuple[str, str | None]:
    """`name[:tag]` -> (name, tag): a ':' after the last '/' starts a tag, not a port."""
    colon, slash = name.rfind(":"), name.rfind("/")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, None


def name_without_tag(text: str) -> str:
    """`text` without its tag and digest, unvalidated: to suggest a reference pinned by digest."""
    return _split_tag(text.partition("@")[0])[0]


def is_registry_component(component: str) -> bool:
    """Docker's rule for whether a reference's first component names a registry host."""
    return "." in component or ":" in component or component == "localhost"


def validate_registry(registry: str) -> None:
    """Raise ValueError saying why `registry` is not a `host[:port]` (name, IPv4 or [IPv6])."""
    ipv6 = _IPV6_DOMAIN.fullmatch(registry)
    if ipv6:
        try:
            ipaddress.IPv6Address(ipv6.group(1))
        except ValueError:
            raise ValueError(f"registry {registry!r} has an invalid IPv6 address") from None
    elif not _DOMAIN.fullmatch(registry):
        raise ValueError(
            f"registry {registry!r} is not a host name or address with an optional :port"
        )


def validate_repository(repository: str) -> None:
    """Raise ValueError saying why `repository` is not '/'-joined lowercase path components."""
    if _REPOSITORY.fullmatch(repository):
        return
    if _REPOSITORY.fullmatch(repository.lower()):
        raise ValueError(f"repository {repository!r} must be lowercase")
    raise ValueError(
        f"repository {repository!r} must be '/'-separated components of lowercase letters and "
        "digits, joined within a component by '.', '_', '__' or dashes"
    )


def validate_tag(tag: str) -> None:
    """Raise ValueError saying why `tag` is not 1-128 ASCII word characters, '.' and '-'."""
    if not _TAG.fullmatch(tag):
        raise ValueError(
            f"tag {tag!r} must be 1-128 letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-'"
        )
