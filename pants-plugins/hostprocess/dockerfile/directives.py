"""Parser directives (`# escape=`), which BuildKit's parser applies but does not report.

A directive is a `# name=value` comment among the first lines of the file; the first line
that is not one (a blank line, another comment, an instruction) ends them, as in BuildKit.
"""

from __future__ import annotations

import re

DIRECTIVE_RE = re.compile(r"^#[ \t]*([A-Za-z][A-Za-z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
ESCAPE_CHARACTERS = ("\\", "`")


def escape_character(text: str) -> str:
    """The escape character the file declares, or Docker's default backslash."""
    for line in text.lstrip("\ufeff").splitlines():
        match = DIRECTIVE_RE.match(line)
        if not match:
            break
        if match.group(1).lower() == "escape" and match.group(2) in ESCAPE_CHARACTERS:
            return match.group(2)
    return "\\"
