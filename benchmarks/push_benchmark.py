#!/usr/bin/env python3
"""Push benchmark: our registry client against `skopeo copy`, to a real registry on loopback.

Builds a synthetic tree (small text files and half-random binaries), writes it as an OCI
layout with the plugin's core (the built-in base layer plus one gzip layer per part of the
tree), starts Debian's `docker-registry` on 127.0.0.1 (anonymous, plain HTTP, storage in a
temporary directory), and runs, side by side in one run:

  (a)  our push:   python -m hostprocess.oci.cli push --layout ... --registry 127.0.0.1:PORT
                   --repository bench/ours --tag t
  (a') with --baseline-ref REV: the same command from REV's `pants-plugins/` (exported with
                   `git archive` to the working directory), in the same interpreter
  (b)  skopeo:     skopeo copy --dest-tls-verify=false oci:<layout>:t
                   docker://127.0.0.1:PORT/bench/skopeo:t
  (c)  our push again, (c') the baseline's push again: republishes, which must upload nothing;
       also the push's own network time (printed by the push, without Python's start)
  (d)  skopeo copy again, for comparison
  (e)  after one script of the last part changes (a new layout, written untimed): our push
       to the registry of (c), which must upload only that part's layer and the config, and
  (f)  skopeo copy of the same to its registry of (d)

Each step runs --repeat times and the median is reported. Every fresh push goes to a registry
just started with empty storage on a new port, so none finds a blob to skip or (skopeo,
through its blob-info cache) to mount from another repository; who goes first rotates. The
layout's blobs are read once beforehand so that all start from the page cache. It prints
wall time, the ratio to skopeo, throughput and peak memory (max RSS) of each, the ratio of
our push to the baseline's, checks that the pushes left the layout's manifest digest in the
registry, that every republish uploaded nothing and that (e) uploaded only the changed layer
and the config, and stops every registry it started.

Usage: python3 benchmarks/push_benchmark.py [--size-mib 400] [--layers 2] [--repeat 3]
           [--baseline-ref REV] [--python PY] [--keep]
Run from the repository root. Without --python it exports the image tool's virtualenv
(`./pants export --resolve=hostprocess-image-tool`), as layer_benchmark.py does.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

REPO = Path(__file__).resolve().parent.parent
TAG = "t"
CHANGED_TAG = "changed"  # (e) and (f) push the layout with one script changed under this tag
SMALL_FILES_PER_PART = 500
LARGE_FILES_PER_PART = 2
STARTUP_SECONDS = 20
MIB = 1 << 20


@dataclass(frozen=True)
class Measurement:
    name: str
    seconds: float
    max_rss_mib: float
    output: str


# --- the tree and the layout ---------------------------------------------------------------


def make_tree(root: Path, total_mib: int, parts: int, seed: int = 1) -> None:
    """Deterministic content in `parts` directories: text files of a few KB, then binaries
    whose 1 MiB blocks alternate between random bytes and text."""
    rng = random.Random(seed)
    words = [f"word{i}" for i in range(512)]
    text = (" ".join(words) + "\n").encode() * (MIB // 3000 + 1)
    large_bytes = (total_mib * MIB) // (parts * LARGE_FILES_PER_PART)
    for part in range(parts):
        for i in range(SMALL_FILES_PER_PART):
            path = root / f"part{part}/scripts/dir{i % 20:02d}/file{i:04d}.ps1"
            path.parent.mkdir(parents=True, exist_ok=True)
            lines = (" ".join(rng.choices(words, k=12)) for _ in range(rng.randint(10, 80)))
            path.write_text("\n".join(lines) + "\n")
        for i in range(LARGE_FILES_PER_PART):
            path = root / f"part{part}/bin/tool{i}.exe"
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as f:
                for n in range(large_bytes // MIB):
                    f.write(rng.randbytes(MIB) if n % 2 == 0 else text[:MIB])


def write_layout(tree: Path, layout: Path) -> None:
    """(Runs in the tool's virtualenv.) The base layer plus one layer per part, as a layout."""
    from hostprocess.oci.image import Layer, RuntimeConfig, build_image
    from hostprocess.oci.layout import blob_path, layout_files
    from hostprocess.oci.types import Compression
    from hostprocess.oci.windows.base import base_layer_files
    from hostprocess.oci.windows.layer import LayerFile, write_layer

    (layout / "blobs" / "sha256").mkdir(parents=True)
    compression = Compression.GZIP

    def layer(files: Sequence[LayerFile], *, base: bool) -> Layer:
        partial = layout / "layer.partial"
        with open(partial, "wb") as out:
            digests = write_layer(
                files, out, base=base, compression=compression, level=compression.default_level,
                mtime=0, threads=os.cpu_count(),
            )  # fmt: skip
        os.replace(partial, layout / blob_path(digests.digest))
        return Layer(digests.digest, digests.size, digests.diff_id, compression)

    layers = [layer(base_layer_files((REPO / "cc0-legalcode.txt").read_bytes()), base=True)]
    history = ["base"]
    for part in sorted(p for p in tree.iterdir() if p.is_dir()):
        files = [
            LayerFile(path.relative_to(tree).as_posix(), path)
            for path in sorted(part.rglob("*"))
            if path.is_file()
        ]
        layers.append(layer(files, base=False))
        history.append(f"COPY {part.name}")
    image = build_image(RuntimeConfig(entrypoint=["part0/bin/tool0.exe"]), layers, architecture="amd64", created=0,
                        history=history)  # fmt: skip
    for rel, data in layout_files(image, [TAG]).items():
        (layout / rel).write_bytes(data)


def change_one_script(tree: Path, parts: int) -> None:
    """One line more in one script of the last part: only that part's layer changes."""
    with open(tree / f"part{parts - 1}/scripts/dir00/file0000.ps1", "a") as script:
        script.write("# changed\n")


def tool_python() -> Path:
    """The tool's pinned virtualenv, exported by Pants from `[hostprocess-image-tool]`."""
    subprocess.run(["./pants", "export", "--resolve=hostprocess-image-tool"], cwd=REPO, check=True)
    [python] = sorted(
        (REPO / "dist/export/python/virtualenvs/hostprocess-image-tool").glob("*/bin/python")
    )
    return python


def layout_blobs(layout: Path) -> tuple[str, list[tuple[str, int]]]:
    """The manifest digest, and (digest, size) of each blob it names: layers, then the config."""
    [entry] = json.loads((layout / "index.json").read_text())["manifests"]
    manifest = json.loads((layout / "blobs/sha256" / entry["digest"].split(":")[1]).read_bytes())
    blobs = [(d["digest"], d["size"]) for d in [*manifest["layers"], manifest["config"]]]
    return entry["digest"], blobs


# --- the registry ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(host: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{host}/v2/", timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def start_registry(directory: Path) -> tuple[subprocess.Popen, str, Path]:
    """`docker-registry serve` on a free loopback port: anonymous, plain HTTP, no access log."""
    binary = shutil.which("docker-registry")
    if not binary:
        sys.exit("docker-registry not found on PATH: apt-get install docker-registry")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    directory.mkdir(parents=True, exist_ok=True)
    for _ in range(3):  # another process may take the port between choosing and binding it
        port = free_port()
        config = {
            "version": "0.1",
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(directory / "storage")},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
        }
        config_path = directory / "config.yml"  # JSON is YAML
        config_path.write_text(json.dumps(config, indent=2))
        log_path = directory / "registry.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [binary, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT, env=env
            )
        host = f"127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and process.poll() is None and not answers(host):
            time.sleep(0.05)
        if process.poll() is None and answers(host):
            return process, host, log_path
        stop(process)
        if "address already in use" not in log_path.read_text(errors="replace"):
            break
    sys.exit(f"docker-registry did not start; its log:\n{log_path.read_text(errors='replace')}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- measuring --------------------------------------------------------------------------------


def measure(
    name: str, argv: Sequence[str], work: Path, env: dict[str, str] | None = None
) -> Measurement:
    """Wall time and peak RSS (GNU time's %M) of one command; fails loudly if it fails."""
    rss_file = work / "rss.txt"
    start = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-o", str(rss_file), "-f", "%M", *argv],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{name} failed ({result.returncode}):\n{result.stdout}")
    return Measurement(name, seconds, int(rss_file.read_text().split()[-1]) / 1024, result.stdout)


