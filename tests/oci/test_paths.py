"""Tests for the Windows path rules of layer destinations.

Each rule has a table of paths that break it, written out from Win32's "Naming Files,
Paths, and Namespaces" (reference section 7) rather than derived from the module, plus a
table of paths that Windows accepts, many of them close to a rule's edge.
"""

from __future__ import annotations

import io
import os
import time
import unicodedata
import warnings
from typing import List, Tuple

import pytest

from hostprocess.oci.types import Compression
from hostprocess.oci.windows.layer import LayerFile, write_layer
from hostprocess.oci.windows.paths import (
    RULES,
    PathWarning,
    WindowsPathError,
    WindowsPathErrorGroup,
    check_paths,
    find_path_problems,
    find_path_warnings,
    path_problems,
)

ALL_RULES = {
    "reserved-name",
    "invalid-character",
    "trailing-dot-or-space",
    "case-collision",
    "duplicate",
    "file-is-directory",
    "absolute",
    "dot-segment",
    "empty-component",
    "drive-letter",
    "whiteout-prefix",
    "not-utf8",
    "component-too-long",
}

# (rule, path): each path breaks exactly one rule on its own.
SINGLE_PATH_CASES: List[Tuple[str, str]] = [
    ("reserved-name", "CON"),
    ("reserved-name", "con"),
    ("reserved-name", "Con.tar.gz"),
    ("reserved-name", "nul.txt"),
    ("reserved-name", "tools/NUL"),
    ("reserved-name", "Aux.h"),
    ("reserved-name", "prn.log"),
    ("reserved-name", "COM1"),
    ("reserved-name", "com9.dll"),
    ("reserved-name", "LPT1"),
    ("reserved-name", "lpt5.txt"),
    ("reserved-name", "COM\u00b9"),  # COM¹: Windows reads superscript digits as digits
    ("reserved-name", "com\u00b2.txt"),
    ("reserved-name", "LPT\u00b3"),
    ("reserved-name", "nul .txt"),  # Win32 strips the spaces before the extension
    ("reserved-name", "CON  .tar.gz"),
    ("reserved-name", "CONIN$"),
    ("reserved-name", "conout$.log"),
    ("reserved-name", "aux/file.txt"),  # a directory name is reserved just the same
    ("invalid-character", "a<b"),
    ("invalid-character", "a>b"),
    ("invalid-character", "dir/a:b"),  # an alternate data stream of dir/a
    ("invalid-character", "file.txt:stream"),
    ("invalid-character", 'say"hi"'),
    ("invalid-character", "a\\b"),
    ("invalid-character", "tools\\agent.exe"),
    ("invalid-character", "pipe|name"),
    ("invalid-character", "what?"),
    ("invalid-character", "*.dll"),
    ("invalid-character", "nul\x00byte"),
    ("invalid-character", "a\x01b"),
    ("invalid-character", "tab\there"),
    ("invalid-character", "new\nline"),
    ("invalid-character", "unit\x1fseparator"),
    ("trailing-dot-or-space", "x."),
    ("trailing-dot-or-space", "x "),
    ("trailing-dot-or-space", "dir./file"),
    ("trailing-dot-or-space", "dir /file"),
    ("trailing-dot-or-space", "..."),
    ("trailing-dot-or-space", " "),
    ("trailing-dot-or-space", "name. "),
    ("dot-segment", "."),
    ("dot-segment", ".."),
    ("dot-segment", "./a"),
    ("dot-segment", "a/./b"),
    ("dot-segment", "a/../b"),
    ("empty-component", ""),
    ("empty-component", "a//b"),
    ("empty-component", "a/"),
    ("empty-component", "a/b/"),
    ("absolute", "/"),
    ("absolute", "/abs/file"),
    ("absolute", "//server/share/file"),
    ("drive-letter", "C:/Windows/file"),
    ("drive-letter", "c:file"),
    ("drive-letter", "Z:"),
    ("drive-letter", "a:b"),  # drive A:, relative path b, to Win32
    ("whiteout-prefix", ".wh.foo"),
    ("whiteout-prefix", "dir/.wh.file.txt"),
    ("whiteout-prefix", ".wh..wh..opq"),
    ("not-utf8", os.fsdecode(b"\xff")),
    ("not-utf8", os.fsdecode(b"caf\xe9.txt")),  # Latin-1 from an old filesystem
    ("not-utf8", "dir/" + os.fsdecode(b"\x80abc") + "/file"),
    ("not-utf8", "lone\ud800surrogate"),
    ("component-too-long", "x" * 256),
    ("component-too-long", "dir/" + "y" * 300),
    ("component-too-long", "\U0001f600" * 128),  # 128 characters, 256 UTF-16 code units
    ("component-too-long", "\u00e9" * 256),
]

