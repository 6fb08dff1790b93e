"""`./pants test` provisions the programs the tests call, before any test runs.

The real `./pants` script runs against a throwaway build root whose Pants virtualenv and pex
tool are already "bootstrapped" (a stand-in `pants` that reports its arguments), on a PATH of
its own: the system's basic commands, the CPython 3.9 that reads pants.toml (with tomli in
the cache, as ./pants installs it), and stand-ins for `apt-get` (which records its arguments
and "installs" the programs) and `id` (to be root or not).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest
import tomli

from pinned_versions import read_pinned_versions

BASIC_COMMANDS = (
    "bash",
    "dirname",
    "mkdir",
    "flock",
    "cut",
    "tr",
    "tail",
    "cat",
    "chmod",
    "touch",
    "sha256sum",
    "mv",
)
TOOLS = "tool-alpha  pkg-one\n# a comment\n\ntool-beta   pkg-one\ntool-gamma  pkg-two\n"
FAKE_APT_GET = """#!/bin/bash
echo "$*" >> "{log}"
if [[ "$1" == install ]]; then
  [[ -n "{fail}" ]] && {{ echo "E: Unable to locate package pkg-two"; exit 100; }}
  for program in tool-alpha tool-beta tool-gamma; do
    printf '#!/bin/sh\\n' > "{installed}/$program"; chmod +x "{installed}/$program"
  done
