"""`WWW-Authenticate` challenges, parsed as RFC 7235 writes them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_TOKEN = re.compile(r'[^\s,="]+')


@dataclass(frozen=True)
class Challenge:
    """One `WWW-Authenticate` challenge: a lowercase scheme and its parameters."""

    scheme: str
    params: Mapping[str, str]


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """Parse `WWW-Authenticate` header values, which may each hold several challenges.

    Quoted values may contain commas, colons and escaped quotes (a scope such as
    `repository:host:5000/app:pull,push`), so a plain split on ',' or ':' would be wrong.
    """
    challenges: list[tuple[str, dict[str, str]]] = []
    for value in values:
        pos = 0
        while True:
            pos = _skip(value, pos, " \t,")
            if pos >= len(value):
                break
            token = _TOKEN.match(value, pos)
            if token is None:
                pos += 1
                continue
            pos = _skip(value, token.end(), " \t")
            if pos < len(value) and value[pos] == "=" and challenges:
                param, pos = _param_value(value, _skip(value, pos + 1, " \t"))
                challenges[-1][1][token.group().lower()] = param
            else:
                challenges.append((token.group().lower(), {}))
    return [Challenge(scheme, params) for scheme, params in challenges]


def _skip(text: str, pos: int, characters: str) -> int:
    while pos < len(text) and text[pos] in characters:
        pos += 1
    return pos


def _param_value(text: str, pos: int) -> tuple[str, int]:
    """A token or a quoted-string (with backslash escapes) starting at `pos`."""
    if pos < len(text) and text[pos] == '"':
        out, pos = [], pos + 1
        while pos < len(text) and text[pos] != '"':
            if text[pos] == "\\" and pos + 1 < len(text):
                pos += 1
            out.append(text[pos])
            pos += 1
        return "".join(out), pos + 1
    end = pos
    while end < len(text) and text[end] not in " \t,":
        end += 1
    return text[pos:end], end
