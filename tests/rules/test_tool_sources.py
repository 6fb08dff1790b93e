"""The image tool ships the whole core package: subpackages included, in a fixed order."""
from __future__ import annotations

from pathlib import Path

from pants.engine.fs import FileContent

import hostprocess.oci
from hostprocess.util_rules.tool import package_sources

CHECKOUT = Path("pants-plugins")  # the plugin's files, from the //:repo dependency


def test_core_sources_include_subpackages_in_a_fixed_order() -> None:
    files = [entry for entry in package_sources(hostprocess.oci) if isinstance(entry, FileContent)]
    paths = [file.path for file in files]
    assert paths == sorted(paths) and len(set(paths)) == len(paths)
    in_checkout = sorted(
        path.relative_to(CHECKOUT).as_posix()
        for path in (CHECKOUT / "hostprocess" / "oci").rglob("*.py")
    )
    assert paths == ["hostprocess/__init__.py", *in_checkout]
    assert "hostprocess/oci/registry/__init__.py" in paths
    for file in files[1:]:
        assert file.content == (CHECKOUT / file.path).read_bytes(), file.path
