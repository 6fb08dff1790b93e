#!/usr/bin/env python3
"""Layer-building benchmark: ours (the layer writer, `./pants package`) beside peers and
tar -c | gzip -6 | sha256sum, with time, output size and peak memory for every row.

Builds a synthetic tree (about 2,000 small text files and a few large half-random
binaries), then runs, side by side in one run:

  baseline  tar -c | gzip -6 | sha256sum of the tree
  peer      umoci insert of the tree into an empty OCI layout (what pants-backend-oci runs;
            `umoci init` + `umoci new` beforehand, untimed; only the insert is timed)
  peer      tar -c | zstd -3 -T<cores> | sha256sum
  ours (a)  the layer writer alone (the tool's `layer` command), and on half the tree, to
            show memory stays flat as the tree grows
  ours (b)  `./pants package`, pantsd warm, every cache cold: SOURCE_DATE_EPOCH is the
            clock's current second (later than any earlier run's), so every layer process
            misses the local (and any remote) cache, while pantsd, its parsed targets, its
            file snapshots and the tree's inputs it materialised (immutable inputs, kept while
            pantsd runs) stay warm from an untimed run just before (same flags, an epoch of its
            own)
  ours (c)  a warm no-op `./pants package` of the benchmark image (./pants hands it to Pants'
            native client, pantsd being up), and (c') the same with PANTS_NO_NATIVE_CLIENT=1
            (Pants' Python client); median of 7 runs each
  ours (d)  the same two no-ops for the README's `./pants package examples:hello`

and prints wall time, ratio to the baseline, throughput, peak memory (max RSS), the output's
size (the tree's layer blob, or the compressed stream for peers) and its ratio to gzip -6's.
The row's max RSS is the largest process's: for ./pants rows, the client's (pantsd's own
peak is printed at the end).

After the table, where (b)'s time went, from Pants' own data: (b) runs with --stats-log and
with benchmarks/workunit_timings.py (a streaming workunit handler, loaded in the benchmark's
checkout from pantsd's start) recording its workunits; it prints the split between Pants
(client, options, targets, writing dist/), materialising the layer processes' sandboxes,
running them and capturing their outputs (the local_process_total_time_run_ms counter), and
within that the files layer's tool itself (its process's lifetime, polled in /proc), then
the longest workunits and the non-zero counters.

  ours (e)  the same tree as two layers (`bench:layered`: the large binaries, then the 2,000
            scripts), packaged once; then, 7 times, one script changed and the image packaged
            again: the median, how many processes ran, and where its time went

Then the scale rows: trees of 2,000 and 100,000 small files (a node_modules-sized layer,
1-6 KB each, deterministic content), each timed for tar | gzip -6, the writer alone, the
first `./pants package` of the tree (a `hostprocess_files` target: pantsd snapshots the
tree, with one target however many files) and a cold one as (b), with time per file (us/file) and the ratio to gzip -6 over the
same tree, so that growth with the file count can be read off, and each cold run's split.
--skip-scale leaves them out.

Usage: python3 benchmarks/layer_benchmark.py [--size-mib 1100] [--scale-files 100000]
           [--skip-scale] [--keep]
Run from the repository root; it works in benchmarks/.work/ (git- and pants-ignored).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Run directly rather than by Pants, so build-support/ (a source root) is not on the path.
sys.path.insert(0, str(REPO / "build-support"))
from repo_copy import PANTS_ENTRIES, copy_entries  # noqa: E402

WORK = REPO / "benchmarks" / ".work"
MIB = 1 << 20
SMALL_FILES = 2000
LARGE_FILES = 4
NO_OP_RUNS = 7
CORES = os.cpu_count() or 1
# The benchmark checkout loads benchmarks/workunit_timings.py from here, from pantsd's start.
TIMINGS_PLUGIN = "workunit_timings"
# pantsd needs more than its default 4 GiB to hold a snapshot of 100,000 files (it reaches
# 4.2 GiB on `./pants filedeps` of that one target alone, and then restarts); the README says
# so for trees this large.
PANTSD_MEMORY = "8GiB"
PANTS_ENV = {
    "PANTS_PYTHONPATH": f"+['{WORK / 'checkout' / 'bench-plugins'}']",
    "PANTS_BACKEND_PACKAGES": f"+['{TIMINGS_PLUGIN}']",
    "PANTS_PANTSD_MAX_MEMORY_USAGE": PANTSD_MEMORY,
}


@dataclass(frozen=True)
class Row:
    """One measured step. `input_bytes` is the tree it read (for MB/s, and to compare only
    with a baseline over the same tree); `output_bytes` the blob or stream it wrote."""

    name: str
    seconds: float
    max_rss_mib: float
    input_bytes: int
    output_bytes: int | None = None
    files: int = 0


# --- trees ---------------------------------------------------------------------------------


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


def make_small_file_tree(root: Path, files: int, seed: int = 2) -> None:
    """`files` files like a node_modules tree: bin/node.exe (the entrypoint) and JavaScript
    files of 1-6 KB, 100 to a directory, each a slice of one word corpus under its own
    header line (so no two are alike)."""
    rng = random.Random(seed)
    words = [f"ident{i}" for i in range(2048)]
    corpus = " ".join(rng.choices(words, k=200_000))
    (root / "bin").mkdir(parents=True)
    (root / "bin/node.exe").write_bytes(b"MZ" + rng.randbytes(4094))
    for i in range(files - 1):
        path = root / f"node_modules/pkg{i // 100:04d}/lib/mod{i:06d}.js"
        if i % 100 == 0:
            path.parent.mkdir(parents=True)
        start = rng.randrange(len(corpus) - 6144)
        body = corpus[start : start + rng.randint(1024, 6144)]
        path.write_text(f"// module {i}\nexport const m{i} = `{body}`;\n")


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


# --- measuring -----------------------------------------------------------------------------


class ToolWatch:
    """How long the files layer's tool process itself ran during a `./pants` run, from /proc
    polled every few milliseconds (its argv has `layer --root`), so that the process's time
    in Pants splits into the tool and the engine's own work around it (materialising the
    sandbox before, capturing the outputs into the store after)."""

    POLL_SECONDS = 0.005
    ARGV = b"\0layer\0--root\0"

    def __init__(self) -> None:
        self._seen: dict[int, tuple[float, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> "ToolWatch":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.wait(self.POLL_SECONDS):
            now = time.perf_counter()
            for pid in self._tool_pids():
                first, _ = self._seen.get(pid, (now, now))
                self._seen[pid] = (first, now)

    def _tool_pids(self) -> list[int]:
        pids = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    argv = Path(entry.path, "cmdline").read_bytes()
                except OSError:
                    continue
                if self.ARGV in argv:
                    pids.append(int(entry.name))
        return pids

    @property
    def seconds(self) -> float:
        """The longest-lived tool process (the pex's shim execs Python, so one pid)."""
        return max((last - first for first, last in self._seen.values()), default=0.0)


def measure(command: str, cwd: Path, log: Path, env: dict[str, str] | None = None) -> Row:
    """Wall time and the peak RSS of the largest process in `command` (GNU time's %M);
    its output goes to `log`, shown if it fails. The row is still to be named."""
    rss_file = WORK / "rss.txt"
    start = time.perf_counter()
    with open(log, "w") as out:
        result = subprocess.run(
            ["/usr/bin/time", "-o", str(rss_file), "-f", "%M", "bash", "-c",
             f"set -o pipefail; {command}"],
            cwd=cwd, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"`{command}` failed ({result.returncode}):\n{log.read_text()[-4000:]}")
    return Row("", seconds, int(rss_file.read_text().split()[-1]) / 1024, 0)


def stream_row(name: str, compressor: str, tree: Path, files: int = 0) -> Row:
    """`tar -c | <compressor> | sha256sum`, counting the compressed bytes on the way."""
    size_file = WORK / "stream-size.txt"
    command = f"tar -c -C {tree} . | {compressor} | tee >(wc -c > {size_file}) | sha256sum; wait $!"
    row = measure(command, WORK, WORK / "logs" / "stream.log")
    return replace(
        row, name=name, input_bytes=tree_bytes(tree), output_bytes=int(size_file.read_text()),
        files=files,
    )  # fmt: skip


def writer_row(name: str, python: Path, tree: Path, files: int = 0) -> Row:
    """The tool's `layer` command alone, as the package rule runs it (ISA-L gzip level 1)."""
    out = WORK / f"writer-{tree.name}-{files}"
    shutil.rmtree(out, ignore_errors=True)
    layer = f"{python} -m hostprocess.oci.cli layer --level 1 --threads {CORES}"
    row = measure(
        f"{layer} --root {tree} --out {out}",
        WORK,
        WORK / "logs" / "writer.log",
        {"PYTHONPATH": str(REPO / "pants-plugins")},
    )
    size = json.loads((out / "layer.json").read_text())["size"]
    shutil.rmtree(out)
    return replace(row, name=name, input_bytes=tree_bytes(tree), output_bytes=size, files=files)


def umoci_row(name: str, tree: Path) -> Row:
    """`umoci insert` of `tree` into a fresh empty layout; only the insert is timed."""
    layout = WORK / "umoci-layout"
    shutil.rmtree(layout, ignore_errors=True)
    subprocess.run(["umoci", "init", "--layout", str(layout)], check=True)
    subprocess.run(["umoci", "new", "--image", f"{layout}:t"], check=True)
    row = measure(
        f"umoci insert --image {layout}:t {tree} /tree", WORK, WORK / "logs" / "umoci.log"
    )
    [entry] = json.loads((layout / "index.json").read_text())["manifests"]
    manifest = json.loads((layout / "blobs/sha256" / entry["digest"].split(":")[1]).read_text())
    size = manifest["layers"][-1]["size"]
    shutil.rmtree(layout)
    return replace(row, name=name, input_bytes=tree_bytes(tree), output_bytes=size)


_last_epoch = 0


def fresh_epoch() -> int:
    """SOURCE_DATE_EPOCH from the clock: a second no earlier run can have used, so every layer
    process's cache key is new (and still a valid tar mtime)."""
    global _last_epoch
    _last_epoch = max(int(time.time()), _last_epoch + 1)
    return _last_epoch


def layer_blob_size(checkout: Path, target_name: str) -> int:
    """The size of the image's last layer (the tree's), from the `<name>.image.json` written."""
    [summary] = checkout.glob(f"dist/**/{target_name}.image.json")
    return json.loads(summary.read_text())["layers"][-1]["size"]


def package_row(
    name: str, checkout: Path, target: str, epoch: int, tree: Path, files: int = 0,
    timings: Path | None = None, extra_env: dict[str, str] | None = None,
) -> Row:  # fmt: skip
    """One `./pants package` in the benchmark checkout; with `timings`, it also records its
    workunits there, logs its --stats-log counters (into `timings` with .log) and how long
    the tool process itself ran (into `timings` with .tool). The untimed run before a cold
    one passes the same flags, so that the cold run's options are the ones pantsd already
    has."""
    flags = f" --stats-log --workunit-timings-out={timings}" if timings else ""
    log = timings.with_suffix(".log") if timings else WORK / "logs" / "package.log"
    with ToolWatch() as tool:
        row = measure(
            f"./pants{flags} package {target}",
            checkout,
            log,
            {**PANTS_ENV, "SOURCE_DATE_EPOCH": str(epoch), **(extra_env or {})},
        )
    if timings:
        timings.with_suffix(".tool").write_text(f"{tool.seconds}\n")
    size = layer_blob_size(checkout, target.split(":")[-1])
    return replace(row, name=name, input_bytes=tree_bytes(tree), output_bytes=size, files=files)


def median_row(runs: list[Row]) -> Row:
    """The run with the median time (its memory too)."""
    return sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]


