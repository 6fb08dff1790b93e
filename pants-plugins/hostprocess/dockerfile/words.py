"""Docker's word processing: quote removal, escapes and `$VAR` substitution in one word.

BuildKit's parser hands back words as written (quotes and `$NAME` included); the builder
then processes each word of ADD, COPY, ENV, LABEL, ARG, FROM, WORKDIR and USER with its
shell-like lexer. This module does the same, following the Dockerfile reference: single
quotes are literal, inside double quotes the escape character escapes only `"`, `$` and
itself, outside quotes it escapes any character, and `${NAME:-word}`, `${NAME-word}`,
`${NAME:+word}` and `${NAME+word}` behave as in POSIX shells. Variable names compare
case-insensitively, as Windows environments do.
"""

from __future__ import annotations

import re
from typing import Mapping

NAME_START = re.compile(r"[A-Za-z_]")
NAME_CHAR = re.compile(r"[A-Za-z0-9_]")


class WordError(ValueError):
    """A word Docker's lexer would reject (an unterminated quote or `${`)."""


def lookup(env: Mapping[str, str], name: str) -> str | None:
    if name in env:
        return env[name]
    folded = name.upper()
    for key, value in env.items():
        if key.upper() == folded:
            return value
    return None


class _Lexer:
    def __init__(self, word: str, env: Mapping[str, str], escape: str) -> None:
        self.word = word
        self.pos = 0
        self.env = env
        self.escape = escape

    def peek(self) -> str:
        return self.word[self.pos] if self.pos < len(self.word) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1
        return ch

    def process(self, stop: str = "") -> str:
        out: list[str] = []
        while self.pos < len(self.word):
            ch = self.peek()
            if stop and ch == stop:
                self.pos += 1
                return "".join(out)
            if ch == "'":
                out.append(self.single_quoted())
            elif ch == '"':
                out.append(self.double_quoted())
            elif ch == "$":
                out.append(self.variable())
            else:
                self.pos += 1
                if ch == self.escape and self.pos < len(self.word):
                    ch = self.next()
                out.append(ch)
        if stop:
            raise WordError(f"unterminated `${{` in {self.word!r}")
        return "".join(out)

    def single_quoted(self) -> str:
        self.pos += 1
        end = self.word.find("'", self.pos)
        if end < 0:
            raise WordError(f"unterminated single quote in {self.word!r}")
        text = self.word[self.pos : end]
        self.pos = end + 1
        return text

    def double_quoted(self) -> str:
        self.pos += 1
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise WordError(f"unterminated double quote in {self.word!r}")
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch == "$":
                out.append(self.variable())
                continue
            self.pos += 1
            if ch == self.escape and self.peek() in ('"', "$", self.escape) and self.peek():
                ch = self.next()
            out.append(ch)

    def variable(self) -> str:
        self.pos += 1  # the `$`
        ch = self.peek()
        if ch == "{":
            self.pos += 1
            return self.braced()
        if not NAME_START.fullmatch(ch or "-"):
            return "$"
        start = self.pos
        while self.peek() and NAME_CHAR.fullmatch(self.peek()):
            self.pos += 1
        return lookup(self.env, self.word[start : self.pos]) or ""

    def braced(self) -> str:
        start = self.pos
        while self.peek() and NAME_CHAR.fullmatch(self.peek()):
            self.pos += 1
        name = self.word[start : self.pos]
        if not name:
            raise WordError(f"bad substitution in {self.word!r}")
        value = lookup(self.env, name)
        ch = self.next()
        if ch == "}":
            return value or ""
        colon = ch == ":"
        if colon:
            ch = self.next()
        if ch not in ("-", "+"):
            raise WordError(f"unsupported modifier in `${{{name}...}}` of {self.word!r}")
        word = self.process(stop="}")
        is_set = value is not None and (value != "" or not colon)
        if ch == "-":
            return value if is_set else word  # type: ignore[return-value]
        return word if is_set else ""


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """One Dockerfile word after quote removal and variable substitution."""
    return _Lexer(word, env, escape).process()
