"""hcsshim's layer-import rules, decided on Linux over each layer's list of tar entries.

A Windows node imports an image's layers one by one, base first (hcsshim's
`baseLayerWriter` for the parentless layer, its legacy writer for the others); a layer
that breaks one of these rules stops the pull with an error that names no file. Each rule
here is one check of `hostprocess.compat.catalog`, reported per layer with the entries
that break it. Names compare exactly where hcsshim compares strings, and case-insensitively
where it asks NTFS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from hostprocess.compat.catalog import Finding
from hostprocess.compat.hives import (
    HIVE_NAMES,
    HIVE_PREFIX_BYTES,
    HiveVerdict,
    hive_path,
    regf_verdict,
)
from hostprocess.oci.windows.paths import fold_case, listed

__all__ = [
    "HIVE_PREFIX_BYTES",
    "LAYER_CHECKS",
    "LayerEntry",
    "LayerListing",
    "hive_caveats",
    "hive_findings",
    "layer_findings",
]

FILES = "Files"
HIVES = "Hives"
UTILITY_VM = "UtilityVM"
ROOTS = (FILES, HIVES, UTILITY_VM)
WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
FILE_KINDS = frozenset({"file", "hardlink", "symlink"})  # what a hard link may point at

LAYER_CHECKS = (
    "layer-roots",
    "layer-whiteouts",
    "layer-duplicates",
    "layer-hard-links",
    "layer-utility-vm",
)


@dataclass(frozen=True)
class LayerEntry:
    """One tar member of a layer, as hcsshim receives it."""

    name: str  # tar member name normalised: no leading "./", no trailing "/"
    kind: str  # "file" | "directory" | "hardlink" | "symlink" | "other"
    link: str = ""  # linkname for hard links and symlinks, normalised the same way


@dataclass(frozen=True)
class LayerListing:
    """A layer's entries in tar order, and the first bytes of the hives it holds."""

    label: str  # how messages name the layer, e.g. "layer 2 of 3 (sha256:abcd…)"
    entries: tuple[LayerEntry, ...]
    # upper-case hive name -> the first bytes (at most HIVE_PREFIX_BYTES) of
    # Files/Windows/System32/config/<name> in this layer
    hives: Mapping[str, bytes] = field(default_factory=dict)


def normalise_name(name: str) -> str:
    """`./Files/a/` -> `Files/a`: tar names as the rules compare them."""
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def layer_findings(layers: Sequence[LayerListing]) -> dict[str, list[Finding]]:
    """Every layer rule over an image's layers, base (`layers[0]`) first: rule name ->
    findings, one per layer that breaks the rule (an empty list: the rule holds)."""
    findings: dict[str, list[Finding]] = {check: [] for check in LAYER_CHECKS}
    below = _LowerLayers()
    for position, layer in enumerate(layers):
        base = position == 0
        problems = {
            "layer-roots": _root_problems(layer),
            "layer-whiteouts": _whiteout_problems(layer, base),
            "layer-duplicates": _duplicate_problems(layer),
            "layer-hard-links": _hard_link_problems(layer, below),
            "layer-utility-vm": _utility_vm_problems(layer, base, below),
        }
        for check, offenders in problems.items():
            if offenders:
                findings[check].append(_finding(check, layer, offenders))
        below.add(layer, base)
    return findings


# --- What each rule reports, and how to fix it ---------------------------------------------

_WORDS: Mapping[str, tuple[str, str]] = {
    "layer-roots": (
        "has tar entries outside Files/, Hives/ and UtilityVM/ (compared case-sensitively, as "
        "hcsshim does)",
        "put the container's files under Files/ (C:\\), registry deltas under Hives/, and "
        "nothing else at the top of the layer",
    ),
    "layer-whiteouts": (
        "has whiteouts hcsshim refuses",
        "delete files only in a layer above the base and only under Files/; leave out "
        "opaque whiteouts (list the deleted entries one by one instead)",
    ),
    "layer-duplicates": (
        "holds a path more than once (names compare case-insensitively, as on NTFS)",
        "write each path once per layer, directories included",
    ),
    "layer-hard-links": (
        "has hard links hcsshim cannot create",
        "link only from Files/ to a file under Files/ that an earlier entry of this layer "
        "or a lower layer holds (and no lower layer deleted), or store a copy of the file",
    ),
    "layer-utility-vm": (
        "has UtilityVM/ entries, but no layer below it has a utility VM",
        "leave UtilityVM/ out: it is for Hyper-V isolation, which HostProcess containers "
        "never use",
    ),
}