def served_digest(host: str, repository: str, tag: str = TAG) -> str:
    argv = ["skopeo", "inspect", "--tls-verify=false", "--no-creds"]
    result = subprocess.run(
        [*argv, f"docker://{host}/{repository}:{tag}"], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)["Digest"]


def median(runs: list[Measurement], name: str) -> Measurement:
    """The run with the median time (its memory too), under the row's name."""
    middle = sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]
    return Measurement(name, middle.seconds, middle.max_rss_mib, middle.output)


PushFunction = Callable[..., Measurement]  # (registry host, repository, tag=TAG)


@dataclass(frozen=True)
class Contender:
    """One way of pushing the layout: `push(host, repository)` measures one push."""

    key: str  # also the repository, bench/<key>
    fresh_row: str
    again_row: str
    push: PushFunction
    ours: bool  # our CLI, whose output says what it uploaded


def export_baseline(ref: str, work: Path) -> Path:
    """`pants-plugins/` as it was at `ref`, for its `python -m hostprocess.oci.cli push`."""
    target = work / "baseline"
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "pants-plugins"],
        cwd=REPO,
        check=True,
        stdout=subprocess.PIPE,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "pants-plugins"


def our_push(python: Path, plugins: Path, layout: Path, work: Path, name: str) -> PushFunction:
    def push(host: str, repository: str, tag: str = TAG) -> Measurement:
        argv = [str(python), "-m", "hostprocess.oci.cli", "push", "--layout", str(layout)]
        argv += ["--registry", host, "--repository", repository, "--tag", tag]
        return measure(name, argv, work, {"PYTHONPATH": str(plugins)})

    return push


