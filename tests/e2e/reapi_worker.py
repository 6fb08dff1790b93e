"""Bazel's reference REAPI worker, a real remote execution engine, built and run on loopback.

`com.google.devtools.build.remote.worker.RemoteWorker` (Bazel's `src/tools/remote`) serves
Execution, CAS, ActionCache, ByteStream and Capabilities on one gRPC port: server and worker
in one process. Debian 12 ships everything it needs (see tests/system-tools.txt, which
`./pants test` installs): `bazel-bootstrap-data`'s `A-server.jar` (Bazel's `lib.remote`,
grpc, netty, protobuf and the REAPI stubs), the worker's sources in `bazel-bootstrap-source`
and `javac` from `default-jdk-headless`. The worker's classes are compiled once per machine
into `$HOSTPROCESS_CACHE_DIR` (default `~/.cache/hostprocess`), named by the digest of the jar
and the sources, under a lock that concurrent test processes wait on.
"""
from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from pathlib import Path

from e2e.loopback_service import LoopbackService
from machine_cache import provisioned_once

SERVER_JAR = Path("/usr/share/bazel/A-server.jar")
SOURCES = Path(
    "/usr/src/bazel-bootstrap/src/tools/remote/src/main/java/com/google/devtools/build/remote/worker"
)
MAIN_CLASS = "com.google.devtools.build.remote.worker.RemoteWorker"
STARTUP_SECONDS = 120
# The worker rejects every call without a `build.bazel.remote.execution.v2.requestmetadata-bin`
# header; Pants 2.17 sends its RequestMetadata only under the older
# `google.devtools.remoteexecution.v1test.requestmetadata-bin` key. The worker reads it only
# to log it, so a fixed RequestMetadata naming the client is enough:
# tool_details { tool_name: "pants" tool_version: "2.17.1" }, no action or invocation ids
# (one value for every request; ids would be a lie).
REQUEST_METADATA = b"\x0a\x0f" + b"\x0a\x05pants" + b"\x12\x062.17.1"
METADATA_HEADER = "build.bazel.remote.execution.v2.requestmetadata-bin"


def metadata_headers() -> dict[str, str]:
    """The header both of Pants' channels (store and execution) must send to this worker."""
    return {METADATA_HEADER: base64.b64encode(REQUEST_METADATA).decode()}


def _prerequisites() -> list[Path]:
    missing = [p for p in (SERVER_JAR, SOURCES / "RemoteWorker.java") if not p.is_file()]
    missing += [Path(p) for p in ("javac", "java") if shutil.which(p) is None]
    if missing:
        raise AssertionError(
            f"The remote execution test needs {', '.join(map(str, missing))}: install "
            "`apt-get install --no-install-recommends bazel-bootstrap bazel-bootstrap-source "
            "default-jdk-headless` (`./pants test` does it as root, see tests/system-tools.txt)."
        )
    return sorted(SOURCES.glob("*.java")) + sorted(SOURCES.glob("http/*.java"))


def worker_classes() -> Path:
    """The compiled worker classes for this jar and these sources, compiled once."""
    sources = _prerequisites()
    digest = hashlib.sha256()
    for path in (SERVER_JAR, *sources):
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return provisioned_once(
        "reapi-worker", digest.hexdigest(), lambda classes: _compile(classes, sources)
    )


def _compile(classes: Path, sources: list[Path]) -> None:
    print(f"Compiling Bazel's remote worker into {classes} (once)...", flush=True)
    shutil.rmtree(classes, ignore_errors=True)
    result = subprocess.run(
        ["javac", "-nowarn", "-d", str(classes), "-cp", str(SERVER_JAR), *map(str, sources)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        shutil.rmtree(classes, ignore_errors=True)
        raise AssertionError(f"javac failed:\n{result.stdout}{result.stderr}")


class RemoteWorker(LoopbackService):
    """One RemoteWorker process: the REAPI server and its only worker.

    It runs actions unsandboxed, in fresh directories under `work/`: the test machine is the
    worker, so the interpreters and paths Pants names exist there as they would on a worker
    provisioned like the client. The port is bound on all interfaces (the worker has no
    listen-address option); the client only ever uses 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        super().__init__("The remote worker", root, "worker.log")
        self.cas = root / "cas"

    def start(self) -> None:
        classes = worker_classes()
        (self.root / "work").mkdir(exist_ok=True)
        self.cas.mkdir(exist_ok=True)
        ready = f"Starting gRPC server on port {self.port}"
        self.launch(
            [
                "java",
                "-cp",
                f"{classes}:{SERVER_JAR}",
                MAIN_CLASS,
                f"--listen_port={self.port}",
                f"--work_path={self.root / 'work'}",
                f"--cas_path={self.cas}",
            ],
            STARTUP_SECONDS,
            ready=lambda: ready in self.log.read_text(errors="replace"),
        )

    def has_blob(self, digest: str) -> bool:
        """Whether the worker's CAS holds the blob `sha256:<hex>` (its layout: cas/<hex[:2]>/<hex>)."""
        hex_digest = digest.split(":", 1)[1]
        return (self.cas / "cas" / hex_digest[:2] / hex_digest).is_file()