def _finding(check: str, layer: LayerListing, offenders: Sequence[str]) -> Finding:
    problem, fix = _WORDS[check]
    lines = [f"{layer.label} {problem}; {fix}:", *listed(offenders)]
    return Finding(check, "\n".join(lines))


def _quoted(name: str) -> str:
    return f"tar entry {name!r}"


# --- layer-roots -----------------------------------------------------------------------------


def _in_tree(name: str, root: str) -> bool:
    """`name` is `root` or under it: hcsshim's `hasPathPrefix`, exact case."""
    return name == root or name.startswith(root + "/")


def _root_problems(layer: LayerListing) -> list[str]:
    """Entries hcsshim adds as files or directories; it takes whiteouts and hard links
    apart first, and their own rules say where those may be."""
    return [
        _quoted(entry.name)
        for entry in layer.entries
        if entry.kind != "hardlink"
        and not is_whiteout(entry.name)
        and not any(_in_tree(entry.name, root) for root in ROOTS)
    ]


# --- layer-whiteouts -------------------------------------------------------------------------


def _split(name: str) -> tuple[str, str]:
    directory, _, base = name.rpartition("/")
    return directory, base


def is_whiteout(name: str) -> bool:
    return _split(name)[1].startswith(WHITEOUT_PREFIX)


def whited_out(name: str) -> str:
    """`Files/a/.wh.b` -> `Files/a/b`: the path a whiteout deletes."""
    directory, base = _split(name)
    target = base[len(WHITEOUT_PREFIX) :]
    return f"{directory}/{target}" if directory else target


def _whiteout_problems(layer: LayerListing, base: bool) -> list[str]:
    problems = []
    for entry in layer.entries:
        if not is_whiteout(entry.name):
            continue
        reason = _whiteout_reason(entry.name, base)
        if reason:
            problems.append(f"{_quoted(entry.name)}: {reason}")
    return problems


def _whiteout_reason(name: str, base: bool) -> str | None:
    if _split(name)[1] == OPAQUE_WHITEOUT:
        return (
            "an opaque whiteout, which hcsshim does not handle: it would record a tombstone "
            "for a file named '.wh..opq' and leave the directory's contents in place"
        )
    if base:
        return "the base layer cannot have tombstones (hcsshim's baseLayerWriter refuses it)"
    if not whited_out(name).startswith(FILES + "/"):
        return "a tombstone outside Files/ (hcsshim: invalid tombstone)"
    return None


# --- layer-duplicates ------------------------------------------------------------------------


def _duplicate_problems(layer: LayerListing) -> list[str]:
    groups: dict[str, list[str]] = {}
    for entry in layer.entries:
        groups.setdefault(fold_case(entry.name), []).append(entry.name)
    return [_duplicate_words(names) for names in groups.values() if len(names) > 1]


def _duplicate_words(names: list[str]) -> str:
    variants = list(dict.fromkeys(names))
    if len(variants) == 1:
        return f"{_quoted(names[0])} appears {len(names)} times"
    spelled = ", ".join(repr(name) for name in variants)
    return f"tar entries {spelled} are the same path on NTFS ({len(names)} entries)"


# --- Lower layers, as the layers above see them ----------------------------------------------


