"""A Dockerfile's instructions as BuildKit's parser reads them, as JSON-ready data.

Nothing is interpreted here (that is `hostprocess.dockerfile.translate`'s job): this runs
in the sandboxed parser PEX, which has the `dockerfile` package (BuildKit's Go parser).
"""

from __future__ import annotations

from typing import Any

import dockerfile

from hostprocess.dockerfile.directives import escape_character


class ParseError(ValueError):
    """BuildKit's parser refused the file."""


def parse_text(text: str) -> dict[str, Any]:
    """`{"escape": ..., "instructions": [...]}`, each instruction as the parser gives it."""
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as e:
        raise ParseError(str(e)) from None
    instructions = [
        {
            "cmd": c.cmd.upper(),
            "json": c.json,
            "original": c.original,
            "line": c.start_line,
            "flags": list(c.flags),
            "value": list(c.value),
            "heredocs": [h.name for h in c.heredocs],
        }
        for c in commands
    ]
    return {"escape": escape_character(text), "instructions": instructions}
