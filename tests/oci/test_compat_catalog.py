"""The catalogue of compatibility checks: every check runs, and the README documents each."""
from __future__ import annotations

from pathlib import Path

import pytest

from hostprocess.compat.catalog import CHECK_NAMES, CHECKS
from hostprocess.compat.layers import LAYER_CHECKS
from hostprocess.compat.suite import FACT_CHECKS

README = Path("README.md").read_text(encoding="utf-8")
HEADING = "## Compatibility checks: what a Windows node would reject\n"
SECTION = README[README.index(HEADING) : README.index("\n## ", README.index(HEADING))]


def test_every_catalogued_check_is_decided_somewhere() -> None:
    decided = set(FACT_CHECKS) | set(LAYER_CHECKS)
    assert decided == set(CHECK_NAMES)
    assert len(set(FACT_CHECKS) & set(LAYER_CHECKS)) == 0


@pytest.mark.parametrize("name", CHECK_NAMES)
def test_the_readme_table_says_what_each_check_holds_prevents_and_where_it_is_reported(
    name: str,
) -> None:
    check = CHECKS[name]
    [row] = [line for line in SECTION.splitlines() if line.startswith(f"| `{name}` |")]
    cells = [cell.strip() for cell in row.strip("|").split(" | ")]
    assert cells[1:3] == [check.summary, check.prevents]
    assert all(f"]({url})" in cells[3] for url in check.source.split(", "))
    assert cells[4] == check.severity.value
    assert cells[5] == ("package, test" if check.at_package_time else "test")
