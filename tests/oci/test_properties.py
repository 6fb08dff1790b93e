"""Property tests: the path rules and the layer writer agree on generated file trees.

Trees mix safe names (ASCII, accents, CJK, emoji, combining marks, case pairs) with names
that break a rule (device names, forbidden characters, trailing dots and spaces, '.wh.',
undecodable bytes, overlong names) and with case variants, duplicates and parents of other
paths. Whatever `find_path_problems` accepts, `write_layer` must write exactly, as Python's
`tarfile`, GNU tar, umoci and skopeo read it; whatever it refuses, `write_layer` must refuse
with the same problems before writing a byte. Missing tools fail, never skip.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import tarfile
import tempfile
import unicodedata
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hostprocess.oci.compression import BlobDigests
from hostprocess.oci.image import Image, Layer, RuntimeConfig, build_image
from hostprocess.oci.layout import blob_path, layout_files
from hostprocess.oci.types import Compression
from hostprocess.oci.windows.layer import LayerFile, write_layer
from hostprocess.oci.windows.paths import (
    WindowsPathError,
    check_paths,
    find_path_problems,
    path_problems,
)
from oci.tar_members import member_bytes
from system_tools import run_tool

# No example database; deadlines that a loaded two-core machine cannot miss.
FAST = settings(
    max_examples=150,
    deadline=timedelta(seconds=10),
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
TOOLS = settings(FAST, max_examples=25, deadline=None)
UNPACKERS = settings(FAST, max_examples=8, deadline=None)

# Characters drawn from explicit lists rather than `st.characters()`, whose Unicode tables
# hypothesis would cache on disk.
SAFE_CHARACTERS = list("abcxyzABCXYZ019-_~+=,;@#$%&'()[]{}!") + [
    "\u00e9",  # é
    "\u00c9",  # É
    "\u00df",  # ß
    "\u1e9e",  # ẞ
    "\u0131",  # dotless ı
    "\u0130",  # dotted İ
    "\u65e5",  # 日
    "\u01c5",  # titlecase Dž
    "\ufb00",  # ﬀ ligature: upper-cases to two letters
    "\u03a9",  # Ω
    "\u03c9",  # ω
    "\u0301",  # combining acute accent
    "\u00a0",  # no-break space
    "\U0001f600",  # emoji, two UTF-16 code units
    "\x7f",
]
NEAR_RESERVED = ["COM0", "LPT0", "COM10", "CONSOLE", "NULL", "AUXILIARY", "com", "xnul", "CON-1"]
RESERVED = ["CON", "prn", "Aux", "nUl", "COM1", "lpt9", "COM\u00b9", "LPT\u00b3", "CONIN$"]
BAD_CHARACTERS = list('<>:"\\|?*') + [chr(code) for code in range(32)]
SPECIAL = ["", ".", "..", ".wh.x", ".wh..wh..opq", "x.", "x ", " ", "..."]

safe_word = st.text(st.sampled_from(SAFE_CHARACTERS), min_size=1, max_size=8)
safe_component = st.one_of(
    safe_word,
    st.tuples(safe_word, st.sampled_from([".", " ", ". ", "..", "."]), safe_word).map("".join),
    st.sampled_from(NEAR_RESERVED),
)
risky_component = st.one_of(
    st.tuples(
        st.sampled_from(RESERVED),
        st.sampled_from(["", " ", "  "]),
        st.sampled_from(["", ".txt", ".tar.gz", "."]),
    ).map("".join),
    st.tuples(safe_word, st.sampled_from(BAD_CHARACTERS), safe_word).map("".join),
    st.sampled_from(SPECIAL),
    st.tuples(safe_word, st.sampled_from([".", " ", ". ", " .", "..."])).map("".join),
    st.tuples(safe_word, st.integers(0x80, 0xFF).map(lambda byte: chr(0xDC00 + byte))).map("".join),
    st.integers(120, 300).map(lambda length: "L" * length),
    st.sampled_from(["\U0001f600" * 128, "\U0001f600" * 127]),
)


def _parent(path: str) -> str:
    return path.rpartition("/")[0] or path


VARIANTS: List[Callable[[str], str]] = [
    str.upper,
    str.lower,
    str.swapcase,
    lambda path: unicodedata.normalize("NFD", path),
    lambda path: unicodedata.normalize("NFC", path),
    _parent,
    lambda path: path + "/child",
    lambda path: path,
]


@st.composite
def trees(draw: st.DrawFn, risky: bool = True) -> List[str]:
    """Destination paths: with `risky`, a third of the trees have names that break a rule
    and a third have case variants, duplicates or parents of other paths."""
    kind = draw(st.sampled_from(["clean", "risky", "variants"])) if risky else "clean"
    components = st.one_of(safe_component, risky_component) if kind == "risky" else safe_component
    path = st.lists(components, min_size=1, max_size=4).map("/".join)
    paths = draw(st.lists(path, max_size=8, unique=True))
    for _ in range(draw(st.integers(1, 2)) if paths and kind == "variants" else 0):
        variant = draw(st.sampled_from(VARIANTS))
        paths.append(variant(draw(st.sampled_from(paths))))
    return paths


contents = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([511, 512, 513, 1024]).flatmap(
        lambda size: st.binary(min_size=size, max_size=size)
    ),
)


def _sources(
    paths: Sequence[str], blobs: Dict[str, bytes], on_disk: Sequence[bool], directory: Path
) -> List[LayerFile]:
    """One LayerFile per path, its content in memory or in a file streamed from disk."""
    files = []
    for index, path in enumerate(paths):
        if on_disk[index]:
            source = directory / f"source{index}"
            source.write_bytes(blobs[path])
            files.append(LayerFile(path, source))
        else:
            files.append(LayerFile(path, blobs[path]))
    return files


@dataclass
class Written:
    blob: bytes
    digests: BlobDigests
    warnings: List[warnings.WarningMessage]


def _write(files: Sequence[LayerFile], *, base: bool, compression: Compression) -> Written:
    out = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        digests = write_layer(
            files, out, base=base, compression=compression, level=1, mtime=7, threads=1
        )
    return Written(out.getvalue(), digests, caught)


def _uncompressed(blob: bytes, compression: Compression) -> bytes:
    return gzip.decompress(blob) if compression is Compression.GZIP else blob


def _expected_names(paths: Sequence[str], *, base: bool) -> List[str]:
    """Roots, then every file and parent directory once, sorted component by component."""
    parts = [path.split("/") for path in paths]
    directories = {"/".join(split[:depth]) for split in parts for depth in range(1, len(split))}
    entries = sorted(directories.union(paths), key=lambda name: name.split("/"))
    return (["Files"] if base else ["Hives", "Files"]) + [f"Files/{name}" for name in entries]


def _destination(name: str) -> str:
    """The path under C:\\ of a layer entry name."""
    return name[len("Files/") :]


def _check_tar(tar_bytes: bytes, blobs: Dict[str, bytes], *, base: bool) -> None:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        members = tar.getmembers()
        read = {member.name: member_bytes(tar, member) for member in members if member.isfile()}
    assert [m.name for m in members] == _expected_names(list(blobs), base=base)
    assert read == {f"Files/{path}": data for path, data in blobs.items()}
    for member in members:
        assert member.isfile() or member.isdir(), member.name
        expected_attribute = "32" if member.isfile() else "16"
        assert member.pax_headers["MSWINDOWS.fileattr"] == expected_attribute, member.name
        assert (member.mtime, member.uid, member.gid) == (7, 0, 0)


def _problem_keys(problems: Sequence[WindowsPathError]) -> List[Tuple[str, str, str]]:
    return [(problem.rule, problem.path, problem.detail) for problem in problems]


def _windows_accepts(path: str) -> bool:
    """An independent, deliberately plain statement of the single-path rules."""
    devices = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    devices |= {port + digit for port in ("COM", "LPT") for digit in "123456789\u00b9\u00b2\u00b3"}
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    if path.startswith("/") or (path[1:2] == ":" and path[:1].isascii() and path[:1].isalpha()):
        return False
    for name in path.split("/"):
        if name in ("", ".", "..") or name.startswith(".wh.") or name[-1] in ". ":
            return False
        if any(char in '<>:"\\|?*' or ord(char) < 32 for char in name):
            return False
        if name.split(".")[0].rstrip(" ").upper() in devices:
            return False
        if len(name.encode("utf-16-le")) > 2 * 255:
            return False
    return True


# --- The rules on their own -----------------------------------------------------------


any_path = st.lists(st.one_of(safe_component, risky_component), min_size=1, max_size=4).map(
    "/".join
)


@settings(FAST, max_examples=500)
@given(any_path)
def test_single_path_rules_match_a_plain_statement(path: str) -> None:
    assert (not path_problems(path)) == _windows_accepts(path), ascii(path)


@FAST
@given(trees(), st.randoms(use_true_random=False))
def test_problems_do_not_depend_on_order(paths: List[str], rng: random.Random) -> None:
    shuffled = list(paths)
    rng.shuffle(shuffled)
    assert _problem_keys(find_path_problems(shuffled)) == _problem_keys(find_path_problems(paths))


@FAST
@given(trees(risky=False), st.data())
def test_subsets_of_accepted_trees_are_accepted(paths: List[str], data: st.DataObject) -> None:
    assume(not find_path_problems(paths))
    subset = data.draw(st.lists(st.sampled_from(paths), unique=True)) if paths else []
    assert find_path_problems(subset) == []


@FAST
@given(trees())
def test_problems_concern_the_given_paths(paths: List[str]) -> None:
    """Each problem names an input path or a directory one of them implies."""
    for problem in find_path_problems(paths):
        assert problem.path in paths or any(p.startswith(problem.path + "/") for p in paths)
        assert repr(problem.path) in str(problem)


# --- The writer agrees with the rules ---------------------------------------------------


@FAST
@given(trees(), st.data(), st.booleans())
def test_writer_writes_exactly_what_the_rules_accept(
    paths: List[str], data: st.DataObject, base: bool
) -> None:
    problems = find_path_problems(paths)
    blobs = {path: data.draw(contents) for path in dict.fromkeys(paths)}
    on_disk = data.draw(st.lists(st.booleans(), min_size=len(paths), max_size=len(paths)))
    with tempfile.TemporaryDirectory() as directory:
        files = _sources(paths, blobs, on_disk, Path(directory))
        for compression in (Compression.GZIP, Compression.NONE):
            if problems:
                _check_refused(files, problems, base=base, compression=compression)
            else:
                written = _write(files, base=base, compression=compression)
                _check_tar(_uncompressed(written.blob, compression), blobs, base=base)
                expected = [str(warning) for warning in check_paths(paths)]
                assert [str(caught.message) for caught in written.warnings] == expected


def _check_refused(
    files: Sequence[LayerFile],
    problems: Sequence[WindowsPathError],
    *,
    base: bool,
    compression: Compression,
) -> None:
    out = io.BytesIO()
    with pytest.raises(WindowsPathError) as info:
        write_layer(files, out, base=base, compression=compression, level=1, mtime=0, threads=1)
    assert _problem_keys(info.value.problems) == _problem_keys(problems)
    assert (info.value.rule, info.value.path) == (problems[0].rule, problems[0].path)
    assert out.getvalue() == b""


# --- Independent readers ------------------------------------------------------------------


@TOOLS
@given(trees(risky=False), st.data(), st.booleans())
def test_gnu_tar_lists_accepted_trees(paths: List[str], data: st.DataObject, base: bool) -> None:
    assume(not find_path_problems(paths))
    blobs = {path: data.draw(contents) for path in paths}
    files = [LayerFile(path, blob) for path, blob in blobs.items()]
    written = _write(files, base=base, compression=Compression.GZIP)
    with tempfile.TemporaryDirectory() as directory:
        layer = Path(directory, "layer.tar.gz")
        layer.write_bytes(written.blob)
        listing = run_tool("tar", "--quoting-style=literal", "-tvzf", str(layer)).stdout.decode(
            "utf-8"
        )
    names = _expected_names(paths, base=base)
    # "drwxr-xr-x 0/0 0 1970-01-01 00:00 Files/name" (the name may hold spaces)
    fields = [line.split(maxsplit=5) for line in listing.splitlines()]
    assert [field[5] for field in fields] == names
    kinds = ["-" if _destination(name) in blobs else "d" for name in names]
    assert [field[0][0] for field in fields] == kinds
    sizes = [len(blobs.get(_destination(name), b"")) for name in names]
    assert [int(field[2]) for field in fields] == sizes


@UNPACKERS
@given(trees(risky=False), st.data(), st.sampled_from([Compression.GZIP, Compression.NONE]))
def test_umoci_and_skopeo_read_accepted_trees(
    paths: List[str], data: st.DataObject, compression: Compression
) -> None:
    """skopeo copies the image, checking blob digests; umoci checks the diff_id and unpacks.

    `umoci raw unpack` rather than `umoci unpack`: the latter also writes a runtime
    config.json, which it refuses to do for an image whose config says Windows.
    """
    assume(not find_path_problems(paths))
    blobs = {path: data.draw(contents) for path in paths}
    files = [LayerFile(path, blob) for path, blob in blobs.items()]
    written = _write(files, base=False, compression=compression)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        image = _write_layout(root / "layout", written, compression)
        assert (
            run_tool("skopeo", "inspect", "--raw", "oci:layout:t", cwd=root).stdout
            == image.manifest
        )
        run_tool("skopeo", "--insecure-policy", "copy", "oci:layout:t", "dir:copied", cwd=root)
        copied_layer = root / "copied" / written.digests.digest.split(":")[1]
        assert copied_layer.read_bytes() == written.blob
        run_tool("umoci", "raw", "unpack", "--rootless", "--image", "layout:t", "rootfs", cwd=root)
        unpacked = _tree(root / "rootfs")
    expected = {name: blobs.get(_destination(name)) for name in _expected_names(paths, base=False)}
    assert unpacked == expected


def _write_layout(layout: Path, written: Written, compression: Compression) -> Image:
    """A one-layer OCI layout tagged `t`, as the plugin's package goal writes it."""
    digests = written.digests
    layer = Layer(digests.digest, digests.size, digests.diff_id, compression)
    image = build_image(
        RuntimeConfig(), [layer], architecture="amd64", created=0, history=["generated"]
    )
    entries = dict(layout_files(image, ["t"]))
    entries[blob_path(digests.digest)] = written.blob
    for name, content in entries.items():
        path = layout / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return image


def _tree(root: Path) -> Dict[str, Optional[bytes]]:
    """Every path under `root`: None for a directory, the bytes for a file."""
    tree: Dict[str, Optional[bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath).relative_to(root)
        tree.update({(base / name).as_posix(): None for name in dirnames})
        for name in filenames:
            tree[(base / name).as_posix()] = Path(dirpath, name).read_bytes()
    return tree
