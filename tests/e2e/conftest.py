"""Fixtures for end-to-end tests: real `./pants` runs in throwaway copies of the repository."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from e2e.checkout import Checkout, copy_repo


@pytest.fixture
def checkout_factory(tmp_path: Path) -> Callable[[str], Checkout]:
    return lambda name: copy_repo(tmp_path / name)
