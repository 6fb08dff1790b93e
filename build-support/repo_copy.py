"""Copies of this repository for a nested `./pants` to build in.

A nested Pants must never share its build root with another Pants (they would share
`.pants.d` and the pantsd lock), so the end-to-end tests and the layer benchmark each run
theirs in a fresh copy of what `./pants` needs.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable

# What `./pants` needs to run the plugin, relative to the repository root.
PANTS_ENTRIES = (
    "pants",
    "pants.toml",
    "build-support",  # pants.toml's reader, which ./pants runs
    "BUILD",
    "LICENSE",
    "cc0-legalcode.txt",
    "3rdparty",
    "pants-plugins",
)


def copy_entries(source: Path, dest: Path, entries: Iterable[str] = PANTS_ENTRIES) -> None:
    """Copy `entries` of the repository at `source` into the directory `dest`, bytecode aside."""
    for entry in entries:
        src = source / entry
        if src.is_dir():
            shutil.copytree(src, dest / entry, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / entry)
