"""Layer builds shared through a real REAPI remote cache: BuildGrid on a loopback port.

Checkout A builds `examples:hello` and `examples/node-agent:node-agent` (which builds
examples/org-base too) with an empty local store and remote cache read+write, so every
cacheable process runs and is uploaded. Checkout B, at another path, with an empty local
store, fresh named caches and the local cache off, must then get every one of our processes
(the tool PEX, every layer, the archives) from BuildGrid, run none of them, and write
byte-identical outputs. Checkout C does the same with the server stopped: Pants warns and
builds everything locally.

Which process was a hit is read from Pants' own debug log ("remote cache hit for: <desc>")
and cross-checked with its `--stats-log` counters and with the INFO-level "Completed:" lines,
which Pants prints only for processes that finished locally. Wall times and counters of
every run are written to `remote-cache-report.json` in the test's temporary directory and
printed (`./pants test --test-output=all` shows them for a passing run).
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from e2e.buildgrid import BuildGrid
from e2e.builds import (
    IMAGES,
    OUR_PROCESS,
    TARGETS,
    completed_processes,
    differences_beyond_zip_timestamps,
    dist_files,
    stats_counters,
)
from e2e.checkout import Checkout, copy_repo, load_json

# Pants runs a cacheable process locally while it asks the remote cache (speculation, no
# delay): on a busy machine the local run of a fast process can finish first. For our
# processes that changes nothing (same bytes), but Pants' `archive` zip stores the sandbox's
# file mtimes, so a zip rebuilt locally gives the layer holding it new inputs. Run B is then
# repeated, with a fresh store, at most this many times in all.
ATTEMPTS = 3

LOOKUP = re.compile(r"\b(Starting|Canceled): Remote cache lookup for: (.*)$")
OUTCOME = re.compile(r'remote cache (hit|miss) for: "((?:[^"\\]|\\.)*)"')


@dataclass
class Build:
    """One `./pants package` run, as its log tells it."""

    name: str
    seconds: float
    log: Path
    counters: dict[str, int]
    lookups: list[str]  # every remote cache lookup, by process description
    outcomes: dict[str, str] = field(default_factory=dict)  # description -> hit | miss | canceled
    completed_locally: list[str] = field(default_factory=list)  # processes that finished locally

    @classmethod
    def parse(cls, name: str, seconds: float, log: Path) -> "Build":
        text = log.read_text()
        lookups: list[str] = []
        outcomes: dict[str, str] = {}
        for line in text.splitlines():
            lookup = LOOKUP.search(line)
            if lookup:
                if lookup.group(1) == "Starting":
                    lookups.append(lookup.group(2))
                else:
                    outcomes.setdefault(lookup.group(2), "canceled")
                continue
            outcome = OUTCOME.search(line)
            if outcome:
                outcomes[outcome.group(2).replace('\\"', '"')] = outcome.group(1)
        return cls(
            name, seconds, log, stats_counters(text), lookups, outcomes, completed_processes(text)
        )

    def ours(self) -> list[str]:
        return sorted({d for d in self.lookups if OUR_PROCESS.match(d)})

    def ours_completed_locally(self) -> list[str]:
        return sorted(d for d in self.completed_locally if OUR_PROCESS.match(d))

    def summary(self) -> dict:
        keys = (
            "remote_cache_requests",
            "remote_cache_requests_cached",
            "remote_cache_requests_uncached",
            "remote_cache_read_errors",
            "remote_cache_write_attempts",
            "remote_cache_write_successes",
            "remote_cache_write_errors",
            "remote_cache_speculation_remote_completed_first",
            "remote_cache_speculation_local_completed_first",
            "remote_cache_total_time_saved_ms",
            "local_execution_requests",
            "local_process_total_time_run_ms",
        )
        return {
            "run": self.name,
            "wall_seconds": round(self.seconds, 1),
            "counters": {k: self.counters.get(k, 0) for k in keys},
            "our_processes_looked_up": len(self.ours()),
            "our_processes_remote_hits": sum(self.outcomes.get(d) == "hit" for d in self.ours()),
            "our_processes_completed_locally": self.ours_completed_locally(),
            "log": str(self.log),
        }


class Report:
    """Wall times and counters of every run: a JSON file, also printed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.runs: list[dict] = []
        self.notes: list[str] = []

    def add(self, build: Build) -> Build:
        self.runs.append(build.summary())
        self.write()
        return build

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.write()

    def write(self) -> None:
        self.path.write_text(json.dumps({"runs": self.runs, "notes": self.notes}, indent=2) + "\n")
        lines = [f"remote cache report ({self.path}):"]
        for run in self.runs:
            c = run["counters"]
            lines.append(
                f"  {run['run']:<34} {run['wall_seconds']:>6.1f}s  remote requests {c['remote_cache_requests']}"
                f" cached {c['remote_cache_requests_cached']} uncached {c['remote_cache_requests_uncached']}"
                f" read errors {c['remote_cache_read_errors']} writes {c['remote_cache_write_successes']}/{c['remote_cache_write_attempts']}"
                f"  speculation remote/local first {c['remote_cache_speculation_remote_completed_first']}/{c['remote_cache_speculation_local_completed_first']}"
                f"  local executions {c['local_execution_requests']} ({c['local_process_total_time_run_ms']} ms)"
                f"  ours: {run['our_processes_remote_hits']}/{run['our_processes_looked_up']} remote hits,"
                f" {len(run['our_processes_completed_locally'])} built locally"
            )
        lines += [f"  note: {n}" for n in self.notes]
        print("\n".join(lines), flush=True)


