"""Where an ADD/COPY puts each context file, by Docker's rules.

A file source lands at the destination (or inside it, when the destination is a
directory); a directory source's *contents* land inside the destination; wildcards
(`*`, `?`, `[...]`, matched one path segment at a time as Go's `filepath.Match` does) may
match files and directories alike. Several sources need a directory destination.
"""

from __future__ import annotations

import posixpath
import re
from fnmatch import fnmatchcase
from typing import Sequence

from hostprocess.dockerfile.translate import Copy, DockerfileError, Plan

WILDCARD_RE = re.compile(r"[*?\[]")


def _matches(pattern: str, context_files: Sequence[str]) -> list[str]:
    """Files and directories (as prefixes of files) whose path matches `pattern`."""
    parts = pattern.split("/")
    found: dict[str, None] = {}
    for path in context_files:
        segments = path.split("/")
        if len(segments) < len(parts):
            continue
        if all(fnmatchcase(s, p) for s, p in zip(segments, parts)):
            found["/".join(segments[: len(parts)])] = None
    return sorted(found)


def _under(directory: str, context_files: Sequence[str]) -> list[str]:
    prefix = f"{directory}/" if directory else ""
    return [f for f in context_files if f.startswith(prefix)]


def place(copy: Copy, context_files: Sequence[str]) -> list[tuple[str, str]]:
    """(context file, destination under C:\\) pairs for one ADD/COPY, in a stable order."""
    files = set(context_files)
    matched: list[str] = []
    for source in copy.sources:
        hits = _matches(source, context_files) if WILDCARD_RE.search(source) else [source]
        hits = [h for h in hits if h in files or _under(h, context_files)]
        if not hits:
            raise DockerfileError(
                copy.line,
                f"`{copy.text}`: the source `{source}` matches no file in the build context.",
            )
        matched.extend(hits)
    single_file = len(matched) == 1 and matched[0] in files
    if not copy.into_directory and not single_file and len(matched) > 1:
        raise DockerfileError(
            copy.line,
            f"`{copy.text}` copies several files, so its destination must be a directory: end "
            f"it with `/` (or `\\`).",
        )
    pairs: dict[str, str] = {}
    for hit in matched:
        if hit in files:
            target = (
                posixpath.join(copy.destination, posixpath.basename(hit))
                if copy.into_directory
                else copy.destination
            )
            pairs[target] = hit  # a later source replaces an earlier one at the same path
            continue
        prefix = f"{hit}/" if hit else ""
        for path in _under(hit, context_files):
            pairs[posixpath.join(copy.destination, path[len(prefix) :])] = path
    return sorted(((source, dest) for dest, source in pairs.items()), key=lambda p: p[1])


def relative_to(directory: str, paths: Sequence[str]) -> list[str]:
    """`paths` under `directory` (build-root relative), relative to it."""
    prefix = f"{directory}/" if directory else ""
    return [p[len(prefix) :] for p in paths if p.startswith(prefix)]


def named_files(plan: Plan, context_files: Sequence[str]) -> list[str]:
    """The context files some ADD/COPY of `plan` names (a step that matches nothing is
    skipped here: building the image reports it, with the fix)."""
    wanted: set[str] = set()
    for step in plan.steps:
        if isinstance(step, Copy):
            try:
                wanted.update(source for source, _ in place(step, context_files))
            except DockerfileError:
                continue
    return sorted(wanted)
