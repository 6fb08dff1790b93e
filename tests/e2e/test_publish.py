"""`./pants publish examples:hello` against real registries on loopback, checked independently.

The registries are the ones the registry client's tests use (tests/oci/registry_servers.py):
Debian's `docker-registry` anonymous over plain HTTP, with htpasswd Basic auth over TLS signed
by a test CA, and with bearer tokens from a small token server. Every claim is checked with
something other than the plugin: skopeo (inspect, inspect --raw, copy, which verifies every
blob's digest), the registry's own catalog and log, a recording proxy in front of the
anonymous registry, and the token server's request log.

Each `./pants` run costs 15-25 s, so a module-scoped fixture makes each run once and several
tests check it:

  first publish   `package publish --output=...`: three registries, two tags, credentials from
                  `username_env`/`password_env` (Basic) and config.json `auths` (bearer)
  republish       the same again, plus a `skip_push` target that cannot even be built
  flaky publish   through a proxy that drops connections and answers 5xx/429 at random
                  (seeded), and to the Basic registry with a `docker-credential-test` helper
  failed publish  a wrong password, and a registry that always answers 503
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import pytest
from conftest import Checkout, copy_repo, load_json

# Under Pants `tests/` is a source root; under plain pytest, make it (and the plugin) importable.
_TESTS = Path(__file__).resolve().parent.parent
for _path in (_TESTS, _TESTS.parent / "pants-plugins"):
    if _path.is_dir() and str(_path) not in sys.path:
        sys.path.append(str(_path))

# Registered before its import, so that the helpers' own asserts explain their failures.
pytest.register_assert_rewrite("oci.registry_servers")
from oci.registry_servers import (  # noqa: E402
    BASIC_PASSWORD,
    BASIC_USER,
    DROP,
    DROP_AFTER,
    FORWARD,
    TOKEN_PASSWORD,
    TOKEN_USER,
    FaultProxy,
    Recorded,
    RegistryServer,
    TlsFiles,
    TokenServer,
    random_faults,
    skopeo_inspect,
    skopeo_output,
    tool,
)

pytest_plugins = ["oci.registry_servers"]

TAGS = ("latest", "v1")
REPOSITORY = "examples/hello"
CA_IN_CHECKOUT = "certs/test-ca.pem"  # `ca_cert` relative to the build root
USER_ENV, PASSWORD_ENV = "HOSTPROCESS_TEST_REGISTRY_USER", "HOSTPROCESS_TEST_REGISTRY_PASSWORD"
WRONG_PASSWORD = "wrong-Pa55-7f3c9a1e"
HELPER = "test"  # docker-credential-test
FAULT_SEED, FAULT_RATE = 20240611, 0.35
UPLOAD_METHODS = ("POST", "PATCH", "PUT")
# The image target's tags in examples/BUILD, which the tests widen to TAGS.
ORIGINAL_TAGS = 'image_tags=["latest"],'
# Left out of publish, and unbuildable (C:\nul.txt is a device name, refused by `package`):
# a publish that built it would fail.
SKIPPED_TARGET = """
files(name="device-name", sources=["nul.txt"])

hostprocess_image(name="skipped", dependencies=[":device-name"], skip_push=True)
"""


# --- the sandbox: a checkout, credentials, a recording proxy ------------------------------


@dataclass(frozen=True)
class Site:
    checkout: Checkout
    original_build: str
    docker_config: Path  # the directory $DOCKER_CONFIG names
    helper_log: Path  # the servers docker-credential-test was asked about
    env: Mapping[str, str]  # for every ./pants run: the helper on PATH, DOCKER_CONFIG

    @property
    def layout(self) -> Path:
        return self.checkout.dist / "examples" / "hello"

    @property
    def record(self) -> Path:
        return self.checkout.dist / "examples" / "hello.publish.json"

    def write_build(self, repository: Optional[str] = None, *, skipped: bool = False) -> None:
        assert self.original_build.count(ORIGINAL_TAGS) == 1, self.original_build
        fields = f"image_tags={json.dumps(list(TAGS))},"
        if repository:
            fields += f'\n    repository="{repository}",'
        text = self.original_build.replace(ORIGINAL_TAGS, fields)
        (self.checkout.root / "examples" / "BUILD").write_text(text + (SKIPPED_TARGET if skipped else ""))

    def write_docker_config(self, config: Mapping[str, Any]) -> None:
        (self.docker_config / "config.json").write_text(json.dumps(config, indent=2))


def fake_helper(path: Path, log: Path, server: str, username: str, secret: str) -> None:
    """A `docker-credential-*` helper that knows one server, as Docker's protocol has it."""
    reply = json.dumps({"ServerURL": server, "Username": username, "Secret": secret})
    path.write_text(
        "#!/bin/sh\n"
        "server=$(cat)\n"
        f"echo \"$1 $server\" >> '{log}'\n"
        f"if [ \"$1\" = get ] && [ \"$server\" = '{server}' ]; then\n"
        f"  echo '{reply}'\n"
        "else\n"
        "  echo 'credentials not found in native keychain'\n"
        "  exit 1\n"
        "fi\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles, basic_registry: RegistryServer) -> Site:
    work = tmp_path_factory.mktemp("publish")
    checkout = copy_repo(work / "repo")
    (checkout.root / "certs").mkdir()
    (checkout.root / CA_IN_CHECKOUT).write_bytes(tls_files.ca_cert.read_bytes())
    (checkout.root / "examples" / "nul.txt").write_text("a file Windows cannot have\n")
    bin_dir, docker_config = work / "bin", work / "docker-config"
    bin_dir.mkdir()
    docker_config.mkdir()
    helper_log = work / "helper.log"
    fake_helper(bin_dir / f"docker-credential-{HELPER}", helper_log, basic_registry.host, BASIC_USER, BASIC_PASSWORD)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "DOCKER_CONFIG": str(docker_config)}
    original_build = (checkout.root / "examples" / "BUILD").read_text()
    return Site(checkout, original_build, docker_config, helper_log, env)