# --- the Pants checkout --------------------------------------------------------------------


def tool_python() -> Path:
    """The tool's pinned virtualenv, exported by Pants from `[hostprocess-image-tool]`."""
    subprocess.run(["./pants", "export", "--resolve=hostprocess-image-tool"], cwd=REPO, check=True)
    [python] = sorted(
        (REPO / "dist/export/python/virtualenvs/hostprocess-image-tool").glob("*/bin/python")
    )
    return python


def image_build_file(entrypoint: str, name: str, files_target: str = "files") -> str:
    return (
        f'{files_target}(name="tree", sources=["tree/**/*"])\n'
        f'hostprocess_image(name="{name}", dependencies=[":tree"], entrypoint=["{entrypoint}"])\n'
    )


# The same tree in two layers, as a user would split it: the large binaries, then the scripts
# (the smallest layer, which (e) changes).
LAYERED_BUILD_FILE = """
files(name="binaries", sources=["tree/bin/*"])
files(name="scripts", sources=["tree/scripts/**/*"])
hostprocess_image(
    name="layered", layers=[":binaries"], dependencies=[":scripts"],
    entrypoint=["tree/bin/tool0.exe"],
)
"""
CHANGED_SCRIPT = "tree/scripts/dir00/file0000.ps1"


def pants_checkout(checkout: Path, scale_files: list[int]) -> None:
    """A copy of the repo with an image target over bench/tree and each bench/scale<N>/tree
    (keeps this build root clean), and the workunit-recording backend under bench-plugins/.
    All is written before pantsd starts, so it never sees a half-written tree."""
    copy_entries(REPO, checkout, (*PANTS_ENTRIES, "examples"))
    build_file = image_build_file("tree/bin/tool0.exe", "bench") + LAYERED_BUILD_FILE
    (checkout / "bench/BUILD").write_text(build_file)
    for files in scale_files:
        directory = checkout / "bench" / f"scale{files}"
        make_small_file_tree(directory / "tree", files)
        build_file = image_build_file("tree/bin/node.exe", f"scale{files}", "hostprocess_files")
        (directory / "BUILD").write_text(build_file)
    plugin = checkout / "bench-plugins" / TIMINGS_PLUGIN
    plugin.mkdir(parents=True)
    (plugin / "__init__.py").write_text("")
    shutil.copy(REPO / "benchmarks" / f"{TIMINGS_PLUGIN}.py", plugin / "register.py")