def skopeo_push(layout: Path, work: Path) -> PushFunction:
    def push(host: str, repository: str, tag: str = TAG) -> Measurement:
        argv = ["skopeo", "copy", "--retry-times", "0", "--dest-tls-verify=false"]
        argv += ["--dest-no-creds", f"oci:{layout}:{TAG}", f"docker://{host}/{repository}:{tag}"]
        return measure("skopeo", argv, work)

    return push


def report(
    rows: list[tuple[Measurement, bool]],
    skopeo: Measurement,
    image_bytes: int,
    blob_sizes: list[int],
    tree_mib: float,
    repeat: int,
) -> None:
    """`rows` pairs each measurement with whether it moved the whole image (for MB/s)."""
    sizes = " + ".join(f"{size / MIB:.1f}" for size in blob_sizes)
    print(
        f"\nImage: {len(blob_sizes)} blobs, {image_bytes / MIB:.1f} MiB ({sizes} MiB: layers, "
        f"then the config), from a {tree_mib:.0f} MiB tree; {os.cpu_count()} cores"
    )
    print(
        "Registry: docker-registry on 127.0.0.1 (plain HTTP, filesystem storage); "
        f"median of {repeat} runs each"
    )
    print(f"{'step':<48} {'seconds':>9} {'vs skopeo':>10} {'MB/s':>8} {'max RSS MiB':>12}")
    for row, whole_image in rows:
        ratio = row.seconds / skopeo.seconds
        rate = f"{image_bytes / 1e6 / row.seconds:>8.0f}" if whole_image else f"{'-':>8}"
        print(f"{row.name:<48} {row.seconds:>9.2f} {ratio:>9.2f}x {rate} {row.max_rss_mib:>12.1f}")