# (rule, paths, offending path reported by the problem)
MULTI_PATH_CASES: List[Tuple[str, List[str], str]] = [
    ("case-collision", ["x.txt", "X.TXT"], "x.txt"),
    ("case-collision", ["a", "A/b"], "a"),
    ("case-collision", ["A", "a/b"], "a"),
    ("case-collision", ["Tools/a", "tools/b"], "tools"),
    ("case-collision", ["caf\u00e9", "CAF\u00c9"], "caf\u00e9"),
    ("case-collision", ["Stra\u00dfe", "STRA\u00dfE"], "Stra\u00dfe"),  # ß is kept, the rest folds
    ("case-collision", ["\u01c5", "\u01c4"], "\u01c5"),  # titlecase Dž upper-cases to DŽ
    ("duplicate", ["dir/f", "dir/f"], "dir/f"),
    ("duplicate", ["a", "b", "a", "a"], "a"),
    ("file-is-directory", ["a", "a/b"], "a"),
    ("file-is-directory", ["x/y/z/w", "x/y"], "x/y"),
]

GOOD_PATHS = [
    "a",
    "dir/file.txt",
    "Files",
    "hpc/agent.exe",
    "COM0",
    "LPT10",
    "COM",
    "CONSOLE",
    "NULL.txt",
    "xCON",
    "con_1",
    "com1x.txt",
    " CON",  # no stripping of leading spaces in device names
    "a.b.c",
    ".hidden",
    ".wh",
    "wh.file",
    "x.wh.y",
    " leading space",
    "mid dle/na me.txt",
    "\u00dcberwachung/\u65e5\u672c.txt",
    "\U0001f600",
    "a-b",
    "[brackets] (parens) {braces}",
    "100%",
    "semi;colon,comma=equals+plus",
    "dir/.gitignore",
    "C",
    "\x7f",  # DEL is not a control character to Windows
]


# Names at the 255-unit limit are valid, though long enough to need long-path support.
LONGEST_NAMES = ["x" * 255, "dir/" + "\U0001f600" * 127]


def _case_id(value: object) -> str:
    """Short ASCII test ids: some paths are hundreds of characters long."""
    return ascii(value)[:32] if isinstance(value, str) else str(value)


def _only_problem(paths: List[str]) -> WindowsPathError:
    problems = find_path_problems(paths)
    assert len(problems) == 1, [str(problem) for problem in problems]
    return problems[0]


@pytest.mark.parametrize(("rule", "path"), SINGLE_PATH_CASES, ids=_case_id)
def test_single_path_breaks_its_rule(rule: str, path: str) -> None:
    problem = _only_problem([path])
    assert (problem.rule, problem.path) == (rule, path)
    message = str(problem)
    assert repr(path) in message
    assert f"[{rule}]" in message
    assert RULES[rule][0] in message and RULES[rule][1] in message
    assert path_problems(path)[0].rule == rule


@pytest.mark.parametrize(("rule", "path"), SINGLE_PATH_CASES, ids=_case_id)
def test_check_paths_raises_the_rule(rule: str, path: str) -> None:
    with pytest.raises(WindowsPathError) as info:
        check_paths(["fine/file.txt", path])
    assert (info.value.rule, info.value.path) == (rule, path)
    assert isinstance(info.value, ValueError)
    assert repr(path) in str(info.value)


@pytest.mark.parametrize(("rule", "paths", "offender"), MULTI_PATH_CASES, ids=_case_id)
def test_paths_together_break_a_rule(rule: str, paths: List[str], offender: str) -> None:
    problem = _only_problem(paths)
    assert (problem.rule, problem.path) == (rule, offender)
    message = str(problem)
    assert repr(offender) in message
    assert f"[{rule}]" in message


def test_collision_message_names_both_sides() -> None:
    message = str(_only_problem(["a", "A/b"]))
    assert "file 'a'" in message
    assert "directory 'A'" in message and "'A/b'" in message


def test_backslash_message_says_to_use_slash() -> None:
    message = str(_only_problem(["tools\\agent.exe"]))
    assert "backslash" in message and "'/'" in message