def pantsd_peak_mib(checkout: Path) -> float | None:
    """pantsd's peak resident memory (VmHWM), read before it is stopped (None if pantsd
    restarted and left no pid file, as when it exceeds its memory limit)."""
    pid_files = list(checkout.glob(".pids/*/pantsd/pid"))
    if not pid_files:
        return None
    status = Path(f"/proc/{pid_files[0].read_text().strip()}/status").read_text()
    [line] = [l for l in status.splitlines() if l.startswith("VmHWM:")]
    return int(line.split()[1]) / 1024


def stop_pantsd(checkout: Path) -> None:
    for pid_file in checkout.glob(".pids/*/pantsd/pid"):
        subprocess.run(["kill", pid_file.read_text().strip()], check=False)


# --- reports -------------------------------------------------------------------------------


def _ratio(value: float | None, base: float | None, fmt: str = "{:.2f}x") -> str:
    return fmt.format(value / base) if value is not None and base else "-"


def report(baseline: Row, rows: list[Row]) -> None:
    print(
        f"\nTree: {baseline.input_bytes / MIB:.0f} MiB, {SMALL_FILES} small files + "
        f"{LARGE_FILES} large; {CORES} cores. 'vs' columns compare with the baseline's time "
        "and output size (only for rows over the same tree)."
    )
    print(
        f"{'step':<88} {'seconds':>8} {'vs base':>8} {'MB/s':>6} {'max RSS MiB':>11} "
        f"{'output MiB':>10} {'vs gzip -6':>10}"
    )
    for row in [baseline, *rows]:
        same = row.input_bytes == baseline.input_bytes
        size = f"{row.output_bytes / MIB:.1f}" if row.output_bytes is not None else "-"
        print(
            f"{row.name:<88} {row.seconds:>8.2f} "
            f"{_ratio(row.seconds, baseline.seconds) if same else '-':>8} "
            f"{row.input_bytes / 1e6 / row.seconds:>6.0f} {row.max_rss_mib:>11.1f} {size:>10} "
            f"{_ratio(row.output_bytes, baseline.output_bytes) if same else '-':>10}"
        )


