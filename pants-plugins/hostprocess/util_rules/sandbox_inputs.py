"""A large layer's tree as immutable inputs, so that a small change re-materialises little.

Pants 2.17 writes every input file into a process's sandbox, about 0.6 ms per file on two
cores, and it does so again whenever any file of the tree changes: a one-script change in a
2,000-file layer spent 1.5 s there. Inputs passed as `immutable_input_digests` are instead
materialised once per pantsd (per distinct digest) and linked into each sandbox. So the tree
goes in as whole subtrees of at most `MAX_FILES` small files each (only a changed subtree is
written again), plus the files that sit directly in directories too large to take whole and
every file of `LARGE_FILE` bytes or more. The cache key
is unchanged: Pants keys a process by the union of all its inputs, the same tree.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import Mapping, Optional

from pants.engine.fs import EMPTY_DIGEST, AddPrefix, CreateDigest, Digest, DigestEntries, FileEntry
from pants.engine.rules import Get, MultiGet
from pants.util.frozendict import FrozenDict

MAX_FILES = 256
LARGE_FILE = 1 << 20


@dataclass(frozen=True)
class TreePlan:
    """Each file's subtree: a directory taken whole ("" is the whole tree), or None (loose)."""

    owners: FrozenDict[str, Optional[str]]

    @property
    def subtrees(self) -> tuple[str, ...]:
        return tuple(sorted({d for d in self.owners.values() if d is not None}))

    @property
    def loose(self) -> tuple[str, ...]:
        return tuple(sorted(path for path, d in self.owners.items() if d is None))


def plan_tree(sizes: Mapping[str, int], max_files: int, large: int) -> TreePlan:
    """Each file goes with its highest ancestor directory holding at most `max_files` files
    (counting subdirectories) and no file of `large` bytes or more; a file with no such
    ancestor stays loose, as every large file does. Subtrees chosen this way never contain one
    another, because a directory's count is at least its children's.

    Large files stay loose because an immutable input outlives the process (it is kept while
    pantsd runs): each changed version of a large binary would stay on disk, for little gain,
    since writing such a file costs far more than the 0.6 ms spent per file."""
    counts: Counter[str] = Counter()
    for path, size in sizes.items():
        weight = 1 if size < large else max_files + 1
        for ancestor in _ancestors(path):
            counts[ancestor] += weight
    return TreePlan(
        FrozenDict(
            {
                path: next((a for a in _ancestors(path) if counts[a] <= max_files), None)
                for path in sizes
            }
        )
    )


def _ancestors(path: str) -> list[str]:
    """The directories above `path`, outermost first: "" (the tree itself), "a", "a/b"..."""
    parts = path.split("/")[:-1]
    return [""] + ["/".join(parts[: i + 1]) for i in range(len(parts))]


@dataclass(frozen=True)
class SandboxTree:
    input_digest: Digest  # the loose files, under the prefix
    immutable_inputs: FrozenDict[str, Digest]  # `<prefix>[/<subtree>]` -> the subtree's files


async def sandbox_tree(tree: Digest, prefix: str) -> SandboxTree:
    """`tree` placed under `prefix` in a sandbox, as whole subtrees and loose files.

    The subtrees' digests are made from the tree's file entries (digests of content already
    stored), one pass over the tree however many subtrees there are."""
    entries = await Get(DigestEntries, Digest, tree)
    files = [e for e in entries if isinstance(e, FileEntry)]
    if len(files) != len(entries):  # symlinks or empty directories: as before
        return SandboxTree(await Get(Digest, AddPrefix(tree, prefix)), FrozenDict())
    sizes = {f.path: f.file_digest.serialized_bytes_length for f in files}
    plan = plan_tree(sizes, MAX_FILES, LARGE_FILE)
    if plan.subtrees == ("",):
        return SandboxTree(EMPTY_DIGEST, FrozenDict({prefix: tree}))
    grouped: dict[str, list[FileEntry]] = {directory: [] for directory in plan.subtrees}
    loose = []
    for entry in files:
        directory = plan.owners[entry.path]
        if directory is None:
            loose.append(dataclasses.replace(entry, path=f"{prefix}/{entry.path}"))
        else:
            relative = entry.path[len(directory) + 1 :]
            grouped[directory].append(dataclasses.replace(entry, path=relative))
    digests = await MultiGet(
        Get(Digest, CreateDigest(group)) for group in [loose, *grouped.values()]
    )
    subtrees = {f"{prefix}/{d}": digest for d, digest in zip(grouped, digests[1:])}
    return SandboxTree(digests[0], FrozenDict(subtrees))