def test_not_utf8_message_names_the_byte() -> None:
    assert "0xe9" in str(_only_problem([os.fsdecode(b"caf\xe9.txt")]))


def test_reserved_message_names_the_device() -> None:
    assert "device COM\u00b9" in str(_only_problem(["com\u00b9.txt"]))


def test_every_rule_has_cases() -> None:
    covered = {rule for rule, _ in SINGLE_PATH_CASES} | {rule for rule, _, _ in MULTI_PATH_CASES}
    assert covered == ALL_RULES
    assert set(RULES) == ALL_RULES | {"long-path"}


@pytest.mark.parametrize("path", GOOD_PATHS, ids=_case_id)
def test_good_paths_pass(path: str) -> None:
    assert find_path_problems([path]) == []
    assert check_paths([path]) == []


def test_good_paths_pass_together() -> None:
    assert check_paths(GOOD_PATHS) == []


@pytest.mark.parametrize("path", LONGEST_NAMES, ids=_case_id)
def test_longest_names_are_valid_but_warned(path: str) -> None:
    assert find_path_problems([path]) == []
    assert [warning.rule for warning in check_paths([path])] == ["long-path"]


@pytest.mark.parametrize(
    "paths",
    [
        ["stra\u00dfe", "STRASSE"],  # NTFS upcases per character: ß does not become SS
        ["caf\u00e9", unicodedata.normalize("NFD", "caf\u00e9")],  # NFC and NFD differ
        ["a-b", "a/b"],
        ["dir/a", "dir/b", "dir/c/d"],
        ["x", "y", "z"],
    ],
)
def test_distinct_names_do_not_collide(paths: List[str]) -> None:
    assert find_path_problems(paths) == []


def test_problems_ignore_input_order() -> None:
    paths = ["b/x.", "A", "a", "nul", "a/b", "c//d", "b/x.", "Z/1", "z"]
    expected = [(p.rule, p.path, p.detail) for p in find_path_problems(paths)]
    reordered = [(p.rule, p.path, p.detail) for p in find_path_problems(reversed(paths))]
    assert reordered == expected
    assert [path for _, path, _ in expected] == sorted(path for _, path, _ in expected)


def test_a_path_reports_each_bad_component() -> None:
    problems = path_problems("nul/x./a<b/ok")
    assert [(problem.rule, problem.path) for problem in problems] == [
        ("reserved-name", "nul/x./a<b/ok"),
        ("trailing-dot-or-space", "nul/x./a<b/ok"),
        ("invalid-character", "nul/x./a<b/ok"),
    ]


def test_structural_problem_stops_the_path() -> None:
    assert [problem.rule for problem in path_problems("/nul/x.")] == ["absolute"]
    assert [problem.rule for problem in path_problems("C:/nul")] == ["drive-letter"]


def test_invalid_paths_are_left_out_of_collisions() -> None:
    assert [problem.rule for problem in find_path_problems(["x.", "X."])] == [
        "trailing-dot-or-space",
        "trailing-dot-or-space",
    ]


def test_several_problems_raise_a_group() -> None:
    with pytest.raises(WindowsPathErrorGroup) as info:
        check_paths(["b.", "a/nul", "x", "X"])
    group = info.value
    assert isinstance(group, WindowsPathError)
    assert [(p.rule, p.path) for p in group.problems] == [
        ("reserved-name", "a/nul"),
        ("trailing-dot-or-space", "b."),
        ("case-collision", "x"),
    ]
    assert (group.rule, group.path) == ("reserved-name", "a/nul")
    message = str(group)
    assert message.startswith("3 destination paths break Windows path rules:")
    assert all(str(problem) in message for problem in group.problems)


def test_group_message_is_capped() -> None:
    with pytest.raises(WindowsPathErrorGroup) as info:
        check_paths([f"f{i:02}." for i in range(25)])
    message = str(info.value)
    assert len(info.value.problems) == 25
    assert "'f19.'" in message and "'f20.'" not in message
    assert message.endswith("... and 5 more")


def test_single_problem_is_not_grouped() -> None:
    with pytest.raises(WindowsPathError) as info:
        check_paths(["ok", "nul"])
    assert type(info.value) is WindowsPathError
    assert info.value.problems == (info.value,)


def test_error_fields() -> None:
    error = _only_problem(["dir/Con.tar.gz"])
    assert error.rule == "reserved-name"
    assert error.path == "dir/Con.tar.gz"
    assert error.detail == "'Con.tar.gz' names the device CON"


