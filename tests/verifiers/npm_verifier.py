"""sigstore-js (`@sigstore/verify`) as an independent verifier of our Sigstore bundles.

The packages are pinned by `tests/verifiers/npm/package-lock.json` and installed once per
machine by `npm ci --ignore-scripts` under `$HOSTPROCESS_CACHE_DIR` (default
`~/.cache/hostprocess`), in a directory named by the lockfile's digest: a change of pins gets a
new one, a warm machine reuses it. The script itself runs from a fresh copy beside a link to
those `node_modules`, so editing it needs no reinstall.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from machine_cache import provisioned_once

PACKAGE_DIR = Path("tests/verifiers/npm")
SCRIPT = "verify-bundle.mjs"


class NpmVerifier:
    """`node verify-bundle.mjs BUNDLE PUBLIC_KEY EXPECTED_DIGEST`, with its packages in place."""

    def __init__(self, work_dir: Path, package_dir: Path = PACKAGE_DIR) -> None:
        lockfile = package_dir / "package-lock.json"
        if not lockfile.is_file():
            raise AssertionError(f"{lockfile} is missing: the test target must depend on it")
        installed = provisioned_once(
            "sigstore-js",
            hashlib.sha256(lockfile.read_bytes()).hexdigest(),
            lambda directory: _install(directory, package_dir),
        )
        work_dir.mkdir(parents=True, exist_ok=True)
        (work_dir / "node_modules").symlink_to(installed / "node_modules")
        shutil.copyfile(package_dir / "package.json", work_dir / "package.json")
        shutil.copyfile(package_dir / SCRIPT, work_dir / SCRIPT)
        self.script = work_dir / SCRIPT

    def verify(self, bundle: Path, public_key: Path, subject_digest: str) -> tuple[bool, str]:
        """(accepted, what the verifier printed)."""
        result = subprocess.run(
            ["node", str(self.script), str(bundle), str(public_key), subject_digest],
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = result.stdout + result.stderr
        if result.returncode not in (0, 1):
            raise AssertionError(f"the npm verifier broke (exit {result.returncode}):\n{output}")
        return result.returncode == 0 and output.startswith("OK"), output


def _install(directory: Path, package_dir: Path) -> None:
    print(f"Installing sigstore-js into {directory} (once per machine)...", flush=True)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(package_dir / name, directory / name)
    env = {**os.environ, "npm_config_update_notifier": "false"}
    result = subprocess.run(
        ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise AssertionError(
            f"`npm ci` of {package_dir}/package-lock.json failed (exit {result.returncode}):\n"
            f"{result.stdout}{result.stderr}"
        )
