"""What two builds of the example images are compared by: the targets, our processes'
descriptions, Pants' `--stats-log` counters and the files under `dist/`, for the tests that
build remotely (remote caching and remote execution)."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import zipfile
from pathlib import Path

from e2e.checkout import Checkout, load_json

TARGETS = ("examples:hello", "examples/node-agent:node-agent")
IMAGES = ("examples/hello", "examples.node-agent/node-agent")  # output paths under dist/
# Descriptions of the processes our rules run (util_rules/tool.py, layers.py, external_base.py,
# archive.py). Everything else in a build is Pants' own (interpreter discovery, zip...).
OUR_PROCESS = re.compile(
    r"^(Building hostprocess_image_tool\.pex "
    r"|Building the HostProcess base layer"
    r"|Building the (files )?layer "
    r"|Writing the (oci|docker)-archive of "
    r"|Writing the SBOM and provenance of "
    r"|Pulling the base image )"
)
COMPLETED = re.compile(r"\[INFO\] Completed: (.*)$")
COUNTER = re.compile(r"^  ([a-z_]+): (\d+)$")


def stats_counters(log: str) -> dict[str, int]:
    """The counters `--stats-log` prints at the end of a Pants run."""
    counters: dict[str, int] = {}
    in_counters = False
    for line in log.splitlines():
        if line.endswith("[INFO] Counters:"):
            in_counters = True
            continue
        counter = COUNTER.match(line) if in_counters else None
        if counter:
            counters[counter.group(1)] = int(counter.group(2))
        else:
            in_counters = False
    return counters


def completed_processes(log: str) -> list[str]:
    """The processes the log reports "Completed:", which Pants prints for those that ran here."""
    return [done.group(1) for done in map(COMPLETED.search, log.splitlines()) if done]


def dist_files(checkout: Checkout, prefix: str = "") -> dict[str, str]:
    return {
        str(path.relative_to(checkout.dist)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(checkout.dist.rglob("*"))
        if path.is_file() and str(path.relative_to(checkout.dist)).startswith(prefix)
    }


def layer_members(layout: Path, digest: str) -> dict[str, bytes]:
    with tarfile.open(layout / "blobs" / "sha256" / digest.split(":")[1], "r:*") as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()}  # type: ignore[union-attr]


def zip_entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def differences_beyond_zip_timestamps(
    expected: Checkout, actual: Checkout, output: str
) -> list[str]:
    """Compare two builds of one image layer by layer. A layer may differ only where it holds a
    zip whose entries (names and bytes) are the same: Pants' `archive` writes the sandbox's
    mtimes into zips it builds, so a zip rebuilt later differs in its timestamps alone.
    Returns what differs beyond that (nothing, if the builds agree)."""
    before, after = load_json(expected.dist / f"{output}.image.json"), load_json(
        actual.dist / f"{output}.image.json"
    )
    problems = []
    if len(before["layers"]) != len(after["layers"]):
        return [f"{output}: {len(before['layers'])} layers before, {len(after['layers'])} now"]
    for n, (old, new) in enumerate(zip(before["layers"], after["layers"])):
        if old["digest"] == new["digest"]:
            continue
        old_members = layer_members(expected.dist / output, old["digest"])
        new_members = layer_members(actual.dist / output, new["digest"])
        if list(old_members) != list(new_members):
            problems.append(
                f"{output} layer {n}: entries {list(old_members)} became {list(new_members)}"
            )
            continue
        for name in old_members:
            if old_members[name] == new_members[name]:
                continue
            if not name.endswith(".zip") or zip_entries(old_members[name]) != zip_entries(
                new_members[name]
            ):
                problems.append(f"{output} layer {n}: the content of {name} changed")
    return problems
