"""A server process of the end-to-end tests on a free loopback port: started, awaited until it
accepts connections, stopped. The REAPI engines (BuildGrid, Bazel's remote worker) share it."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional, Sequence


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LoopbackService:
    """One server process, its port and its log (under `root`, which must not exist yet)."""

    def __init__(self, name: str, root: Path, log_name: str) -> None:
        self.name = name
        self.root = root
        root.mkdir(parents=True)
        self.port = free_port()
        self.address = f"grpc://127.0.0.1:{self.port}"
        self.log = root / log_name
        self.process: subprocess.Popen[bytes] | None = None

    def launch(
        self,
        argv: Sequence[str],
        startup_seconds: float,
        ready: Optional[Callable[[], bool]] = None,
    ) -> None:
        """Start `argv` and wait until `ready()` holds and the port accepts connections;
        a process that exits or never gets there fails the test with its log."""
        with open(self.log, "ab") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=log)
        self.process = process
        deadline = time.monotonic() + startup_seconds
        while time.monotonic() < deadline and process.poll() is None:
            if (ready is None or ready()) and self._accepts():
                return
            time.sleep(0.3)
        self.stop()
        raise AssertionError(
            f"{self.name} did not start on port {self.port}:\n{self.log.read_text()}"
        )

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        stop_process(self.process)
        self.process = None


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server, killing it if it has not exited within 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)