# --- Length warnings ----------------------------------------------------------------


def _path_of_length(units: int) -> str:
    """A valid path of `units` characters, split into names of at most 100."""
    names = []
    while units > 0:
        size = min(100, units)
        names.append("n" * size)
        units -= size + 1
    return "/".join(names)


def test_path_at_the_budget_gets_no_warning() -> None:
    path = _path_of_length(187)
    assert len(path) == 187
    assert check_paths([path]) == []


@pytest.mark.parametrize("units", [188, 253, 259, 260, 1000])
def test_long_path_gives_a_warning_not_an_error(units: int) -> None:
    path = _path_of_length(units)
    assert len(path) == units
    [warning] = check_paths([path])
    assert isinstance(warning, PathWarning) and isinstance(warning, UserWarning)
    assert (warning.rule, warning.path) == ("long-path", path)
    message = str(warning)
    assert f"it is {units} UTF-16 code units long" in message
    assert f"makes {72 + units + 1} characters" in message  # C:\hpc\<64 hex>\ is 72
    assert "260" in message and "187" in message
    assert "LongPathsEnabled" in message
    assert repr(path) in message


def test_length_counts_utf16_code_units() -> None:
    fits = "\U0001f600" * 93  # 186 code units
    over = "\U0001f600" * 94  # 188 code units, though only 94 characters
    assert find_path_warnings([fits]) == []
    [warning] = find_path_warnings([over])
    assert "188 UTF-16 code units" in str(warning)


def test_write_layer_warns_about_long_paths() -> None:
    path = _path_of_length(200)
    with pytest.warns(PathWarning, match="200 UTF-16 code units"):
        write_layer(
            [LayerFile(path, b"x"), LayerFile("short", b"y")],
            io.BytesIO(),
            base=False,
            compression=Compression.NONE,
            level=0,
            mtime=0,
        )


def test_write_layer_raises_every_problem_before_writing() -> None:
    out = io.BytesIO()
    with pytest.raises(WindowsPathErrorGroup) as info:
        write_layer(
            [LayerFile("nul", b""), LayerFile("a.", b""), LayerFile("ok", b"")],
            out,
            base=False,
            compression=Compression.GZIP,
            level=1,
            mtime=0,
        )
    assert [problem.rule for problem in info.value.problems] == [
        "trailing-dot-or-space",
        "reserved-name",
    ]
    assert out.getvalue() == b""


def test_write_layer_is_quiet_for_short_paths() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_layer(
            [LayerFile("short/path.txt", b"x")],
            io.BytesIO(),
            base=True,
            compression=Compression.NONE,
            level=0,
            mtime=0,
        )


# --- Scale --------------------------------------------------------------------------

# Generous: a quadratic check would take hours on these inputs, a linear one a second.
SCALE_SECONDS = 20.0


def _timed(paths: List[str]) -> Tuple[float, List[WindowsPathError]]:
    start = time.perf_counter()
    problems = find_path_problems(paths)
    return time.perf_counter() - start, problems


def test_many_valid_paths_check_quickly() -> None:
    paths = [f"dir{i % 100}/sub{i % 7}/\u00fcber{i}/file-{i}.dll" for i in range(100_000)]
    start = time.perf_counter()
    assert check_paths(paths) == []
    assert time.perf_counter() - start < SCALE_SECONDS


def test_many_collisions_check_quickly() -> None:
    paths = [f"dir/file{i}" for i in range(50_000)] + [f"DIR/FILE{i}" for i in range(50_000)]
    elapsed, problems = _timed(paths)
    assert elapsed < SCALE_SECONDS
    assert len(problems) == 50_001  # 'dir' itself, then every file under it
    assert {problem.rule for problem in problems} == {"case-collision"}


def test_many_variants_of_one_name_check_quickly() -> None:
    letters = "abcdefghijklmnop"
    variants = [
        "".join(c.upper() if i >> k & 1 else c for k, c in enumerate(letters))
        for i in range(1 << len(letters))
    ]
    elapsed, problems = _timed(variants)
    assert elapsed < SCALE_SECONDS
    assert len(problems) == (1 << 16) - 1


def test_deep_paths_check_quickly() -> None:
    paths = ["/".join(["d"] * 60 + [f"f{i}"]) for i in range(20_000)]
    elapsed, problems = _timed(paths)
    assert elapsed < SCALE_SECONDS
    assert problems == []
