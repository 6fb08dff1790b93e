"""The Dockerfile frontend: a pure core (no Pants imports) and the parser's sandboxed CLI."""
