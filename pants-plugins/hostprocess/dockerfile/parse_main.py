"""Runs in a sandboxed PEX: parse one Dockerfile with BuildKit's parser and print JSON.

The output is `{"escape": ..., "instructions": [...]}`, each instruction as the parser gives
it (name, flags, words, JSON or shell form, line). Nothing is interpreted here: that is
`hostprocess.dockerfile.translate`'s job, outside the sandbox.
"""

from __future__ import annotations

import json
import sys

import dockerfile

from hostprocess.dockerfile.directives import escape_character


def main() -> None:
    path = sys.argv[1]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as e:
        print(f"{path}: {e}", file=sys.stderr)
        sys.exit(2)
    instructions = [
        {
            "cmd": c.cmd.upper(),
            "sub_cmd": c.sub_cmd,
            "json": c.json,
            "original": c.original,
            "line": c.start_line,
            "flags": list(c.flags),
            "value": list(c.value),
            "heredocs": [h.name for h in c.heredocs],
        }
        for c in commands
    ]
    json.dump({"escape": escape_character(text), "instructions": instructions}, sys.stdout)


if __name__ == "__main__":
    main()
