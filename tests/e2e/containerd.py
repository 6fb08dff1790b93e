"""containerd 1.6 (Debian's), run as a private daemon for a test: its own root, state and
socket under a temporary directory, so it never touches a containerd the machine runs.

`ctr images pull --platform windows/amd64` through it is the check the README promises:
containerd 1.6 pulls the image as windows/amd64 (a Windows node's containerd would go on to
unpack it with the Windows snapshotter; on Linux the pull and its platform match are what
can be checked).
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Iterator

from e2e.loopback_service import stop_process
from system_tools import system_tool

STARTUP_SECONDS = 30


class Containerd:
    def __init__(self, directory: Path) -> None:
        self.socket = directory / "containerd.sock"
        self.log = directory / "containerd.log"
        config = directory / "config.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{directory / "root"}"\n'
            f'state = "{directory / "state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.socket}"\n'
            f'[ttrpc]\n  address = "{self.socket}.ttrpc"\n'
        )
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [system_tool("containerd"), "--config", str(config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while self.ctr("version", check=False).returncode != 0:
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise AssertionError(f"containerd did not start:\n{self.log.read_text()}")
            time.sleep(0.3)

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [system_tool("ctr"), "--address", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert not check or result.returncode == 0, f"ctr {' '.join(args)}:\n{result.stderr}"
        return result

    def stop(self) -> None:
        stop_process(self.process)


def running_containerd(directory: Path) -> Iterator[Containerd]:
    """For a fixture: a private containerd until the fixture ends."""
    daemon = Containerd(directory)
    try:
        yield daemon
    finally:
        daemon.stop()
