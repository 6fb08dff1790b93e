"""The Dockerfile frontend: pure core (no Pants imports), plus the parser's sandboxed entry point."""