def report_scale(groups: list[tuple[Row, list[Row]]]) -> None:
    """Per tree: its gzip -6 baseline, then the rows over the same tree."""
    print(
        f"\nScale: trees of small files only (a few KB each); {CORES} cores; pantsd allowed "
        f"{PANTSD_MEMORY}. 'vs gzip -6' is time (and output size) over the same tree."
    )
    print(
        f"{'step':<88} {'files':>7} {'seconds':>8} {'us/file':>8} {'vs gzip -6':>10} "
        f"{'max RSS MiB':>11} {'output MiB':>10} {'size vs gzip':>12}"
    )
    for baseline, rows in groups:
        for row in [baseline, *rows]:
            size = f"{row.output_bytes / MIB:.1f}" if row.output_bytes is not None else "-"
            print(
                f"{row.name:<88} {row.files:>7} {row.seconds:>8.2f} "
                f"{row.seconds * 1e6 / row.files:>8.0f} "
                f"{_ratio(row.seconds, baseline.seconds):>10} {row.max_rss_mib:>11.1f} "
                f"{size:>10} {_ratio(row.output_bytes, baseline.output_bytes):>12}"
            )


def stats_counters(log: Path) -> dict[str, int]:
    """The --stats-log counters (process and cache metrics) from a run's log."""
    match = re.search(r"Counters:\n((?:  \S+: \d+\n)+)", log.read_text())
    lines = match.group(1).strip().splitlines() if match else []
    return {name.strip(): int(value) for name, value in (line.split(": ") for line in lines)}


