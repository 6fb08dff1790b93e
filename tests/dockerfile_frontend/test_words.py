"""Docker's word processing, table-driven (cases follow the Dockerfile reference)."""
from __future__ import annotations

import pytest

from hostprocess.dockerfile.words import WordError, expand

ENV = {"NAME": "agent", "EMPTY": "", "Path": "C:\\Windows"}


@pytest.mark.parametrize(
    "word, escape, expected",
    [
        ("plain", "\\", "plain"),
        ('"double quoted"', "\\", "double quoted"),
        ("'single $NAME'", "\\", "single $NAME"),
        ("$NAME", "\\", "agent"),
        ("${NAME}.exe", "\\", "agent.exe"),
        ("$NAME$NAME", "\\", "agentagent"),
        ("pre-$MISSING-post", "\\", "pre--post"),
        ("${MISSING:-fallback}", "\\", "fallback"),
        ("${EMPTY:-fallback}", "\\", "fallback"),
        ("${EMPTY-fallback}", "\\", ""),
        ("${NAME:+set}", "\\", "set"),
        ("${EMPTY:+set}", "\\", ""),
        ("${EMPTY+set}", "\\", "set"),
        ("${MISSING:-$NAME}", "\\", "agent"),
        ("$path", "\\", "C:\\Windows"),  # Windows: names compare case-insensitively
        ("\\$NAME", "\\", "$NAME"),
        ("C:\\\\app", "\\", "C:\\app"),
        ("C:\\app", "\\", "C:app"),  # the default escape eats an unquoted backslash
        ('"C:\\app"', "\\", "C:\\app"),  # ...but not inside double quotes
        ('"C:\\Windows\\v1.0\\;"', "\\", "C:\\Windows\\v1.0\\;"),
        ('"a\\"b"', "\\", 'a"b'),
        ("C:\\app", "`", "C:\\app"),  # `# escape=`` keeps backslashes
        ("`$NAME", "`", "$NAME"),
        ('"x`"y"', "`", 'x"y'),
        ("$", "\\", "$"),
        ("a$-b", "\\", "a$-b"),
        ("it's", "\\", None),
    ],
)
def test_expand(word: str, escape: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(WordError, match="unterminated single quote"):
            expand(word, ENV, escape)
    else:
        assert expand(word, ENV, escape) == expected


@pytest.mark.parametrize("word", ['"open', "${NAME", "${NAME:?err}", "${}"])
def test_refused_words(word: str) -> None:
    with pytest.raises(WordError):
        expand(word, ENV)
