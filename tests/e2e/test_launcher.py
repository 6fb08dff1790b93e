"""`./pants` hands warm runs to Pants' native client and falls back to the Python client.

Which programs a run executed is read from `strace -f -e trace=execve` of the launcher, not
from anything the launcher says about itself. Every path packages `examples:hello` to the
same digest and publishes it to a loopback registry, where skopeo reads it back.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from e2e.checkout import Checkout, copy_repo, load_json
from oci.registry_servers import RegistryServer, skopeo_output
from system_tools import system_tool

pytest_plugins = ["oci.registry_servers"]

HELLO_DIGEST = "sha256:7e3a3dacaa9b6ce7995ecb814f8c637f70ef7e47fd14cd220b22240604f8f1f7"
NATIVE_CLIENT = "/site-packages/pants/bin/native_client"
PYTHON_CLIENT = re.compile(r"/pants-[^/]+-py39/bin/pants$")  # the venv's `pants` script
EXECVE = re.compile(r'^\d+\s+execve\("([^"]+)", .*\) = 0$')


@dataclass(frozen=True)
class Traced:
    output: str
    executed: tuple[str, ...]  # every program the run exec'd, in order

    @property
    def native(self) -> bool:
        return any(path.endswith(NATIVE_CLIENT) for path in self.executed)

    @property
    def python_client(self) -> bool:
        return any(PYTHON_CLIENT.search(path) for path in self.executed)


@pytest.fixture(scope="module")
def checkout(
    tmp_path_factory: pytest.TempPathFactory, anonymous_registry: RegistryServer
) -> Iterator[Checkout]:
    repo = copy_repo(tmp_path_factory.mktemp("launcher") / "repo")
    repo.set_registries({"loopback": {"address": anonymous_registry.host, "default": True}})
    yield repo
    for pid_file in repo.root.glob(".pids/*/pantsd/pid"):
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass


def launch(
    root: Path, argv: list[str], env: dict[str, str] | None = None, timeout: int = 900
) -> subprocess.CompletedProcess[str]:
    """Run `argv` (./pants, maybe under strace) in a checkout, with pantsd as configured."""
    return subprocess.run(
        argv,
        cwd=root,
        env={**os.environ, **(env or {})},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
    )


def traced(checkout: Checkout, *args: str, env: dict[str, str] | None = None) -> Traced:
    """`./pants args` under strace: its output and the programs it exec'd. Never a run that
    starts pantsd: strace -f would follow the daemon and wait for it to exit."""
    log = checkout.root / "execve.log"
    strace = [system_tool("strace"), "-f", "-qq", "-e", "trace=execve", "-o", str(log)]
    result = launch(checkout.root, strace + ["./pants", "--no-dynamic-ui", *args], env, 300)
    assert result.returncode == 0, f"./pants {' '.join(args)} failed:\n{result.stdout}"
    executed = [m.group(1) for line in log.read_text().splitlines() if (m := EXECVE.match(line))]
    return Traced(result.stdout, tuple(executed))


def packaged_digest(checkout: Checkout) -> str:
    return str(load_json(checkout.dist / "examples" / "hello.image.json")["digest"])


def published_digest(host: str) -> str:
    return str(json.loads(skopeo_output(f"{host}/examples/hello:latest"))["Digest"])


@pytest.fixture(scope="module")
def warm(checkout: Checkout) -> Traced:
    """The first run starts pantsd (through the Python client); the second finds it up."""
    started = launch(checkout.root, ["./pants", "--no-dynamic-ui", "package", "examples:hello"])
    assert started.returncode == 0, started.stdout
    return traced(checkout, "package", "examples:hello")


def test_a_warm_run_goes_through_the_native_client_alone(warm: Traced, checkout: Checkout) -> None:
    assert warm.native and not warm.python_client, warm.executed
    assert not any("python" in Path(path).name for path in warm.executed), warm.executed
    assert f"Image digest: {HELLO_DIGEST}" in warm.output, warm.output
    assert packaged_digest(checkout) == HELLO_DIGEST


def test_a_warm_publish_goes_through_the_native_client(
    warm: Traced, checkout: Checkout, anonymous_registry: RegistryServer
) -> None:
    published = traced(checkout, "publish", "examples:hello")
    assert published.native and not published.python_client, published.executed
    host = anonymous_registry.host
    assert f"{host}/examples/hello:latest published to {host} as {HELLO_DIGEST}" in (
        published.output
    ), published.output
    assert published_digest(host) == HELLO_DIGEST


def test_without_pantsd_the_native_client_hands_over_to_the_python_client(
    warm: Traced, checkout: Checkout, anonymous_registry: RegistryServer
) -> None:
    packaged = traced(checkout, "--no-pantsd", "package", "examples:hello")
    assert packaged.native and packaged.python_client, packaged.executed
    assert packaged.executed.index(
        next(p for p in packaged.executed if p.endswith(NATIVE_CLIENT))
    ) < packaged.executed.index(next(p for p in packaged.executed if PYTHON_CLIENT.search(p)))
    assert packaged_digest(checkout) == HELLO_DIGEST
    published = traced(checkout, "--no-pantsd", "publish", "examples:hello")
    assert published.python_client, published.executed
    assert published_digest(anonymous_registry.host) == HELLO_DIGEST


def test_pants_no_native_client_runs_the_python_client_only(
    warm: Traced, checkout: Checkout, anonymous_registry: RegistryServer
) -> None:
    env = {"PANTS_NO_NATIVE_CLIENT": "1"}
    packaged = traced(checkout, "package", "examples:hello", env=env)
    assert packaged.python_client and not packaged.native, packaged.executed
    assert packaged_digest(checkout) == HELLO_DIGEST
    published = traced(checkout, "publish", "examples:hello", env=env)
    assert published.python_client and not published.native, published.executed
    assert f"as {HELLO_DIGEST}" in published.output, published.output
    assert published_digest(anonymous_registry.host) == HELLO_DIGEST


def test_a_failing_goal_fails_the_same_through_the_native_client(
    warm: Traced, checkout: Checkout
) -> None:
    result = launch(
        checkout.root, ["./pants", "--no-dynamic-ui", "package", "examples:no-such-target"]
    )
    assert result.returncode == 1, result.stdout
    assert "examples:no-such-target" in result.stdout, result.stdout


def test_checkouts_with_the_same_pants_toml_each_get_their_own_pex_tool(tmp_path: Path) -> None:
    """The versions kept per pants.toml name the pex tool inside one checkout: another
    checkout of the same commit must not be pointed at it."""
    for name in ("first", "second"):
        repo = copy_repo(tmp_path / name)
        version = launch(repo.root, ["./pants", "--no-pantsd", "--version"])
        assert version.returncode == 0 and version.stdout.strip().endswith("2.17.1"), version
        assert list((repo.root / ".pants-bootstrap").glob("pex-v*")), name
