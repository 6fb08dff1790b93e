"""The paths an image holds, compared as Windows compares them (case-insensitively)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Iterable, Mapping

from hostprocess.oci.windows.paths import windows_path

MAX_NEAREST = 8


@dataclass(frozen=True)
class ImageFiles:
    """Files and directories relative to `C:\\`, `/`-separated; keys are lower-case."""

    files: Mapping[str, str]  # lower-case path -> the path as the image holds it
    directories: Mapping[str, str]

    @classmethod
    def of(cls, files: Iterable[str], directories: Iterable[str] = ()) -> ImageFiles:
        """Every parent of a file is a directory too, whether or not it has its own entry."""
        held = {path.lower(): path for path in files if path}
        dirs = {path.lower(): path for path in directories if path}
        for path in held.values():
            for parent in PurePosixPath(path).parents:
                if str(parent) != ".":
                    dirs.setdefault(str(parent).lower(), str(parent))
        return cls(held, dirs)

    def has_file(self, relative: str) -> bool:
        return relative.lower() in self.files

    def has(self, relative: str) -> bool:
        key = relative.lower()
        return key in self.files or key in self.directories

    def nearest(self, relative: str, *, directories: bool = False) -> tuple[str, ...]:
        """Paths with names like a missing one's anywhere, then the contents of its closest
        existing directory, as `C:\\` paths: files, and directories too if asked."""
        pool = {**self.files, **self.directories} if directories else dict(self.files)
        wanted = relative.lower()
        similar = difflib.get_close_matches(wanted, list(pool), n=MAX_NEAREST, cutoff=0.6)
        parent = PurePosixPath(wanted).parent
        while str(parent) != "." and str(parent) not in self.directories:
            parent = parent.parent
        prefix = "" if str(parent) == "." else f"{parent}/"
        siblings = sorted(
            key for key in pool if key.startswith(prefix) and "/" not in key[len(prefix) :]
        )
        keys = list(dict.fromkeys([*similar, *siblings]))[:MAX_NEAREST]
        return tuple(windows_path(pool[key]) for key in keys)

    def nearest_note(self, relative: str) -> str:
        return f"nearest files the image holds: {', '.join(self.nearest(relative)) or '(none)'}"
