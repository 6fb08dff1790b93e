"""The image-test runner: its own package, shipped only in the runner's PEX (not the tool's)."""
