"""The programs the tests call (independent verifiers, real servers), found on PATH.

`tests/system-tools.txt` lists each with its Debian package; `./pants test` installs the
missing ones before any test runs. A test that still finds one missing fails with the fix,
never skips.
"""
from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

TOOLS_FILE = Path(__file__).with_name("system-tools.txt")
RUN_TIMEOUT = 120  # seconds: the verifiers read small test images, so a longer run is a hang


@lru_cache(maxsize=None)
def packages() -> dict[str, str]:
    """program -> Debian package, from tests/system-tools.txt."""
    listed: dict[str, str] = {}
    for line in TOOLS_FILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            program, package = line.split()[:2]
            listed[program] = package
    return listed


def system_tool(name: str) -> str:
    """The path of program `name`, which must be listed in tests/system-tools.txt."""
    package = packages().get(name)
    assert package, f"{name} is not listed in {TOOLS_FILE.name}: add it with its Debian package"
    path = shutil.which(name)
    assert path, (
        f"{name} is not on PATH. It comes from the Debian package {package}, which `./pants test` "
        f"installs when run as root; otherwise run `sudo apt-get install -y "
        f"--no-install-recommends {package}`."
    )
    return path


def run_tool(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run program `argv[0]` (found as `system_tool` finds it); a failure fails the test with
    the program's output, a hang with a timeout."""
    command = [system_tool(argv[0]), *argv[1:]]
    result = subprocess.run(command, capture_output=True, check=False, cwd=cwd, timeout=RUN_TIMEOUT)
    assert (
        result.returncode == 0
    ), f"{' '.join(argv)} failed:\n{result.stderr.decode()}{result.stdout.decode()}"
    return result
