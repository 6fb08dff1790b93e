"""How a layer's tree is split into immutable subtrees and loose files (the plan alone;
`test_package_rules` builds layers through it)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hostprocess.util_rules.sandbox_inputs import plan_tree

NAMES = st.sampled_from(["a", "b", "c", "node_modules", "lib", "x.js", "y.ps1"])
PATHS = st.lists(NAMES, min_size=1, max_size=5).map("/".join)


def _inside(path: str, directory: str) -> bool:
    return directory == "" or path.startswith(f"{directory}/")


LARGE = 100


def _fits(files: dict[str, int], directory: str, max_files: int) -> bool:
    held = [size for path, size in files.items() if _inside(path, directory)]
    return len(held) <= max_files and all(size < LARGE for size in held)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(PATHS, st.sampled_from([0, 10, LARGE]), max_size=60),
    st.integers(min_value=1, max_value=20),
)
def test_every_file_goes_in_exactly_once(sizes: dict[str, int], max_files: int) -> None:
    # A path that is also another path's directory cannot be in one tree.
    files = {p: s for p, s in sizes.items() if not any(q.startswith(f"{p}/") for q in sizes)}
    plan = plan_tree(files, max_files, LARGE)
    for path in files:
        owners = [d for d in plan.subtrees if _inside(path, d)]
        assert len(owners) + (path in plan.loose) == 1, (path, plan)
    for directory in plan.subtrees:
        assert any(_inside(p, directory) for p in files)
        assert _fits(files, directory, max_files)
        if directory:  # taken whole at the highest level that fits: its parent did not fit
            assert not _fits(files, directory.rpartition("/")[0], max_files)
    for path in plan.loose:  # loose only where no directory above it fits, and large files
        parent = path.rpartition("/")[0]
        assert files[path] >= LARGE or not _fits(files, parent, max_files)


def test_a_small_tree_is_one_subtree_and_a_large_one_splits() -> None:
    assert plan_tree({"a/x": 1, "b/y": 1, "z": 1}, 3, LARGE).subtrees == ("",)
    files = {f"scripts/dir{d}/f{i}": 1 for d in range(3) for i in range(4)}
    plan = plan_tree({**files, "scripts/s": 1, "top": 1}, 4, LARGE)
    assert plan.subtrees == ("scripts/dir0", "scripts/dir1", "scripts/dir2")
    assert plan.loose == ("scripts/s", "top")


def test_large_files_stay_loose_and_keep_their_directories_open() -> None:
    plan = plan_tree({"bin/tool.exe": LARGE, "bin/conf/a.yaml": 1, "lib/x.js": 1}, 10, LARGE)
    assert plan.subtrees == ("bin/conf", "lib")
    assert plan.loose == ("bin/tool.exe",)