def check(
    contenders: Sequence[Contender],
    fresh: dict[str, list[Measurement]],
    again: dict[str, list[Measurement]],
    first_hosts: dict[str, str],
    digest: str,
    image_bytes: int,
) -> bool:
    """Every fresh push of ours uploaded the whole image, every republish nothing, and every
    registry serves the layout's manifest."""
    ok = True
    for contender in (c for c in contenders if c.ours):
        uploaded = [
            re.search(r"Uploaded \d+ blobs \((\d+) bytes\)", result.output)
            for result in fresh[contender.key]
        ]
        whole = all(match and int(match.group(1)) == image_bytes for match in uploaded)
        step, again_step = contender.fresh_row.split()[0], contender.again_row.split()[0]
        print(f"{step} uploaded all {image_bytes} bytes every time: {_yes(whole)}")
        nothing = all("Nothing to upload: all" in r.output for r in again[contender.key])
        print(f"{again_step} said 'Nothing to upload' every time: {_yes(nothing)}")
        took = sorted(push_seconds(r.output) for r in again[contender.key])
        print(
            f"{again_step}'s network work (the push's own time, as it prints it, without "
            f"Python's start), median: {took[len(took) // 2]:.3f} s"
        )
        ok &= whole and nothing
    for contender in contenders:
        host = first_hosts[contender.key]
        served = served_digest(host, f"bench/{contender.key}")
        ok &= served == digest
        verdict = "the layout's manifest" if served == digest else f"NOT the layout's {digest}"
        print(f"{host}/bench/{contender.key}:{TAG} serves {served}: {verdict}")
    return ok


def push_seconds(output: str) -> float:
    """The time our push prints at the end of its summary line."""
    match = re.search(r"; (\d+\.\d+) s\.$", output, re.MULTILINE)
    if not match:
        sys.exit(f"no time in our push's output:\n{output}")
    return float(match.group(1))


