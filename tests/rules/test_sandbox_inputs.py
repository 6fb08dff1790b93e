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


@settings(max_examples=200, deadline=None)
@given(st.sets(PATHS, max_size=60), st.integers(min_value=1, max_value=20))
def test_every_file_goes_in_exactly_once(paths: set[str], max_files: int) -> None:
    # A path that is also another path's directory cannot be in one tree.
    files = {p for p in paths if not any(q.startswith(f"{p}/") for q in paths)}
    plan = plan_tree(files, max_files)
    for path in files:
        owners = [d for d in plan.subtrees if _inside(path, d)]
        assert len(owners) + (path in plan.loose) == 1, (path, plan)
    for directory in plan.subtrees:
        held = [p for p in files if _inside(p, directory)]
        assert 0 < len(held) <= max_files
        if directory:  # taken whole at the highest level that fits: its parent did not fit
            parent = directory.rpartition("/")[0]
            assert len([p for p in files if _inside(p, parent)]) > max_files
    for path in plan.loose:  # loose only where no directory above it fits
        assert len([p for p in files if _inside(p, path.rpartition("/")[0])]) > max_files


def test_a_small_tree_is_one_subtree_and_a_large_one_splits() -> None:
    assert plan_tree(["a/x", "b/y", "z"], 3).subtrees == ("",)
    files = [f"scripts/dir{d}/f{i}" for d in range(3) for i in range(4)] + ["scripts/s", "top"]
    plan = plan_tree(files, 4)
    assert plan.subtrees == ("scripts/dir0", "scripts/dir1", "scripts/dir2")
    assert plan.loose == ("scripts/s", "top")