def _seconds(records: list[dict[str, Any]], name: str) -> float:
    return sum(r["seconds"] for r in records if r["name"] == name)


def report_workunits(timings: Path, wall: float, title: str, top: int = 12) -> None:
    """How the run's wall time splits between Pants and its processes (layers, SBOMs), from its
    workunits and --stats-log counters; then its longest workunits (they nest and run in
    parallel, so they do not add up to the wall time)."""
    records: list[dict[str, Any]] = json.loads(timings.read_text())
    counters = stats_counters(timings.with_suffix(".log"))
    goal = _seconds(records, "pants.core.goals.package.package_asset")
    image = _seconds(records, "hostprocess.util_rules.image.build_hostprocess_image")
    spans = {r["span_id"] for r in records if r["name"] == "run_local_process"}
    processes = _seconds(records, "run_local_process")
    sandboxes = sum(
        r["seconds"] for r in records if r["name"] == "setup_sandbox" and set(r["parent_ids"]) & spans
    )  # fmt: skip
    running = counters.get("local_process_total_time_run_ms", 0) / 1000
    tool = float(timings.with_suffix(".tool").read_text())
    print(f"\n{title}: wall time {wall:.2f} s ({len(records)} workunits at debug level)")
    steps = [
        ("outside the `package` goal rule (client, options, session)", wall - goal),
        ("in the goal, around building the image (targets, writing dist/)", goal - image),
        ("building the image (build_hostprocess_image)", image),
        (f"  processes (layers, SBOMs), {len(spans)}, summed (run_local_process)", processes),
        ("    materialising their sandboxes (setup_sandbox)", sandboxes),
        ("    running and capturing (stats: local_process_total_time_run_ms)", running),
        ("      the files layer's tool itself (its process, seen in /proc)", tool),
        ("      the rest: Pants capturing outputs, other layers, SBOMs", running - tool),
    ]  # fmt: skip
    for label, seconds in steps:
        print(f"  {label:<70} {seconds:>8.2f} s {100 * seconds / wall:>5.0f}%")
    print(f"  {'longest workunits':<56} {'seconds':>8} {'% wall':>7}  description")
    for record in sorted(records, key=lambda r: -r["seconds"])[:top]:
        description = record["description"].replace("\n", " ")[:60]
        share = 100 * record["seconds"] / wall
        print(f"  {record['name']:<56} {record['seconds']:>8.2f} {share:>6.0f}%  {description}")
    shown = ", ".join(f"{name}={value}" for name, value in sorted(counters.items()) if value)
    print(f"  --stats-log counters (non-zero): {shown or '(none logged)'}")