fi
"""


@dataclass
class BuildRoot:
    root: Path
    bin: Path  # stand-ins and basic commands: the whole PATH
    installed: Path  # where the fake apt-get puts programs (also on PATH)
    apt_log: Path

    def pants(
        self, *args: str, uid: int = 0, apt: bool = True, apt_fails: bool = False
    ) -> subprocess.CompletedProcess[str]:
        apt_get = self.bin / "apt-get"
        apt_get.unlink(missing_ok=True)
        if apt:
            apt_get.write_text(
                FAKE_APT_GET.format(
                    log=self.apt_log, installed=self.installed, fail="yes" if apt_fails else ""
                )
            )
            apt_get.chmod(0o755)
        (self.bin / "id").write_text(f"#!/bin/sh\necho {uid}\n")
        (self.bin / "id").chmod(0o755)
        env = {
            "PATH": f"{self.bin}:{self.installed}",
            "HOME": str(self.root),
            "HOSTPROCESS_CACHE_DIR": str(self.root / "cache"),
        }
        return subprocess.run(
            ["./pants", *args], cwd=self.root, env=env, capture_output=True, text=True, timeout=60
        )

    def apt_calls(self) -> list[str]:
        return self.apt_log.read_text().splitlines() if self.apt_log.exists() else []


@pytest.fixture
def build_root(tmp_path: Path) -> BuildRoot:
    root, bin_dir, installed = tmp_path / "repo", tmp_path / "bin", tmp_path / "installed"
    for directory in (root / "tests", bin_dir, installed):
        directory.mkdir(parents=True)
    for launcher_file in ("pants", "pants.toml", "build-support/pinned_versions.py"):
        (root / launcher_file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path.cwd() / launcher_file, root / launcher_file)
    (root / "tests" / "system-tools.txt").write_text(TOOLS)
    shutil.copytree(
        Path(tomli.__file__).parent, root / "cache" / f"tomli-{version('tomli')}" / "tomli"
    )
    os.symlink(Path(sys.executable).resolve(), bin_dir / "python3.9")
    pins = read_pinned_versions(root / "pants.toml")
    venv = root / "cache" / f"pants-{pins.pants}-py39"
    (venv / "bin").mkdir(parents=True)
    (venv / ".complete").touch()
    (venv / "bin" / "pants").write_text('#!/bin/bash\necho "pants ran: $*"\n')
    (venv / "bin" / "pants").chmod(0o755)
    pins.pex_tool(root).parent.mkdir()
    pins.pex_tool(root).touch()
    for command in BASIC_COMMANDS:
        found = shutil.which(command)
        assert found, f"{command} is needed to run ./pants"
        os.symlink(found, bin_dir / command)
    return BuildRoot(root, bin_dir, installed, tmp_path / "apt-get.log")


def test_root_installs_the_missing_packages_once_then_runs_pants(build_root: BuildRoot) -> None:
    first = build_root.pants("test", "::")
    assert first.returncode == 0, first.stderr
    assert build_root.apt_calls() == [
        "update -qq",
        "install -y -qq --no-install-recommends pkg-one pkg-two",
    ]
    said = [line for line in first.stderr.splitlines() if line.startswith("./pants:")]
    assert len(said) == 1 and "installing pkg-one pkg-two (once)" in said[0], first.stderr
    assert first.stdout == "pants ran: test ::\n"

    again = build_root.pants("--no-pantsd", "test", "tests::")
    assert again.returncode == 0, again.stderr
    assert len(build_root.apt_calls()) == 2, "a warm run must not call apt-get again"
    assert again.stderr == "" and again.stdout == "pants ran: --no-pantsd test tests::\n"


def test_other_goals_do_not_need_the_test_tools(build_root: BuildRoot) -> None:
    result = build_root.pants("package", "examples:hello")
    assert result.returncode == 0, result.stderr
    assert build_root.apt_calls() == []
    assert result.stdout == "pants ran: package examples:hello\n"


def test_not_root_names_the_exact_sudo_line_before_anything_runs(build_root: BuildRoot) -> None:
    result = build_root.pants("test", "::", uid=1000)
    assert result.returncode == 1
    assert "pants ran" not in result.stdout and build_root.apt_calls() == []
    assert (
        "the tests need tool-alpha tool-beta tool-gamma, which are not installed" in result.stderr
    )
    assert "\n  sudo apt-get install -y --no-install-recommends pkg-one pkg-two\n" in result.stderr


def test_without_apt_get_the_error_names_programs_and_packages(build_root: BuildRoot) -> None:
    result = build_root.pants("test", "::", apt=False)
    assert result.returncode == 1 and "pants ran" not in result.stdout
    assert "the tests need tool-alpha tool-beta tool-gamma, which are not on PATH" in result.stderr
    assert "their Debian packages: pkg-one pkg-two" in result.stderr


def test_a_failed_install_is_one_clear_failure_with_the_log(build_root: BuildRoot) -> None:
    result = build_root.pants("test", "::", apt_fails=True)
    assert result.returncode == 1 and "pants ran" not in result.stdout
    assert "E: Unable to locate package pkg-two" in result.stderr
    assert "installing pkg-one pkg-two failed (full log: " in result.stderr


def test_a_file_entry_is_missing_until_the_file_exists(build_root: BuildRoot) -> None:
    """An absolute path in the list names a file a package ships (e.g. a jar), not a program."""
    needed = build_root.root / "usr-share" / "server.jar"
    tools = build_root.root / "tests" / "system-tools.txt"
    tools.write_text(f"{needed}  pkg-three\n")
    missing = build_root.pants("test", "::", uid=1000)
    assert missing.returncode == 1 and "pants ran" not in missing.stdout
    assert f"the tests need {needed}, which are not installed" in missing.stderr
    assert "\n  sudo apt-get install -y --no-install-recommends pkg-three\n" in missing.stderr

    needed.parent.mkdir()
    needed.touch()
    present = build_root.pants("test", "::", uid=1000)
    assert present.returncode == 0, present.stderr
    assert build_root.apt_calls() == [] and present.stdout == "pants ran: test ::\n"


def test_a_warm_run_starts_no_python_before_pants(build_root: BuildRoot) -> None:
    """The versions read from pants.toml are kept for this checkout: with them kept, ./pants
    needs no Python of its own (here: none on PATH at all)."""
    assert build_root.pants("package", "examples:hello").returncode == 0
    (build_root.bin / "python3.9").unlink()
    again = build_root.pants("package", "examples:hello")
    assert again.returncode == 0, again.stderr
    assert again.stdout == "pants ran: package examples:hello\n"
    (build_root.root / "pants.toml").write_text(
        (build_root.root / "pants.toml").read_text() + "\n# changed\n"
    )
    changed = build_root.pants("package", "examples:hello")
    assert changed.returncode != 0 and "CPython 3.9" in changed.stderr, changed.stderr
