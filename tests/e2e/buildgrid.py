"""BuildGrid, a real REAPI server, provisioned and run on loopback for the end-to-end tests.

BuildGrid's releases need CPython 3.12, which Pants 2.17's pex cannot resolve for, so it
gets a virtualenv of its own, installed by pip from `3rdparty/python/buildgrid-requirements.txt`
(every package pinned) the first time a test needs it. The virtualenv lives under
`$HOSTPROCESS_CACHE_DIR` (default `~/.cache/hostprocess`), named by the requirements' digest,
so a change of pins gets a new one and a warm machine reuses it at no cost. Concurrent test
processes wait on a lock for one install.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from e2e.loopback_service import LoopbackService
from machine_cache import provisioned_once

REQUIREMENTS = Path("3rdparty/python/buildgrid-requirements.txt")
PYTHON_VERSION = (3, 12)
STARTUP_SECONDS = 90


def find_python312() -> str:
    """A working CPython 3.12: `python3.12` on PATH (not a pyenv shim for an unselected
    version), else one under pyenv's versions."""
    candidates = [shutil.which("python3.12") or ""]
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted(str(p) for p in Path(pyenv_root, "versions").glob("3.12*/bin/python3.12"))
    check = "import sys; sys.exit(sys.version_info[:2] != (3, 12))"
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", check], capture_output=True).returncode == 0:
            return candidate
    raise AssertionError(
        "BuildGrid needs CPython 3.12, and neither a working python3.12 on PATH nor one under "
        f"{pyenv_root}/versions was found. Install one (e.g. `pyenv install 3.12`) and re-run."
    )


def bgd_command(requirements: Path = REQUIREMENTS) -> Path:
    """The `bgd` program of a BuildGrid virtualenv with exactly `requirements`, installed once."""
    if not requirements.is_file():
        raise AssertionError(f"{requirements} is missing: the test target must depend on it")
    pins = requirements.read_bytes()
    venv = provisioned_once(
        "buildgrid", hashlib.sha256(pins).hexdigest(), lambda venv: _install(venv, requirements)
    )
    return venv / "bin" / "bgd"


def _install(venv: Path, requirements: Path) -> None:
    print(f"Installing BuildGrid into {venv} (once per machine)...", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([find_python312(), "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PIP_CONFIG_FILE": "/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if os.environ.get("SSL_CERT_FILE") and not os.environ.get("PIP_CERT"):
        env["PIP_CERT"] = os.environ["SSL_CERT_FILE"]
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "-r", str(requirements.resolve())],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        raise AssertionError(
            f"Installing BuildGrid from {requirements} failed (exit {result.returncode}):\n"
            f"{result.stdout}{result.stderr}"
        )


class BuildGrid(LoopbackService):
    """`bgd server start` serving CAS, ByteStream and ActionCache (no execution) on loopback."""

    def __init__(self, root: Path) -> None:
        super().__init__("BuildGrid", root, "bgd.log")
        self.config = root / "bgd.yml"
        self.config.write_text(
            "description: hostprocess remote cache test\n"
            "server:\n"
            "  - !channel\n"
            f'    address: "127.0.0.1:{self.port}"\n'
            "    insecure-mode: true\n"
            "authorization:\n"
            "  method: none\n"
            "monitoring:\n"
            "  enabled: false\n"
            # By default BuildGrid takes 5 RPCs per core at once (10 on a 2-core CI machine) and
            # rejects the rest ("Concurrent RPC limit exceeded"); Pants sends up to 128 cache
            # and 128 store calls at once. Queue them instead: this server only stores and
            # caches, so nothing waits on a queued call (the reference config's caveat is about
            # execution services).
            "thread-pool-size: 16\n"
            "maximum-concurrent-rpcs: 256\n"
            "storages:\n"
            "  - !disk-storage &cas\n"
            f"    path: {json.dumps(str(root / 'cas'))}\n"
            "caches:\n"
            "  - !lru-action-cache &ac\n"
            "    storage: *cas\n"
            "    max-cached-refs: 10000\n"
            "    allow-updates: true\n"
            "    cache-failed-actions: false\n"
            "instances:\n"
            '  - name: ""\n'
            "    services:\n"
            "      - !action-cache\n"
            "        cache: *ac\n"
            "      - !cas\n"
            "        storage: *cas\n"
            "      - !bytestream\n"
            "        storage: *cas\n"
        )

    def start(self) -> None:
        self.launch([str(bgd_command()), "server", "start", str(self.config)], STARTUP_SECONDS)