class _LowerLayers:
    """The layers below the one being checked, stacked: what a hard link may point at and
    whether a utility VM exists. Paths are case-folded, as NTFS finds them."""

    def __init__(self) -> None:
        self.kinds: dict[str, str] = {}  # folded path -> kind
        self.deleted: set[str] = set()  # folded paths a whiteout removed
        self.has_utility_vm = False

    def add(self, layer: LayerListing, base: bool) -> None:
        for entry in layer.entries:
            if _in_tree(entry.name, UTILITY_VM):
                self.has_utility_vm = True
            if is_whiteout(entry.name):
                if not base and _whiteout_reason(entry.name, base) is None:
                    self._delete(fold_case(whited_out(entry.name)))
                continue
            key = fold_case(entry.name)
            self.kinds[key] = entry.kind
            self.deleted.discard(key)

    def _delete(self, key: str) -> None:
        prefix = key + "/"
        for path in [path for path in self.kinds if path == key or path.startswith(prefix)]:
            del self.kinds[path]
        self.deleted.add(key)

    def was_deleted(self, key: str) -> bool:
        """`key` or one of its parent directories was whited out (and not written again)."""
        parts = key.split("/")
        return any("/".join(parts[:depth]) in self.deleted for depth in range(1, len(parts) + 1))


# --- layer-hard-links ------------------------------------------------------------------------


def _hard_link_problems(layer: LayerListing, below: _LowerLayers) -> list[str]:
    earlier: dict[str, str] = {}  # exact name -> kind: hcsshim's list of added files
    problems = []
    for entry in layer.entries:
        if entry.kind == "hardlink":
            reason = _hard_link_reason(entry, earlier, below)
            if reason:
                problems.append(f"{_quoted(entry.name)} -> {entry.link!r}: {reason}")
        earlier[entry.name] = entry.kind
    return problems


def _hard_link_reason(
    entry: LayerEntry, earlier: Mapping[str, str], below: _LowerLayers
) -> str | None:
    if not entry.name.startswith(FILES + "/"):
        return "the link itself is outside Files/ (hcsshim: invalid hard link in layer)"
    if not entry.link.startswith(FILES + "/"):
        return "its target is outside Files/ (hcsshim: invalid hard link in layer)"
    # hcsshim looks the target up in its list of this layer's entries (exact names), then
    # on the lower layers' NTFS volumes (any case).
    kind = earlier.get(entry.link) or below.kinds.get(fold_case(entry.link))
    if kind in FILE_KINDS:
        return None
    if kind is not None:
        return f"its target is a {kind}, not a file"
    if below.was_deleted(fold_case(entry.link)):
        return "its target was deleted by a whiteout in a lower layer"
    return "no earlier entry of this layer nor any lower layer holds its target"


# --- layer-utility-vm ------------------------------------------------------------------------


def _utility_vm_problems(layer: LayerListing, base: bool, below: _LowerLayers) -> list[str]:
    if base or below.has_utility_vm:
        return []
    return [_quoted(entry.name) for entry in layer.entries if _in_tree(entry.name, UTILITY_VM)]


# --- base-hives ------------------------------------------------------------------------------


def hive_findings(base: LayerListing) -> list[Finding]:
    """The `base-hives` check: the base layer holds the five hives, each a valid regf file."""
    problems = [f"{hive_path(name)} {problem}" for name, problem in _hive_problems(base) if problem]
    if not problems:
        return []
    lines = [
        f"{base.label} (the base layer) must hold the five registry hives, each a valid regf "
        "file; use hostprocess's built-in base layer or hives Windows wrote "
        "(hcsshim's ConvertToBaseLayer also writes valid empty ones):",
        *listed(problems),
    ]
    return [Finding("base-hives", "\n".join(lines))]


def hive_caveats(base: LayerListing) -> list[str]:
    """What `hive_findings` could not check in the bytes it was given (not a failure)."""
    return [
        f"{hive_path(name)}: {verdict.unchecked}"
        for name, verdict in _hive_verdicts(base)
        if verdict.unchecked
    ]


def _hive_problems(base: LayerListing) -> Iterable[tuple[str, str | None]]:
    for name, verdict in _hive_verdicts(base):
        yield name, verdict.problem


def _hive_verdicts(base: LayerListing) -> Iterable[tuple[str, HiveVerdict]]:
    for name in HIVE_NAMES:
        data = base.hives.get(name)
        if data is None:
            yield name, HiveVerdict("is missing: a parentless Windows layer must hold it")
        else:
            yield name, regf_verdict(data[:HIVE_PREFIX_BYTES])