def package(checkout: Checkout, name: str, logs: Path, *options: str) -> Build:
    """Package both images; the whole debug log goes to a file, the failure shows its tail."""
    log = logs / f"{name.split()[0]}.log"
    start = time.monotonic()
    result = checkout.pants("-ldebug", "--stats-log", *options, "package", *TARGETS, check=False)
    seconds = time.monotonic() - start
    log.write_text(result.stdout)
    if result.returncode != 0:
        pytest.fail(
            f"{name}: ./pants package failed ({result.returncode}); full log {log}:\n{result.stdout[-6000:]}"
        )
    return Build.parse(name, seconds, log)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("remote-cache")


@pytest.fixture(scope="module")
def report(workdir: Path) -> Report:
    return Report(workdir / "remote-cache-report.json")


@pytest.fixture(scope="module")
def buildgrid(workdir: Path) -> Iterator[BuildGrid]:
    server = BuildGrid(workdir / "buildgrid")
    server.start()
    yield server
    server.stop()


def cache_warnings(build: Build) -> list[str]:
    """What Pants logged about failed remote cache and store calls, to explain a failure."""
    lines = build.log.read_text().splitlines()
    return [line for line in lines if "[WARN]" in line or "[ERROR]" in line]


def remote_options(server: BuildGrid, *, write: bool) -> tuple[str, ...]:
    return (
        "--remote-cache-read",
        "--remote-cache-write" if write else "--no-remote-cache-write",
        f"--remote-store-address={server.address}",
        # Pants gives a cache call 1.5 s by default and counts a slower one as a read miss or a
        # write error; on a 2-core machine that also runs other e2e builds, BuildGrid's answer
        # can take longer than that, which would fail the counts below for no fault of ours.
        "--remote-cache-rpc-timeout-millis=30000",
    )


@pytest.fixture(scope="module")
def first(buildgrid: BuildGrid, workdir: Path, report: Report) -> tuple[Checkout, Build]:
    """Checkout A: every cacheable process runs (empty local store) and is uploaded."""
    checkout = copy_repo(workdir / "a")
    build = report.add(
        package(
            checkout,
            "A (empty store, read+write)",
            workdir,
            *remote_options(buildgrid, write=True),
            f"--local-store-dir={workdir / 'store-a'}",
        )
    )
    ours = build.ours()
    assert any(d.startswith("Building the HostProcess base layer") for d in ours), ours
    assert (
        sum(d.startswith(("Building the files layer", "Building the layer")) for d in ours) >= 5
    ), ours
    assert (
        sum(d.startswith(("Writing the oci-archive", "Writing the docker-archive")) for d in ours)
        == 2
    ), ours
    assert sum(d.startswith("Writing the SBOM") for d in ours) == 2, ours  # one per image
    assert sum("hostprocess_image_tool.pex" in d for d in ours) == 1, ours
    # The server started empty: every lookup missed, every process ran here and was uploaded.
    assert all(build.outcomes.get(d) == "miss" for d in ours), build.outcomes
    assert build.ours_completed_locally() == ours
    assert build.counters["remote_cache_write_errors"] == 0, (build.counters, cache_warnings(build))
    assert build.counters["remote_cache_write_successes"] >= len(ours), build.counters
    return checkout, build


