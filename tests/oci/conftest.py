"""Shared fixtures of the core tests."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

# Before its import, so that the servers' own asserts explain their failures.
pytest.register_assert_rewrite("oci.hostile_servers")
from oci.hostile_servers import ScriptedServer  # noqa: E402

# Hypothesis keeps caches in its storage directory: keep them out of the repository.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir(), "hostprocess-hypothesis"))
)


@pytest.fixture(scope="session")
def cc0_path() -> Path:
    """The repository's CC0 legal code (the base layer embeds it)."""
    return find_cc0()


def find_cc0() -> Path:
    """The repository's legal code: at the working directory root under Pants, else above us."""
    candidates = [Path.cwd() / "cc0-legalcode.txt"]
    candidates += [parent / "cc0-legalcode.txt" for parent in Path(__file__).resolve().parents]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise AssertionError(
        "cc0-legalcode.txt not found in the working directory or any parent of "
        f"{Path(__file__).resolve()}; the test needs the repository's copy (under Pants, "
        "add a dependency on the file to this test target)"
    )


@pytest.fixture
def servers() -> Iterator[list[ScriptedServer]]:
    """Servers a test starts (`hostile_servers.ScriptedServer`); all stopped afterwards."""
    started: list[ScriptedServer] = []
    yield started
    for server in started:
        server.stop()
