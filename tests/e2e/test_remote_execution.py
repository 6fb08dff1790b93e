"""Layers built by remote execution on a real REAPI engine: Bazel's reference remote worker.

One worker (server and worker in one process, see e2e/reapi_worker.py) starts on a loopback
port with an empty CAS. A local build of `examples:hello` and `examples/node-agent:node-agent`
is the reference. A second checkout packages both with `remote_execution = true`, the local
cache off: every process of the build, ours (the tool PEX, the base layer, each files layer,
each archive) and Pants' own, must run on the worker, and `dist/` must hold the same bytes.
Then, with the worker stopped, packaging `examples:hello` again must fail clearly and leave
the good outputs untouched.

Evidence that our processes ran remotely: Pants' `--stats-log` counters (every process Pants
runs on this machine counts in `local_execution_requests`, which must stay 0, while
`remote_execution_success` counts at least one execution per process of ours that the log
reports completed), and the worker's CAS, which holds hello's archives and every layer of
node-agent, outputs of our processes that no other process reads (so that no client
upload can have put them there). The local build runs with the local cache off as well, so
it really builds everything here.

`examples/node-agent`'s dashboards layer holds a zip made by Pants' `archive`, which records
the sandbox's file times: wherever it is rebuilt, that zip (and so that layer and the image
digest) differs in its timestamps alone. So node-agent is compared layer by layer, allowing
only that; `examples:hello` is compared byte for byte, every file.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

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
from e2e.reapi_worker import RemoteWorker, metadata_headers


@dataclass
class Run:
    """One `./pants package` run: exit code, output, counters, processes it reports done."""

    returncode: int
    output: str
    seconds: float
    log: Path
    counters: dict[str, int]
    completed: list[str]

    def ours(self) -> list[str]:
        return sorted(d for d in self.completed if OUR_PROCESS.match(d))


def package(checkout: Checkout, log: Path, *args: str) -> Run:
    start = time.monotonic()
    result = checkout.pants("--stats-log", "--no-local-cache", *args, check=False)
    seconds = time.monotonic() - start
    log.write_text(result.stdout)
    counters = stats_counters(result.stdout)
    completed = completed_processes(result.stdout)
    print(f"{log.name}: {seconds:.1f}s, exit {result.returncode}, counters {counters}", flush=True)
    return Run(result.returncode, result.stdout, seconds, log, counters, completed)


def remote_options(worker: RemoteWorker) -> tuple[str, ...]:
    """What pants.toml would say (README: Remote execution), as command-line options."""
    headers = str(metadata_headers()).replace("'", '"')
    return (
        "--remote-execution",
        f"--remote-execution-address={worker.address}",
        f"--remote-store-address={worker.address}",
        "--remote-instance-name=",
        f"--remote-execution-headers={headers}",
        f"--remote-store-headers={headers}",
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("remote-execution")


@pytest.fixture(scope="module")
def worker(workdir: Path) -> Iterator[RemoteWorker]:
    engine = RemoteWorker(workdir / "worker")
    engine.start()
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def local_build(workdir: Path) -> Checkout:
    checkout = copy_repo(workdir / "local")
    run = package(checkout, workdir / "local.log", "package", *TARGETS)
    assert run.returncode == 0, f"local build failed; log {run.log}:\n{run.output[-6000:]}"
    return checkout


@pytest.fixture(scope="module")
def remote_build(worker: RemoteWorker, workdir: Path) -> tuple[Checkout, Run]:
    checkout = copy_repo(workdir / "remote")
    run = package(checkout, workdir / "remote.log", *remote_options(worker), "package", *TARGETS)
    assert (
        run.returncode == 0
    ), f"remote build failed; log {run.log}, worker log {worker.log}:\n{run.output[-6000:]}"
    return checkout, run


def test_every_process_runs_on_the_worker_and_dist_is_the_same(
    local_build: Checkout, remote_build: tuple[Checkout, Run], worker: RemoteWorker
) -> None:
    checkout, run = remote_build
    ours = run.ours()
    # All our kinds of process ran (node-agent builds examples/org-base too).
    assert sum("hostprocess_image_tool.pex" in d for d in ours) == 1, ours
    assert sum(d.startswith("Building the HostProcess base layer") for d in ours) == 1, ours
    assert (
        sum(d.startswith(("Building the files layer", "Building the layer")) for d in ours) >= 5
    ), ours
    assert (
        sum(d.startswith(("Writing the oci-archive", "Writing the docker-archive")) for d in ours)
        == 2
    ), ours  # hello's oci + docker
    assert sum(d.startswith("Writing the SBOM") for d in ours) == 2, ours  # one per image
    # None ran here: not one local execution, and every remote execution succeeded.
    counters = run.counters
    assert counters["local_execution_requests"] == 0, counters
    assert counters["remote_execution_errors"] == 0, counters
    assert counters["remote_execution_rpc_errors"] == 0, counters
    assert counters["remote_execution_timeouts"] == 0, counters
    assert (
        counters["remote_execution_success"] == counters["remote_execution_requests"] >= len(ours)
    ), counters
    # The worker's CAS holds every output: hello's archives, outputs of our archive processes
    # that no process reads, so only the worker can have stored them; and every layer of both
    # images (node-agent has no archive, so no process reads its layers either).
    for suffix in ("oci.tar", "docker.tar"):
        archive = checkout.dist / f"{IMAGES[0]}.{suffix}"
        assert worker.has_blob(f"sha256:{_sha256(archive)}"), f"{archive} not built remotely"
    for image in IMAGES:
        for layer in load_json(checkout.dist / f"{image}.image.json")["layers"]:
            assert worker.has_blob(layer["digest"]), f"{image}: {layer} not built remotely"
    # The same bytes as the local build: hello, every file; node-agent, every layer but for
    # the file times in dashboards.zip (whose layer, config, manifest and so blob names follow).
    assert dist_files(checkout, "examples/hello") == dist_files(local_build, "examples/hello")
    assert differences_beyond_zip_timestamps(local_build, checkout, IMAGES[1]) == []
    assert _outside_blobs(checkout) == _outside_blobs(local_build)


def test_with_the_worker_stopped_the_build_fails_clearly_and_leaves_dist_intact(
    remote_build: tuple[Checkout, Run], worker: RemoteWorker, workdir: Path
) -> None:
    checkout, _ = remote_build
    before = dist_files(checkout)
    worker.stop()
    run = package(checkout, workdir / "stopped.log", *remote_options(worker), "package", TARGETS[0])
    # Pants does not fall back to local execution: it checks the server's capabilities first,
    # so the run fails at once, before any process, with gRPC's Unavailable status.
    assert run.returncode != 0, run.log
    errors = [line for line in run.output.splitlines() if "Error" in line]
    print("stopped worker:", *errors, sep="\n")
    assert any(
        "Unavailable" in line and "Connection refused" in line for line in errors
    ), run.output[-4000:]
    assert run.counters.get("local_execution_requests", 0) == 0, run.counters
    assert run.counters.get("remote_execution_requests", 0) == 0, run.counters
    # Nothing half-written: dist/ is exactly the good build.
    assert dist_files(checkout) == before
    assert load_json(checkout.dist / f"{IMAGES[0]}.image.json")["digest"]


def _outside_blobs(checkout: Checkout) -> set[str]:
    """node-agent's output files but its blobs (named by their digest): image.json, index..."""
    return {name for name in dist_files(checkout, IMAGES[1]) if "/blobs/" not in name}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
