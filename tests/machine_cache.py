"""What tests provision once per machine (BuildGrid's virtualenv, Bazel's remote worker, the
npm verifier's packages): a directory under `$HOSTPROCESS_CACHE_DIR`, named by the digest of
what it is made from, built under a lock that concurrent test processes wait on."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Callable


def cache_dir() -> Path:
    configured = os.environ.get("HOSTPROCESS_CACHE_DIR")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "hostprocess"


def provisioned_once(name: str, digest: str, build: Callable[[Path], None]) -> Path:
    """`cache_dir()/<name>-<digest[:16]>`, made by `build(directory)` unless a previous
    complete build is there; `build` starts from a directory that does not exist."""
    directory = cache_dir() / f"{name}-{digest[:16]}"
    stamp = directory / ".complete"
    if stamp.is_file():
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.is_file():
            build(directory)
            stamp.touch()
    return directory