# --- the runs ------------------------------------------------------------------------------


def main_rows(python: Path, tree: Path, half: Path, checkout: Path) -> tuple[Row, list[Row]]:
    """The table over the main tree; also prints (b)'s breakdown."""
    baseline = stream_row("baseline: tar -c | gzip -6 | sha256sum", "gzip -6", tree)
    rows = [
        umoci_row("peer: umoci insert into an empty layout (pants-backend-oci's step)", tree),
        stream_row(f"peer: tar -c | zstd -3 -T{CORES} | sha256sum", f"zstd -3 -T{CORES}", tree),
        writer_row("ours (a) layer writer", python, tree),
        writer_row("ours (a) layer writer, half the tree (memory)", python, half),
    ]
    # Untimed: starts pantsd, parses the targets and snapshots the tree, so that (b) finds
    # pantsd warm; its epoch is fresh too, so it does not warm (b)'s layer processes.
    timings = WORK / "logs" / "cold-workunits.json"
    package_row("warm-up", checkout, "bench:bench", fresh_epoch(), tree, timings=timings)
    epoch = fresh_epoch()
    cold = package_row(
        f"ours (b) ./pants package, pantsd warm, every cache cold (SOURCE_DATE_EPOCH={epoch})",
        checkout, "bench:bench", epoch, tree, timings=timings,
    )  # fmt: skip
    rows.append(cold)
    rows.append(
        median_row(
            [package_row("", checkout, "bench:bench", epoch, tree) for _ in range(NO_OP_RUNS)]
        )
    )
    rows[-1] = replace(rows[-1], name="ours (c) warm no-op, ./pants (native client when pantsd up)")
    python_client = [
        package_row("", checkout, "bench:bench", epoch, tree, extra_env={"PANTS_NO_NATIVE_CLIENT": "1"})
        for _ in range(NO_OP_RUNS)
    ]  # fmt: skip
    rows.append(
        replace(
            median_row(python_client),
            name="ours (c') warm no-op, Python client (PANTS_NO_NATIVE_CLIENT=1)",
        )
    )
    rows += hello_no_op_rows(checkout, epoch)
    changes = WORK / "logs" / "one-file-workunits.json"
    one_file, processes = one_file_change_row(checkout, epoch, changes)
    rows.append(one_file)
    report(baseline, rows)
    print(
        f"(c), (c'), (d) and (d'): median of {NO_OP_RUNS} runs each. (e): median of "
        f"{NO_OP_RUNS}; every run ran {processes} and rewrote dist/ (its output is the image's "
        "whole layout)."
    )
    report_workunits(timings, cold.seconds, "Where (b)'s time went (Pants' workunits)")
    report_workunits(changes, one_file.seconds, "Where (e)'s time went (its median run)", 6)
    return baseline, rows