def test_second_checkout_gets_every_process_from_the_remote_cache(
    first: tuple[Checkout, Build], buildgrid: BuildGrid, workdir: Path, report: Report
) -> None:
    checkout_a, build_a = first
    checkout_b = copy_repo(workdir / "b" / "a" / "much" / "deeper" / "checkout")
    for attempt in range(1, ATTEMPTS + 1):
        build = report.add(
            package(
                checkout_b,
                f"B{attempt} (empty store, read only)",
                workdir,
                *remote_options(buildgrid, write=False),
                f"--local-store-dir={workdir / f'store-b{attempt}'}",
                f"--named-caches-dir={workdir / f'named-caches-b{attempt}'}",
                "--no-local-cache",
            )
        )
        raced = sorted(d for d, outcome in build.outcomes.items() if outcome == "canceled")
        if not raced and not build.counters.get("remote_cache_speculation_local_completed_first"):
            break
        report.note(
            f"B{attempt}: a local run finished before the remote cache answered for {raced}"
        )
    # Not one of our processes missed or ran here: all came from BuildGrid.
    ours = build_a.ours()
    assert build.ours() == ours
    assert {d: build.outcomes.get(d) for d in ours} == {d: "hit" for d in ours}, build.log
    assert build.ours_completed_locally() == [], build.log
    counters = build.counters
    assert (
        counters["remote_cache_requests_cached"] == counters["remote_cache_requests"] >= len(ours)
    ), counters
    assert counters["remote_cache_read_errors"] == 0, counters
    assert counters["remote_cache_speculation_local_completed_first"] == 0, counters
    # Nothing rebuilt: the same bytes as checkout A, every file of every output.
    assert dist_files(checkout_b) == dist_files(checkout_a)
    for image in IMAGES:
        assert (
            load_json(checkout_b.dist / f"{image}.image.json")["digest"]
            == load_json(checkout_a.dist / f"{image}.image.json")["digest"]
        )


def test_without_the_server_the_build_falls_back_to_local(
    first: tuple[Checkout, Build], buildgrid: BuildGrid, workdir: Path, report: Report
) -> None:
    checkout_a, build_a = first
    buildgrid.stop()
    checkout_c = copy_repo(workdir / "c" / "elsewhere")
    build = report.add(
        package(
            checkout_c,
            "C (server stopped, empty store)",
            workdir,
            *remote_options(buildgrid, write=False),
            f"--local-store-dir={workdir / 'store-c'}",
            "--no-local-cache",
        )
    )
    # Every one of our processes ran here, and nothing came from the (unreachable) cache.
    assert build.ours_completed_locally() == build_a.ours(), build.log
    assert build.counters.get("remote_cache_requests_cached", 0) == 0, build.counters
    # hello: the same bytes, every file.
    assert dist_files(checkout_c, "examples/hello") == dist_files(checkout_a, "examples/hello")
    # node-agent: the same layers, except that the dashboards zip (built by Pants' `archive`,
    # which records sandbox mtimes) is rebuilt here and so differs in its timestamps.
    problems = differences_beyond_zip_timestamps(
        checkout_a, checkout_c, "examples.node-agent/node-agent"
    )
    assert problems == []
    a_digest = load_json(checkout_a.dist / "examples.node-agent/node-agent.image.json")["digest"]
    c_digest = load_json(checkout_c.dist / "examples.node-agent/node-agent.image.json")["digest"]
    if a_digest != c_digest:
        report.note(
            f"C: node-agent digest {c_digest} differs from A's {a_digest} only by the mtimes in "
            "dashboards.zip, which Pants' `archive` target rebuilt"
        )