@pytest.fixture(scope="module")
def recorder(anonymous_registry: RegistryServer) -> Iterator[FaultProxy]:
    """Forwards everything to the anonymous registry and records each request."""
    proxy = FaultProxy(anonymous_registry.host)
    yield proxy
    proxy.stop()


@dataclass(frozen=True)
class Run:
    output: str  # ./pants's stdout and stderr
    returncode: int
    seconds: float
    proxied: tuple[Recorded, ...]  # what the proxy in front of the registry saw
    registry_log: str  # what the anonymous registry logged meanwhile
    record: Optional[dict[str, str]]  # dist/examples/hello.publish.json afterwards


def run_pants(
    site: Site,
    *args: str,
    anonymous: RegistryServer,
    proxy: FaultProxy,
    env: Optional[Mapping[str, str]] = None,
    check: bool = True,
) -> Run:
    log_start = len(anonymous.log())
    proxy.records.clear()
    start = time.monotonic()
    result = site.checkout.pants(*args, env={**site.env, **(env or {})}, check=check)
    seconds = time.monotonic() - start
    record = load_json(site.record) if site.record.is_file() else None
    open('/tmp/pubscratch/debug.log', 'a').write(f'===== {args} {seconds:.1f}s rc={result.returncode}\n{result.stdout}\n')  # DEBUG
    return Run(result.stdout, result.returncode, seconds, tuple(proxy.records), anonymous.log()[log_start:], record)


# --- independent checks ---------------------------------------------------------------------


def blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":", 1)[1]


def packaged_digest(site: Site) -> str:
    """The one manifest `package` wrote (the layout's index has an entry per tag)."""
    [digest] = {entry["digest"] for entry in load_json(site.layout / "index.json")["manifests"]}
    return digest


def assert_no_platform(data: bytes, what: str) -> None:
    for key in (b'"platform"', b'"os.version"', b'"os.features"'):
        assert key not in data, f"{what} carries {key.decode()}: {data.decode()}"


def assert_served_as_packaged(host: str, repository: str, layout: Path, digest: str, **skopeo: Any) -> None:
    """skopeo reads our packaged manifest byte for byte under the digest and every tag."""
    manifest = blob(layout, digest).read_bytes()
    for reference in [f"{repository}@{digest}", *(f"{repository}:{tag}" for tag in TAGS)]:
        raw = skopeo_output(f"{host}/{reference}", raw=True, **skopeo)
        assert raw == manifest, f"{host}/{reference} serves another manifest than dist/ holds"
        assert_no_platform(raw, f"the manifest of {host}/{reference}")
        inspected = json.loads(skopeo_output(f"{host}/{reference}", **skopeo))
        assert inspected["Digest"] == digest, reference
        assert (inspected["Os"], inspected["Architecture"]) == ("windows", "amd64")
    config = skopeo_output(f"{host}/{repository}:{TAGS[0]}", raw=True, config=True, **skopeo)
    assert config == blob(layout, json.loads(manifest)["config"]["digest"]).read_bytes()
    assert_no_platform(config, f"the config of {host}/{repository}")


def uploads(records: tuple[Recorded, ...]) -> list[Recorded]:
    """Requests that open, feed or finish a blob upload: the only ones that carry blob bytes."""
    return [r for r in records if r.method in UPLOAD_METHODS and "/blobs/uploads/" in r.path]


def catalog(host: str) -> list[str]:
    """The registry's own list of repositories (never through an ambient HTTP proxy)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://{host}/v2/_catalog", timeout=10) as response:
        return json.load(response)["repositories"]


def summary_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(("✓ ", "✕ ", "- "))]


