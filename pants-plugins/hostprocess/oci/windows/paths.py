"""Windows rules for layer destination paths (relative to `C:\\`, '/'-separated).

Windows finds a bad name only when the node imports the layer, and hcsshim then aborts the
whole import, far from the build that made the mistake; so every path is checked here,
before a layer is written. The rules follow Win32's "Naming Files, Paths, and Namespaces"
and CPython's `ntpath.isreserved` (python/cpython issue 95486).

Each problem is a `WindowsPathError` whose `rule` is a stable identifier (see `RULES`).
`find_path_problems` collects them all; `check_paths` raises them and returns the
`PathWarning`s for paths that are valid but long. The time taken grows linearly with the
number of paths, so trees of 10^5 files check in well under a second.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence

SEPARATOR = "/"
WHITEOUT_PREFIX = ".wh."
MAX_COMPONENT_LENGTH = 255  # UTF-16 code units in one name (NTFS)
MAX_PATH = 260  # Win32 limit; it counts the drive, the separators and the terminating NUL
HOST_ROOT = "C:\\hpc\\"
# Without bindflt, hcsshim mounts the image at C:\hpc\<64-hex container id>\ instead: the
# budget leaves room for that longer root, so a path that fits fits under both.
FALLBACK_ROOT_LENGTH = len(HOST_ROOT) + 64 + 1
PATH_BUDGET = MAX_PATH - 1 - FALLBACK_ROOT_LENGTH  # 187 UTF-16 code units
MAX_LISTED = 20  # problems shown in one message; the rest are counted

# Device names are reserved whatever the extension, and Win32 strips spaces before the dot
# ("nul .txt" is NUL). Windows 11 no longer reserves some forms with an extension, but nodes
# run older versions, so every form is refused. CONIN$ and CONOUT$ are console devices that
# CPython's `ntpath.isreserved` refuses too; the superscript digits count as digits.
RESERVED_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{digit}" for port in ("COM", "LPT") for digit in "123456789\u00b9\u00b2\u00b3"}
)
_INVALID_CHARACTER = re.compile(r'[<>:"\\|?*\x00-\x1f]')
# Run on "/" + path + "/", matches every path that may break a rule on its own (and some
# that do not): a quick filter, so that only these paths get the checks of each component.
# Surrogates are in the class because they are not UTF-8; ':' catches drive letters too.
_SUSPECT = re.compile(
    r'[<>:"\\|?*\x00-\x1f\ud800-\udfff]'
    r"|/(?:[./]|(?i:CON|PRN|AUX|NUL|COM|LPT))"  # empty, '.', '..', '.wh.', device names
    r"|[. ]/"  # a trailing period or space
)
_DRIVE = re.compile(r"[A-Za-z]:")

# rule -> (what is wrong, how to fix it): the words of every error and warning message.
RULES: Mapping[str, tuple[str, str]] = {
    "not-utf8": (
        "is not valid UTF-8",
        "rename the source file so that its name is UTF-8",
    ),
    "absolute": (
        "is absolute",
        "make it relative: destinations are relative to C:\\",
    ),
    "drive-letter": (
        "starts with a drive letter",
        "drop the drive: destinations are relative to C:\\",
    ),
    "empty-component": (
        "has an empty component",
        "remove the doubled or trailing '/'",
    ),
    "dot-segment": (
        "has a '.' or '..' component",
        "write the path without '.' and '..'",
    ),
    "whiteout-prefix": (
        "has a name starting with '.wh.'",
        "rename it: OCI layers use the '.wh.' prefix to mark deleted files",
    ),
    "invalid-character": (
        "has a character Windows does not allow in names",
        'rename it without < > : " \\ | ? * or control characters',
    ),
    "trailing-dot-or-space": (
        "has a name ending in a period or a space",
        "rename it: Windows drops the trailing period or space, so the file would change name",
    ),
    "reserved-name": (
        "has a name Windows reserves for a device",
        "rename it: the device names are reserved whatever the extension and letter case",
    ),
    "component-too-long": (
        f"has a name longer than {MAX_COMPONENT_LENGTH} UTF-16 code units",
        "shorten the name",
    ),
    "duplicate": (
        "is given more than once",
        "give each destination one source",
    ),
    "file-is-directory": (
        "is a file and also the directory of other paths",
        "move the file or the paths under it",
    ),
    "case-collision": (
        "differs from another path only in letter case",
        "rename one of them: Windows names are case-insensitive",
    ),
    "long-path": (
        "may be too long for Windows' MAX_PATH",
        "shorten it, or enable long paths (LongPathsEnabled) on every node",
    ),
}


class _Finding(Exception):
    """What errors and warnings share: a rule, the path it concerns, the specifics."""

    def __init__(self, rule: str, path: str, detail: str) -> None:
        super().__init__(rule, path, detail)
        self.rule = rule
        self.path = path
        self.detail = detail

    def __str__(self) -> str:
        return _describe(self.rule, self.path, self.detail)


class WindowsPathError(_Finding, ValueError):
    """A destination Windows cannot hold; match on `rule`, not on the message."""

    @property
    def problems(self) -> tuple[WindowsPathError, ...]:
        """Every problem this error reports: itself, unless it groups several."""
        return (self,)


class WindowsPathErrorGroup(WindowsPathError):
    """Several problems raised at once, so one build reports them all.

    `rule`, `path` and `detail` are the first problem's, so callers that handle a single
    `WindowsPathError` keep working.
    """

    def __init__(self, problems: Sequence[WindowsPathError]) -> None:
        first = problems[0]
        super().__init__(first.rule, first.path, first.detail)
        self._problems = tuple(problems)

    @property
    def problems(self) -> tuple[WindowsPathError, ...]:
        return self._problems

    def __str__(self) -> str:
        lines = [f"{len(self._problems)} destination paths break Windows path rules:"]
        lines += listed([str(problem) for problem in self._problems])
        return "\n".join(lines)


class PathWarning(_Finding, UserWarning):
    """A valid destination that works only where Windows long paths are enabled.

    A `UserWarning`, so that it can be passed to `warnings.warn` as it is.
    """


def _describe(rule: str, path: str, detail: str) -> str:
    """The message: the path (repr, so control characters stay visible), the rule, the fix."""
    problem, fix = RULES[rule]
    return f"path {path!r} {problem} ({detail}); {fix} [{rule}]"


def check_paths(paths: Iterable[str]) -> list[PathWarning]:
    """Raise the problems of `paths` (grouped if several); return the long-path warnings."""
    paths = list(paths)
    problems = find_path_problems(paths)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise WindowsPathErrorGroup(problems)
    return find_path_warnings(paths)


def find_path_problems(paths: Iterable[str]) -> list[WindowsPathError]:
    """Every problem of `paths`, sorted by path so the result ignores input order.

    A path that breaks a rule on its own is left out of the checks between paths: its
    components may not even be names.
    """
    counts = Counter(paths)
    problems = [problem for path in counts for problem in path_problems(path)]
    invalid = {problem.path for problem in problems}
    valid = Counter({path: count for path, count in counts.items() if path not in invalid})
    problems += _set_problems(valid)
    return sorted(problems, key=lambda problem: (problem.path, problem.rule, problem.detail))


def find_path_warnings(paths: Iterable[str]) -> list[PathWarning]:
    """Paths over the MAX_PATH budget (see `PATH_BUDGET`); lengths are in UTF-16 units."""
    warnings = []
    for path in dict.fromkeys(paths):
        length = _utf16_length(path)
        if length > PATH_BUDGET:
            warnings.append(PathWarning("long-path", path, _long_path_detail(length)))
    return warnings


def path_problems(path: str) -> list[WindowsPathError]:
    """The rules one path must meet alone: one problem per bad component.

    A path that is not even a relative UTF-8 path reports only that.
    """
    if not _suspect(path):
        return []
    whole = _whole_path_problem(path)
    if whole is not None:
        return [WindowsPathError(whole[0], path, whole[1])]
    found = filter(None, map(_component_problem, path.split(SEPARATOR)))
    return [WindowsPathError(rule, path, detail) for rule, detail in found]


def _suspect(path: str) -> bool:
    """False only for paths that meet every rule of `path_problems`, checked cheaply."""
    if _SUSPECT.search(f"{SEPARATOR}{path}{SEPARATOR}"):
        return True
    # A name of 128 characters may take 256 UTF-16 code units.
    return 2 * max(map(len, path.split(SEPARATOR))) > MAX_COMPONENT_LENGTH


def _whole_path_problem(path: str) -> tuple[str, str] | None:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError as error:
        return "not-utf8", _undecodable(path[error.start], error.start)
    if not path:
        return "empty-component", "the path is empty"
    if path.startswith(SEPARATOR):
        return "absolute", "it starts with '/'"
    if _DRIVE.match(path):
        return "drive-letter", f"it starts with {path[:2]!r}"
    return None


def _undecodable(char: str, index: int) -> str:
    """`os.fsdecode` turns each byte that is not UTF-8 into a surrogate U+DC80-U+DCFF."""
    if "\udc80" <= char <= "\udcff":
        return f"byte 0x{ord(char) - 0xDC00:02x} at character {index} does not decode"
    return f"character {index} is the lone surrogate U+{ord(char):04X}"


def _component_problem(component: str) -> tuple[str, str] | None:
    """The first rule `component` breaks, in the order that best explains the name."""
    if not component:
        return "empty-component", "a name between separators is empty"
    if component in (".", ".."):
        return "dot-segment", f"{component!r} is a component"
    if component.startswith(WHITEOUT_PREFIX):
        return "whiteout-prefix", f"{component!r} starts with {WHITEOUT_PREFIX!r}"
    invalid = _INVALID_CHARACTER.search(component)
    if invalid:
        return "invalid-character", _invalid_character_detail(component, invalid.group())
    if component[-1] in ". ":
        ending = "a period" if component[-1] == "." else "a space"
        return "trailing-dot-or-space", f"{component!r} ends in {ending}"
    device = _device_name(component)
    if device:
        return "reserved-name", f"{component!r} names the device {device}"
    length = _utf16_length(component)
    if length > MAX_COMPONENT_LENGTH:
        return "component-too-long", f"a name is {length} UTF-16 code units long"
    return None


def _invalid_character_detail(component: str, char: str) -> str:
    if char == "\\":
        return f"{component!r} has a backslash; separate directories with '/'"
    if char == ":":
        return f"{component!r} has ':', which Windows reads as naming an alternate data stream"
    return f"{component!r} has {char!r}"


def _device_name(component: str) -> str | None:
    """Win32 matches the part before the first dot, trailing spaces stripped, any case."""
    stem = fold_case(component.partition(".")[0].rstrip(" "))
    return stem if stem in RESERVED_NAMES else None


def _set_problems(counts: Counter[str]) -> list[WindowsPathError]:
    """Problems between paths: duplicates, files used as directories, case collisions."""
    directories = _implied_directories(counts)
    problems = [
        WindowsPathError("duplicate", path, f"{count} times")
        for path, count in counts.items()
        if count > 1
    ]
    problems += [
        WindowsPathError("file-is-directory", path, f"{directories[path]!r} is under it")
        for path in counts
        if path in directories
    ]
    return problems + _case_collisions(counts, directories)


def _implied_directories(files: Iterable[str]) -> dict[str, str]:
    """Every parent directory of `files`, mapped to the first file under it (for messages).

    Walking up stops at a directory already seen, whose own parents are then known too,
    so each directory is visited once however many files it holds. Files are taken in
    sorted order, so that messages do not depend on the order of the input.
    """
    directories: dict[str, str] = {}
    for path in sorted(files):
        end = path.rfind(SEPARATOR)
        while end > 0 and path[:end] not in directories:
            directories[path[:end]] = path
            end = path.rfind(SEPARATOR, 0, end)
    return directories


def _case_collisions(
    files: Collection[str], directories: Mapping[str, str]
) -> list[WindowsPathError]:
    """Names that differ in case only, each reported against the smallest of its group.

    A file and a directory count as well: `a` and `A/b` cannot both exist on NTFS.
    """
    names = set(files).union(directories)
    folded = {name: fold_case(name) for name in names}
    if len(set(folded.values())) == len(names):
        return []
    groups: dict[str, list[str]] = {}
    for name, key in folded.items():
        groups.setdefault(key, []).append(name)
    problems = []
    for group in groups.values():
        if len(group) > 1:
            first, *others = sorted(group)
            problems += [
                WindowsPathError(
                    "case-collision",
                    other,
                    f"{_kind(other, files, directories)} and {_kind(first, files, directories)}"
                    " are the same name on Windows",
                )
                for other in others
            ]
    return problems


def _kind(name: str, files: Collection[str], directories: Mapping[str, str]) -> str:
    if name in files:
        return f"file {name!r}"
    return f"the directory {name!r} that {directories[name]!r} implies"


def fold_case(name: str) -> str:
    """Upper-case each character alone, approximating NTFS's one-to-one upcase table.

    Not `casefold()`: it maps 'ß' to 'ss', yet NTFS keeps 'straße' and 'STRASSE' apart.
    Characters whose upper case is longer than one character stay as they are.
    """
    upper = name.upper()
    if len(upper) == len(name):  # every character mapped to one character
        return upper
    return "".join(char if len(folded := char.upper()) != 1 else folded for char in name)


def _utf16_length(text: str) -> int:
    """Windows counts UTF-16 code units: characters beyond U+FFFF take two."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _long_path_detail(length: int) -> str:
    full = FALLBACK_ROOT_LENGTH + length + 1
    return (
        f"it is {length} UTF-16 code units long; under hcsshim's fallback root"
        f" {HOST_ROOT}<container id>\\ that makes {full} characters with the terminating NUL,"
        f" over MAX_PATH's {MAX_PATH}; paths up to {PATH_BUDGET} fit"
    )


def windows_path(path: str) -> str:
    """`a/b.txt` -> `C:\\a\\b.txt`: a layer path as the container sees it."""
    return "C:\\" + path.replace(SEPARATOR, "\\")


def listed(lines: Sequence[str]) -> list[str]:
    """The first `MAX_LISTED` lines, indented, then `... and N more`: a message stays readable."""
    shown = [f"  {line}" for line in lines[:MAX_LISTED]]
    if len(lines) > MAX_LISTED:
        shown.append(f"  ... and {len(lines) - MAX_LISTED} more")
    return shown