def one_file_change_row(checkout: Path, epoch: int, timings: Path) -> tuple[Row, str]:
    """(e): `bench:layered` (the tree as two layers) packaged once, untimed; then, NO_OP_RUNS
    times, one line appended to one script and the image packaged again. Returns the median
    run (whose workunits are left in `timings`) and how many processes the runs ran, from
    their --stats-log counters (1 when only the changed layer is rebuilt)."""
    tree = checkout / "bench" / "tree"
    package_row("warm-up", checkout, "bench:layered", epoch, tree)
    runs: list[tuple[Row, Path]] = []
    for run in range(NO_OP_RUNS):
        with open(checkout / "bench" / CHANGED_SCRIPT, "a") as script:
            script.write(f"# change {run}\n")
        run_timings = timings.with_name(f"{timings.stem}-{run}.json")
        runs.append(
            (
                package_row("", checkout, "bench:layered", epoch, tree, timings=run_timings),
                run_timings,
            )
        )
    counts = {
        stats_counters(t.with_suffix(".log")).get("local_execution_requests", 0) for _, t in runs
    }
    row, median_timings = sorted(runs, key=lambda run: run[0].seconds)[len(runs) // 2]
    for suffix in (".json", ".log", ".tool"):
        shutil.copy(median_timings.with_suffix(suffix), timings.with_suffix(suffix))
    label = "ours (e) one script changed in bench:layered's smallest layer (2,000 files)"
    processes = " or ".join(
        f"{count} process{'es' if count != 1 else ''}" for count in sorted(counts)
    )
    return replace(row, name=label, input_bytes=0, output_bytes=None), processes


def hello_no_op_rows(checkout: Path, epoch: int) -> list[Row]:
    """The README's own `./pants package examples:hello` as a warm no-op, through each client."""
    examples = checkout / "examples"
    package_row("warm-up", checkout, "examples:hello", epoch, examples)
    clients: tuple[tuple[str, dict[str, str]], ...] = (
        ("ours (d) warm no-op of examples:hello, ./pants (native client)", {}),
        ("ours (d') warm no-op of examples:hello, Python client", {"PANTS_NO_NATIVE_CLIENT": "1"}),
    )
    rows = []
    for label, env in clients:
        runs = [
            package_row("", checkout, "examples:hello", epoch, examples, extra_env=env)
            for _ in range(NO_OP_RUNS)
        ]
        rows.append(replace(median_row(runs), name=label))
    return rows


def scale_rows(python: Path, checkout: Path, files: int) -> tuple[Row, list[Row]]:
    """gzip -6, the writer and a cold package over a tree of `files` small files."""
    name = f"scale{files}"
    tree = checkout / "bench" / name / "tree"
    target = f"bench/{name}:{name}"
    baseline = stream_row(f"baseline: tar -c | gzip -6 | sha256sum, {files} files", "gzip -6",
                          tree, files)  # fmt: skip
    writer = writer_row(f"ours: layer writer, {files} files", python, tree, files)
    timings = WORK / "logs" / f"{name}-workunits.json"
    first = package_row(
        "ours: first ./pants package of the tree (pantsd snapshots it: one hostprocess_files)",
        checkout, target, fresh_epoch(), tree, files, timings=timings,
    )  # fmt: skip
    epoch = fresh_epoch()
    cold = package_row(
        f"ours: ./pants package, pantsd warm, every cache cold (SOURCE_DATE_EPOCH={epoch})",
        checkout, target, epoch, tree, files, timings=timings,
    )  # fmt: skip
    report_workunits(timings, cold.seconds, f"Where the {files}-file cold package's time went", 8)
    return baseline, [writer, first, cold]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size-mib", type=int, default=1100, help="size of the large binaries in all"
    )
    parser.add_argument("--scale-files", type=int, default=100_000, help="the large scale tree")
    parser.add_argument("--skip-scale", action="store_true", help="leave out the scale rows")
    parser.add_argument("--keep", action="store_true", help="keep benchmarks/.work afterwards")
    args = parser.parse_args()
    for program in ("umoci", "zstd", "/usr/bin/time"):
        if not shutil.which(program):
            sys.exit(f"{program} not found: apt-get install umoci zstd time")

    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "logs").mkdir(parents=True)
    checkout, half = WORK / "checkout", WORK / "half"
    tree = checkout / "bench" / "tree"
    make_tree(tree, args.size_mib)
    make_tree(half, args.size_mib // 2)
    scale_files = [] if args.skip_scale else [SMALL_FILES, args.scale_files]
    pants_checkout(checkout, scale_files)
    python = tool_python()
    try:
        main_rows(python, tree, half, checkout)
        if scale_files:
            report_scale([scale_rows(python, checkout, files) for files in scale_files])
        peak = pantsd_peak_mib(checkout)
        print(f"\npantsd's own peak memory (VmHWM): {f'{peak:.0f} MiB' if peak else 'unknown'}.")
    finally:
        stop_pantsd(checkout)
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
