"""Entry point of the sandboxed parser PEX: `parse DOCKERFILE` or `fetch URL SHA256 OUT`."""

from __future__ import annotations

import json
import sys
from urllib.error import URLError

from hostprocess.dockerfile.fetch import ChecksumMismatch, fetch
from hostprocess.dockerfile.parse import ParseError, parse_text


def main() -> None:
    command, *args = sys.argv[1:]
    if command == "parse":
        (path,) = args
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            json.dump(parse_text(text), sys.stdout)
        except ParseError as e:
            print(f"{path}: {e}", file=sys.stderr)
            sys.exit(2)
    elif command == "fetch":
        url, sha256, out = args
        try:
            fetch(url, sha256, out)
        except (ChecksumMismatch, URLError, OSError) as e:
            print(str(e), file=sys.stderr)
            sys.exit(2)
    else:
        sys.exit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
