"""Entry point of the sandboxed parser PEX: the commands of `commands.py`."""

from __future__ import annotations

import json
import sys
from typing import Sequence
from urllib.error import URLError

from hostprocess.dockerfile.commands import PROGRAM, FetchCommand, ParseCommand
from hostprocess.dockerfile.fetch import ChecksumMismatch, fetch
from hostprocess.dockerfile.parse import ParseError, parse_text


def main(argv: Sequence[str] | None = None) -> None:
    command = PROGRAM.parse(argv)
    if isinstance(command, ParseCommand):
        path = command.dockerfile
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            json.dump(parse_text(text), sys.stdout)
        except ParseError as e:
            print(f"{path}: {e}", file=sys.stderr)
            sys.exit(2)
    elif isinstance(command, FetchCommand):
        try:
            fetch(command.url, command.sha256, command.out)
        except (ChecksumMismatch, URLError, OSError) as e:
            print(str(e), file=sys.stderr)
            sys.exit(2)


if __name__ == "__main__":
    main()
