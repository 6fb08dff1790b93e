#!/usr/bin/env python3
"""Layer-building benchmark: our writer and `./pants package` against tar | gzip -6 | sha256sum.

Builds a synthetic tree (about 2,000 small text files and a few large half-random
binaries), then runs, side by side in one run:

  baseline   tar -c | gzip -6 | sha256sum of the tree
  (a)        the layer writer alone (the tool's `layer` command)
  (b)        `./pants package` with pantsd warm and the layer's process cache cold
  (c)        a warm no-op `./pants package`

and prints wall time, ratio to the baseline and peak memory (max RSS) of each. (a) also runs
on half the tree to show memory stays flat as the tree grows.

Usage: python3 benchmarks/layer_benchmark.py [--size-mib 1100] [--keep]
Run from the repository root; it works in benchmarks/.work/ (git- and pants-ignored).
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Run directly rather than by Pants, so build-support/ (a source root) is not on the path.
sys.path.insert(0, str(REPO / "build-support"))
from repo_copy import copy_entries  # noqa: E402

WORK = REPO / "benchmarks" / ".work"
SMALL_FILES = 2000
LARGE_FILES = 4


@dataclass(frozen=True)
class Measurement:
    name: str
    seconds: float
    max_rss_mib: float


def make_tree(root: Path, total_mib: int, seed: int = 1) -> None:
    """Deterministic content: text files of a few KB, then half-random, half-text binaries."""
    rng = random.Random(seed)
    words = [f"word{i}" for i in range(512)]
    for i in range(SMALL_FILES):
        path = root / f"scripts/dir{i % 40:02d}/file{i:04d}.ps1"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = (" ".join(rng.choices(words, k=12)) for _ in range(rng.randint(10, 80)))
        path.write_text("\n".join(lines) + "\n")
    large_bytes = (total_mib << 20) // LARGE_FILES
    chunk = 1 << 20
    text = (" ".join(words) + "\n").encode() * (chunk // 3000 + 1)
    for i in range(LARGE_FILES):
        path = root / f"bin/tool{i}.exe"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            for n in range(large_bytes // chunk):
                f.write(rng.randbytes(chunk) if n % 2 == 0 else text[:chunk])


def measure(name: str, command: str, cwd: Path, env: dict[str, str] | None = None) -> Measurement:
    """Wall time and the peak RSS of the largest process in `command` (GNU time's %M)."""
    rss_file = WORK / "rss.txt"
    start = time.perf_counter()
    subprocess.run(
        [
            "/usr/bin/time",
            "-o",
            str(rss_file),
            "-f",
            "%M",
            "bash",
            "-c",
            f"set -o pipefail; {command}",
        ],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - start
    return Measurement(name, seconds, int(rss_file.read_text().split()[-1]) / 1024)


def tool_python() -> Path:
    """The tool's pinned virtualenv, exported by Pants from `[hostprocess-image-tool]`."""
    subprocess.run(["./pants", "export", "--resolve=hostprocess-image-tool"], cwd=REPO, check=True)
    [python] = sorted(
        (REPO / "dist/export/python/virtualenvs/hostprocess-image-tool").glob("*/bin/python")
    )
    return python


def pants_checkout(checkout: Path) -> Path:
    """A copy of the repo with an image target over bench/tree (keeps this build root clean)."""
    copy_entries(REPO, checkout)
    (checkout / "bench/BUILD").write_text(
        'files(name="tree", sources=["tree/**/*"])\n'
        'hostprocess_image(name="bench", dependencies=[":tree"], entrypoint=["tree/bin/tool0.exe"])\n'
    )
    return checkout


def pantsd_peak_mib(checkout: Path) -> float:
    """pantsd's peak resident memory (VmHWM), read before it is stopped."""
    [pid_file] = checkout.glob(".pids/*/pantsd/pid")
    status = Path(f"/proc/{pid_file.read_text().strip()}/status").read_text()
    [line] = [l for l in status.splitlines() if l.startswith("VmHWM:")]
    return int(line.split()[1]) / 1024


def report(baseline: Measurement, rows: list[Measurement], size_mib: float) -> None:
    print(
        f"\nTree: {size_mib:.0f} MiB, {SMALL_FILES} small files + {LARGE_FILES} large; {os.cpu_count()} cores"
    )
    print(f"{'step':<48} {'seconds':>9} {'vs baseline':>12} {'MB/s':>8} {'max RSS MiB':>12}")
    for row in [baseline, *rows]:
        ratio = row.seconds / baseline.seconds
        rate = size_mib * 1.048576 / row.seconds
        print(
            f"{row.name:<48} {row.seconds:>9.2f} {ratio:>11.2f}x {rate:>8.0f} {row.max_rss_mib:>12.1f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size-mib", type=int, default=1100, help="size of the large binaries in all"
    )
    parser.add_argument("--keep", action="store_true", help="keep benchmarks/.work afterwards")
    args = parser.parse_args()

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    checkout, half = WORK / "checkout", WORK / "half"
    tree = checkout / "bench" / "tree"
    make_tree(tree, args.size_mib)
    make_tree(half, args.size_mib // 2)
    size_mib = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file()) / (1 << 20)

    python = tool_python()
    env = {"PYTHONPATH": str(REPO / "pants-plugins")}
    layer = f"{python} -m hostprocess.oci.cli layer --level 1 --threads {os.cpu_count()}"

    baseline = measure(
        "baseline: tar -c | gzip -6 | sha256sum", f"tar -c -C {tree} . | gzip -6 | sha256sum", WORK
    )
    rows = [
        measure("(a) layer writer", f"{layer} --root {tree} --out {WORK}/out", WORK, env),
        measure(
            "(a) layer writer, half the tree (memory)",
            f"{layer} --root {half} --out {WORK}/out-half",
            WORK,
            env,
        ),
    ]

    pants_checkout(checkout)
    package = "./pants package bench:bench"
    subprocess.run(
        package, shell=True, cwd=checkout, check=True, env={**os.environ, "SOURCE_DATE_EPOCH": "1"}
    )
    # A new SOURCE_DATE_EPOCH changes every layer's cache key but keeps pantsd and the tool warm.
    rows.append(
        measure(
            "(b) ./pants package, pantsd warm, cache cold",
            package,
            checkout,
            {"SOURCE_DATE_EPOCH": "2"},
        )
    )
    rows.append(
        measure("(c) ./pants package, warm no-op", package, checkout, {"SOURCE_DATE_EPOCH": "2"})
    )
    pantsd_hwm = pantsd_peak_mib(checkout)
    subprocess.run("kill $(cat .pids/*/pantsd/pid) 2>/dev/null || true", shell=True, cwd=checkout)

    report(baseline, rows, size_mib)
    print(
        f"\n(b) and (c): max RSS is the ./pants client's; pantsd's own peak was {pantsd_hwm:.0f} MiB."
    )
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