def check_changed(
    ours: Measurement, changed_blobs: list[tuple[str, int]], blobs: list[tuple[str, int]]
) -> bool:
    """(e) uploaded exactly the blobs the changed layout has and the first one had not."""
    new = [size for blob in changed_blobs if blob not in blobs for _, size in [blob]]
    expected = f"Uploaded {len(new)} blobs ({sum(new)} bytes)"
    ok = expected in ours.output
    print(f"(e) uploaded only the changed layer and the config ({expected}): {_yes(ok)}")
    return ok


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=400, help="size of the large binaries")
    parser.add_argument("--layers", type=int, default=2, help="layers of the tree (plus the base)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each step; median reported")
    parser.add_argument("--baseline-ref", help="also measure our push as of this git revision")
    parser.add_argument(
        "--python", type=Path, help="the tool's virtualenv python (default: export)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the working directory afterwards")
    parser.add_argument(
        "--write-layout", nargs=2, metavar=("TREE", "LAYOUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.write_layout:  # the step that runs inside the tool's virtualenv
        write_layout(Path(args.write_layout[0]), Path(args.write_layout[1]))
        return 0

    for program in ("skopeo", "docker-registry", "/usr/bin/time"):
        if not shutil.which(program):
            sys.exit(f"{program} not found: apt-get install skopeo docker-registry time")
    python = args.python or tool_python()
    tool_env = {"PYTHONPATH": str(REPO / "pants-plugins")}
    work = Path(tempfile.mkdtemp(prefix="push-benchmark-"))
    registries: list[subprocess.Popen] = []
    try:
        tree, layout = work / "tree", work / "layout"
        print(f"Writing a {args.size_mib} MiB tree and its layout under {work} ...", flush=True)
        make_tree(tree, args.size_mib, args.layers)
        tree_mib = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file()) / MIB
        start = time.perf_counter()
        subprocess.run(
            [str(python), __file__, "--write-layout", str(tree), str(layout)],
            env={**os.environ, **tool_env},
            check=True,
        )
        print(f"Layout written in {time.perf_counter() - start:.1f} s", flush=True)
        digest, blobs = layout_blobs(layout)
        image_bytes = sum(size for _, size in blobs)
        for blob_digest, _ in blobs:  # into the page cache, for every contender alike
            with open(layout / "blobs/sha256" / blob_digest.split(":")[1], "rb") as f:
                while f.read(8 * MIB):
                    pass

        ours_now = our_push(python, REPO / "pants-plugins", layout, work, "ours")
        contenders = [
            Contender("ours", "(a) our push, fresh registry", "(c) our push again", ours_now, True)
        ]
        if args.baseline_ref:
            plugins = export_baseline(args.baseline_ref, work)
            ref = args.baseline_ref
            baseline = our_push(python, plugins, layout, work, "baseline")
            fresh_row, again_row = (
                f"(a') our push at {ref}, fresh registry",
                f"(c') our push at {ref} again",
            )
            contenders.append(Contender("baseline", fresh_row, again_row, baseline, True))
        skopeo = skopeo_push(layout, work)
        contenders.append(
            Contender(
                "skopeo", "(b) skopeo copy, fresh registry", "(d) skopeo copy again", skopeo, False
            )
        )

        # Every fresh push goes to a registry of its own, just started with empty storage, on
        # a new port: nothing there to skip, and nothing for skopeo's blob-info cache to mount
        # from. Who goes first rotates. The first run's registries stay up for the republish.
        fresh: dict[str, list[Measurement]] = {c.key: [] for c in contenders}
        first_hosts: dict[str, str] = {}
        for run in range(args.repeat):
            shift = run % len(contenders)
            for contender in contenders[shift:] + contenders[:shift]:
                directory = work / f"registry-{contender.key}-{run}"
                process, host, _ = start_registry(directory)
                registries.append(process)
                fresh[contender.key].append(contender.push(host, f"bench/{contender.key}"))
                if run == 0:
                    first_hosts[contender.key] = host
                else:
                    stop(process)
                    shutil.rmtree(directory / "storage", ignore_errors=True)
        again = {
            c.key: [c.push(first_hosts[c.key], f"bench/{c.key}") for _ in range(args.repeat)]
            for c in contenders
        }
        changed = work / "layout-changed"
        change_one_script(tree, args.layers)
        subprocess.run(
            [str(python), __file__, "--write-layout", str(tree), str(changed)],
            env={**os.environ, **tool_env},
            check=True,
        )
        changed_digest, changed_blobs = layout_blobs(changed)
        ours_changed = our_push(python, REPO / "pants-plugins", changed, work, "ours")(
            first_hosts["ours"], "bench/ours", CHANGED_TAG
        )
        skopeo_changed = skopeo_push(changed, work)(
            first_hosts["skopeo"], "bench/skopeo", CHANGED_TAG
        )
        fresh_rows = {c.key: median(fresh[c.key], c.fresh_row) for c in contenders}
        rows = [(fresh_rows[c.key], True) for c in contenders]
        rows += [(median(again[c.key], c.again_row), False) for c in contenders]
        rows += [
            (replace(ours_changed, name="(e) our push, one script changed (1 run)"), False),
            (replace(skopeo_changed, name="(f) skopeo copy, the same change (1 run)"), False),
        ]
        sizes = [size for _, size in blobs]
        report(rows, fresh_rows["skopeo"], image_bytes, sizes, tree_mib, args.repeat)
        if args.baseline_ref:
            speedup = fresh_rows["baseline"].seconds / fresh_rows["ours"].seconds
            print(f"Fresh push, ours now vs at {args.baseline_ref}: {speedup:.2f}x as fast")
        print()
        ok = check(contenders, fresh, again, first_hosts, digest, image_bytes)
        ok &= check_changed(ours_changed, changed_blobs, blobs)
        for key in ("ours", "skopeo"):
            served = served_digest(first_hosts[key], f"bench/{key}", CHANGED_TAG)
            ok &= served == changed_digest
            print(
                f"bench/{key}:{CHANGED_TAG} serves the changed layout's manifest: {_yes(served == changed_digest)}"
            )
        return 0 if ok else 1
    finally:
        for process in registries:
            stop(process)
        if args.keep:
            print(f"Kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
