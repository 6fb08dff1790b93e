"""Throwaway checkouts of the repository, for end-to-end tests that run real `./pants`.

A nested Pants must never share this build root with the Pants running the tests (they
would share `.pants.d` and the pantsd lock), so every build runs in a fresh copy.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Union

import pytest

from repo_copy import PANTS_ENTRIES, copy_entries

# Everything after this line of a checkout's pants.toml was written by `Checkout.set_registries`.
REGISTRIES_MARKER = "# --- [hostprocess.registries] written by the end-to-end tests ---"


@dataclass(frozen=True)
class Checkout:
    root: Path
    # A sample repository without a launcher of its own runs a checkout's, as a user's `pants`.
    launcher: str = "./pants"

    def pants(
        self, *args: str, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ./pants without a daemon, so nothing outlives the test."""
        result = subprocess.run(
            [self.launcher, "--no-pantsd", "--no-dynamic-ui", *args],
            cwd=self.root,
            env={**os.environ, **(env or {})},
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
        if check and result.returncode != 0:
            pytest.fail(f"./pants {' '.join(args)} failed ({result.returncode}):\n{result.stdout}")
        return result

    @property
    def dist(self) -> Path:
        return self.root / "dist"

    def set_registries(self, registries: Mapping[str, Mapping[str, Union[str, bool]]]) -> None:
        """Make `registries` (alias -> entry) the checkout's `[hostprocess.registries.<alias>]`
        tables, replacing those an earlier call wrote and keeping the rest of pants.toml."""
        config = self.root / "pants.toml"
        kept = config.read_text().split(f"\n{REGISTRIES_MARKER}\n", 1)[0]
        tables = [REGISTRIES_MARKER]
        for alias, entry in registries.items():
            tables.append(f"[hostprocess.registries.{alias}]")
            tables += [f"{key} = {_toml_value(value)}" for key, value in entry.items()]
        config.write_text(kept.rstrip("\n") + "\n\n" + "\n".join(tables) + "\n")


def _toml_value(value: Union[str, bool]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's


def copy_repo(dest: Path) -> Checkout:
    """A checkout of the repository under test (the working directory), with its examples."""
    dest.mkdir(parents=True)
    copy_entries(Path.cwd(), dest, (*PANTS_ENTRIES, "examples"))
    return Checkout(dest)


def load_json(path: Path) -> Any:
    return json.loads(path.read_bytes())
