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
  republish       the same again, naming beside it a `skip_push` target that cannot be built
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
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import pytest

from e2e.checkout import Checkout, copy_repo, load_json

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
)
from system_tools import system_tool  # noqa: E402

pytest_plugins = ["oci.registry_servers"]

TAGS = ("latest", "v1")
REPOSITORY = "examples/hello"
CA_IN_CHECKOUT = "certs/test-ca.pem"  # `ca_cert` relative to the build root
USER_ENV, PASSWORD_ENV = "HOSTPROCESS_TEST_REGISTRY_USER", "HOSTPROCESS_TEST_REGISTRY_PASSWORD"
WRONG_PASSWORD = "wrong-Pa55-7f3c9a1e"
HELPER = "test"  # docker-credential-test
# Seed 95 makes this publish meet, among others: a 429, 5xx, a dropped connection, and a blob
# PUT and a manifest PUT that the registry carried out but whose replies were lost. The client's
# requests are sequential, so the same seed gives the same faults on every run.
FAULT_SEED, FAULT_RATE = 86, 0.35
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
        (self.checkout.root / "examples" / "BUILD").write_text(
            text + (SKIPPED_TARGET if skipped else "")
        )

    def write_docker_config(self, config: Mapping[str, Any]) -> None:
        (self.docker_config / "config.json").write_text(json.dumps(config, indent=2))


def fake_helper(path: Path, log: Path, server: str, username: str, secret: str) -> None:
    """A `docker-credential-*` helper that knows one server, as Docker's protocol has it."""
    reply = json.dumps({"ServerURL": server, "Username": username, "Secret": secret})
    path.write_text(
        "#!/bin/sh\n"
        "server=$(cat)\n"
        f"echo \"$1 $server\" >> '{log}'\n"
        f'if [ "$1" = get ] && [ "$server" = \'{server}\' ]; then\n'
        f"  echo '{reply}'\n"
        "else\n"
        "  echo 'credentials not found in native keychain'\n"
        "  exit 1\n"
        "fi\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles, basic_registry: RegistryServer
) -> Site:
    work = tmp_path_factory.mktemp("publish")
    checkout = copy_repo(work / "repo")
    (checkout.root / "certs").mkdir()
    (checkout.root / CA_IN_CHECKOUT).write_bytes(tls_files.ca_cert.read_bytes())
    (checkout.root / "examples" / "nul.txt").write_text("a file Windows cannot have\n")
    bin_dir, docker_config = work / "bin", work / "docker-config"
    bin_dir.mkdir()
    docker_config.mkdir()
    helper_log = work / "helper.log"
    fake_helper(
        bin_dir / f"docker-credential-{HELPER}",
        helper_log,
        basic_registry.host,
        BASIC_USER,
        BASIC_PASSWORD,
    )
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "DOCKER_CONFIG": str(docker_config),
    }
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
    record: Optional[dict[str, Any]]  # dist/examples/hello.publish.json afterwards


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
    return Run(
        result.stdout,
        result.returncode,
        seconds,
        tuple(proxy.records),
        anonymous.log()[log_start:],
        record,
    )


# --- independent checks ---------------------------------------------------------------------


def blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":", 1)[1]


def packaged_digest(site: Site) -> str:
    """The one manifest `package` wrote (the layout's index has an entry per tag)."""
    [digest] = {entry["digest"] for entry in load_json(site.layout / "index.json")["manifests"]}
    return digest


def image_blob_digests(site: Site) -> set[str]:
    """The packaged image's layer and config digests (not those of its attachments)."""
    manifest = json.loads(blob(site.layout, packaged_digest(site)).read_bytes())
    return {d["digest"] for d in [*manifest["layers"], manifest["config"]]}


def assert_no_platform(data: bytes, what: str) -> None:
    for key in (b'"platform"', b'"os.version"', b'"os.features"'):
        assert key not in data, f"{what} carries {key.decode()}: {data.decode()}"


def assert_served_as_packaged(
    host: str, repository: str, layout: Path, digest: str, **skopeo: Any
) -> None:
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


def published_lines(hosts: tuple[str, ...], repository: str, digest: str) -> list[str]:
    return sorted(
        f"✓ {host}/{repository}:{tag} published to {host} as {digest}."
        for host in hosts
        for tag in TAGS
    )


# --- 1. the first publish: three registries, three ways to authenticate ------------------------


@dataclass(frozen=True)
class FirstPublish:
    run: Run
    output_data: list  # what `publish --output=<file>` wrote
    token_requests: list  # what the token server was asked meanwhile


def use_three_registries(
    site: Site, anonymous_host: str, basic: RegistryServer, token: RegistryServer
) -> None:
    """All three as defaults: Basic with credentials from USER_ENV/PASSWORD_ENV and the CA
    copied into the checkout; the bearer registry with config.json `auths`."""
    site.checkout.set_registries(
        {
            "anonymous": {"address": anonymous_host, "default": True},
            "basic": {
                "address": basic.host,
                "default": True,
                "ca_cert": CA_IN_CHECKOUT,
                "username_env": USER_ENV,
                "password_env": PASSWORD_ENV,
            },
            "token": {"address": token.host, "default": True},
        }
    )
    auth = base64.b64encode(f"{TOKEN_USER}:{TOKEN_PASSWORD}".encode()).decode()
    site.write_docker_config({"auths": {token.host: {"auth": auth}}})


@pytest.fixture(scope="module")
def first_publish(
    site: Site,
    recorder: FaultProxy,
    anonymous_registry: RegistryServer,
    basic_registry: RegistryServer,
    token_registry: RegistryServer,
    token_server: TokenServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> FirstPublish:
    """`package` writes the layout the pushed image must match; `publish` pushes it to all three
    registries (the anonymous one through the recorder)."""
    site.write_build()
    use_three_registries(site, recorder.host, basic_registry, token_registry)
    token_server.requests.clear()
    output_file = tmp_path_factory.mktemp("publish-output") / "publish.json"
    run = run_pants(
        site,
        "package",
        "publish",
        f"--output={output_file}",
        "examples:hello",
        anonymous=anonymous_registry,
        proxy=recorder,
        env={USER_ENV: BASIC_USER, PASSWORD_ENV: BASIC_PASSWORD},
    )
    return FirstPublish(run, load_json(output_file), list(token_server.requests))


@pytest.mark.parametrize("registry", ["anonymous", "basic", "token"])
def test_publish_serves_the_packaged_manifest(
    registry: str,
    first_publish: FirstPublish,
    site: Site,
    anonymous_registry: RegistryServer,
    basic_registry: RegistryServer,
    token_registry: RegistryServer,
    tls_files: TlsFiles,
) -> None:
    digest = packaged_digest(site)
    if registry == "anonymous":  # pushed through the recorder; read from the registry itself
        assert_served_as_packaged(anonymous_registry.host, REPOSITORY, site.layout, digest)
    elif registry == "basic":
        creds = f"{BASIC_USER}:{BASIC_PASSWORD}"
        assert_served_as_packaged(
            basic_registry.host,
            REPOSITORY,
            site.layout,
            digest,
            creds=creds,
            cert_dir=tls_files.cert_dir,
        )
    else:
        creds = f"{TOKEN_USER}:{TOKEN_PASSWORD}"
        assert_served_as_packaged(token_registry.host, REPOSITORY, site.layout, digest, creds=creds)


def test_publish_reports_every_reference_and_digest(
    first_publish: FirstPublish,
    site: Site,
    recorder: FaultProxy,
    basic_registry: RegistryServer,
    token_registry: RegistryServer,
) -> None:
    run = first_publish.run
    digest = packaged_digest(site)
    assert load_json(site.checkout.dist / "examples" / "hello.image.json")["digest"] == digest
    hosts = (recorder.host, basic_registry.host, token_registry.host)
    assert sorted(summary_lines(run.output)) == published_lines(
        hosts, REPOSITORY, digest
    ), run.output
    assert run.output.count("Uploaded 3 blobs") == 3, run.output

    # --output: Pants' JSON, one entry per registry and tag (each tag is its own publish step,
    # so that the summary can say exactly which moved), with our digest.
    entries = first_publish.output_data
    assert sorted((entry["registry"], entry["names"]) for entry in entries) == sorted(
        (host, [f"{host}/{REPOSITORY}:{tag}"]) for host in hosts for tag in TAGS
    ), entries
    for entry in entries:
        assert entry["digest"] == digest
        assert (entry["target"], entry["repository"]) == ("examples:hello", REPOSITORY)
        assert (entry["published"], entry["exit_code"]) == (True, 0)

    # dist/examples/hello.publish.json: every reference pushed, with its digest, and what each
    # registry's first step attached (by default the SPDX SBOM and the provenance).
    expected_record = {}
    for host in hosts:
        expected_record[f"{host}/{REPOSITORY}@{digest}"] = digest
        expected_record.update({f"{host}/{REPOSITORY}:{tag}": digest for tag in TAGS})
    assert run.record is not None
    record = dict(run.record)  # the fixture's, which later tests compare with
    attachments = record.pop("attachments")
    assert record == expected_record
    assert sorted(attachments) == sorted(f"{host}/{REPOSITORY}@{digest}" for host in hosts)
    for attached in attachments.values():
        assert [a["kind"] for a in attached] == ["spdx", "provenance"], attached
        assert all(a["digest"] in run.output for a in attached), run.output


def test_publish_uploads_every_blob_before_the_manifest(
    first_publish: FirstPublish, site: Site
) -> None:
    """What the recorder saw: each blob's upload finished once, then the manifest, then the tags
    (the attachments, which follow, are tested in test_supply_chain.py)."""
    digest = packaged_digest(site)
    manifest = json.loads(blob(site.layout, digest).read_bytes())
    sent = first_publish.run.proxied
    assert {r.action for r in sent} == {FORWARD}
    image_references = (digest, *TAGS)
    manifest_puts = [
        i
        for i, r in enumerate(sent)
        if r.method == "PUT" and "/manifests/" in r.path and r.path.endswith(image_references)
    ]
    assert manifest_puts, sent
    # Before the manifest, exactly one finished upload per blob; the attachments' come after.
    finished = [
        i
        for i, r in enumerate(sent[: manifest_puts[0]])
        if r.method == "PUT" and "/blobs/uploads/" in r.path
    ]
    assert len(finished) == len(manifest["layers"]) + 1, sent
    assert [sent[i].path.rsplit("/", 1)[1] for i in manifest_puts] == [digest, *TAGS]


def test_credentials_from_env_variables_and_docker_config_auths(
    first_publish: FirstPublish,
) -> None:
    # The bearer registry's tokens went to the user whom config.json's `auths` names.
    ours = [
        r for r in first_publish.token_requests if f"repository:{REPOSITORY}:pull,push" in r.scopes
    ]
    assert ours and {r.user for r in ours} == {TOKEN_USER}, first_publish.token_requests
    # The Basic registry knows only alice, whose credentials came from USER_ENV/PASSWORD_ENV
    # (test_publish_serves_the_packaged_manifest[basic] shows that push landed). No secret leaks.
    for secret in (BASIC_PASSWORD, TOKEN_PASSWORD):
        assert secret not in first_publish.run.output
        assert base64.b64encode(secret.encode()).decode() not in first_publish.run.output


# --- 2. republish, and 5. skip_push --------------------------------------------------------


@pytest.fixture(scope="module")
def republish(
    first_publish: FirstPublish,
    site: Site,
    recorder: FaultProxy,
    anonymous_registry: RegistryServer,
    basic_registry: RegistryServer,
    token_registry: RegistryServer,
) -> Run:
    """The same publish again, with an unbuildable `skip_push` target named beside it."""
    site.write_build(skipped=True)
    use_three_registries(site, recorder.host, basic_registry, token_registry)
    return run_pants(
        site,
        "publish",
        "examples:hello",
        "examples:skipped",
        anonymous=anonymous_registry,
        proxy=recorder,
        env={USER_ENV: BASIC_USER, PASSWORD_ENV: BASIC_PASSWORD},
    )


def test_republish_uploads_nothing(
    republish: Run,
    first_publish: FirstPublish,
    site: Site,
    recorder: FaultProxy,
    anonymous_registry: RegistryServer,
    basic_registry: RegistryServer,
    token_registry: RegistryServer,
) -> None:
    digest = packaged_digest(site)
    # Our own account, once per registry...
    nothing = "Nothing to upload: all 3 blobs were already present; "
    assert republish.output.count(nothing) == 3, republish.output
    assert "Uploaded" not in republish.output and "tag-pushed" not in republish.output
    assert republish.output.count("tag-unchanged") == 3 * len(TAGS)
    # ...and what went over the wire. The recorder saw the first publish's uploads, and now no
    # request that could carry blob bytes (there is no upload without a /blobs/uploads/ session):
    # only blob checks, and at most the manifest again by digest, never a tag.
    assert uploads(first_publish.run.proxied), "the recorder missed the first publish's uploads"
    assert uploads(republish.proxied) == [], republish.proxied
    sent = [(r.method, r.path) for r in republish.proxied]
    image_blobs = image_blob_digests(site)
    checks = [s for s in sent if s[0] == "HEAD" and "/blobs/" in s[1]]
    assert len([s for s in checks if s[1].rsplit("/", 1)[1] in image_blobs]) == 3, sent
    writes = {s for s in sent if s[0] in UPLOAD_METHODS}
    assert writes <= {("PUT", f"/v2/{REPOSITORY}/manifests/{digest}")}, sent
    # The registry's own log agrees.
    assert "/blobs/uploads/" not in republish.registry_log
    assert (
        json.loads(skopeo_output(f"{anonymous_registry.host}/{REPOSITORY}:v1"))["Digest"] == digest
    )
    assert republish.record == first_publish.run.record
    hosts = (recorder.host, basic_registry.host, token_registry.host)
    assert sorted(summary_lines(republish.output)) == published_lines(
        hosts, REPOSITORY, digest
    ), republish.output


def test_skip_push_target_is_neither_built_nor_pushed(
    republish: Run, anonymous_registry: RegistryServer
) -> None:
    assert "Packaged examples/hello" in republish.output
    # Had publish built it, C:\nul.txt would have failed the run.
    for mention in ("examples:skipped", "examples/skipped", "nul.txt"):
        assert mention not in republish.output, republish.output
    repositories = catalog(anonymous_registry.host)
    assert REPOSITORY in repositories and "examples/skipped" not in repositories, repositories
    assert "examples/skipped" not in republish.registry_log


# --- 3. faults, and 4. a credential helper -------------------------------------------------


@pytest.fixture(scope="module")
def flaky_proxy(anonymous_registry: RegistryServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(anonymous_registry.host, random_faults(seed=FAULT_SEED, rate=FAULT_RATE))
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def flaky_publish(
    first_publish: FirstPublish,  # for the packaged layout
    site: Site,
    flaky_proxy: FaultProxy,
    anonymous_registry: RegistryServer,
    basic_registry: RegistryServer,
    tls_files: TlsFiles,
) -> Run:
    """To a new repository through the flaky proxy, and to the Basic registry with credentials
    from a credential helper (`ca_cert` as an absolute path this time)."""
    site.write_build("fault/hello")
    site.checkout.set_registries(
        {
            "flaky": {"address": flaky_proxy.host, "default": True},
            "basic": {
                "address": basic_registry.host,
                "default": True,
                "ca_cert": str(tls_files.ca_cert),
            },
        }
    )
    site.write_docker_config({"auths": {}, "credHelpers": {basic_registry.host: HELPER}})
    site.helper_log.unlink(missing_ok=True)
    # The image alone, so that the seeded faults meet the requests they were chosen for
    # (attaching documents over faults is the referrers client's own test).
    no_documents = ("--hostprocess-sbom-formats=[]", "--no-hostprocess-provenance")
    return run_pants(
        site,
        *no_documents,
        "publish",
        "examples:hello",
        anonymous=anonymous_registry,
        proxy=flaky_proxy,
    )


def test_publish_survives_dropped_connections_and_server_errors(
    flaky_publish: Run,
    site: Site,
    flaky_proxy: FaultProxy,
    anonymous_registry: RegistryServer,
    tmp_path: Path,
) -> None:
    digest = packaged_digest(site)
    injected = [r for r in flaky_publish.proxied if r.action != FORWARD]
    # The seed really exercised faults (if the client's request order changes, pick a new seed).
    kinds = {r.action for r in injected}
    assert {DROP, DROP_AFTER, "429"} <= kinds and kinds & {"500", "503"}, injected
    lost = [r for r in injected if r.action == DROP_AFTER and r.method == "PUT"]
    assert any("/blobs/uploads/" in r.path for r in lost) and any(
        "/manifests/" in r.path for r in lost
    ), injected
    assert (
        f"✓ {flaky_proxy.host}/fault/hello:latest published to {flaky_proxy.host} as {digest}."
        in flaky_publish.output
    )

    # Straight from the registry: the packaged manifest under every tag, and every blob intact.
    assert_served_as_packaged(anonymous_registry.host, "fault/hello", site.layout, digest)
    pulled = tmp_path / "pulled"
    copy = subprocess.run(
        [system_tool("skopeo"), "copy", "--retry-times", "0", "--preserve-digests", "--src-tls-verify=false",
         "--src-no-creds", f"docker://{anonymous_registry.host}/fault/hello:latest", f"oci:{pulled}:latest"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (
        copy.returncode == 0
    ), f"skopeo copy (which checks every blob's digest) failed:\n{copy.stderr}"
    manifest = json.loads(blob(site.layout, digest).read_bytes())
    for descriptor in [manifest["config"], *manifest["layers"]]:
        data = blob(pulled, descriptor["digest"]).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == descriptor["digest"]
        assert data == blob(site.layout, descriptor["digest"]).read_bytes()
    assert blob(pulled, digest).read_bytes() == blob(site.layout, digest).read_bytes()


def test_credentials_from_a_credential_helper(
    flaky_publish: Run, site: Site, basic_registry: RegistryServer, tls_files: TlsFiles
) -> None:
    digest = packaged_digest(site)
    asked = site.helper_log.read_text().splitlines()
    assert f"get {basic_registry.host}" in asked, asked
    for tag in TAGS:
        line = f"✓ {basic_registry.host}/fault/hello:{tag} published to {basic_registry.host} as {digest}."
        assert line in flaky_publish.output, flaky_publish.output
    creds = f"{BASIC_USER}:{BASIC_PASSWORD}"
    assert_served_as_packaged(
        basic_registry.host,
        "fault/hello",
        site.layout,
        digest,
        creds=creds,
        cert_dir=tls_files.cert_dir,
    )
    assert BASIC_PASSWORD not in flaky_publish.output


# --- 3. and 4. failures: a wrong password, a registry that always fails --------------------


@pytest.fixture(scope="module")
def dead_proxy(anonymous_registry: RegistryServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(anonymous_registry.host, lambda method, path: "503")
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def failed_publish(
    first_publish: FirstPublish,  # for the packaged layout
    site: Site,
    dead_proxy: FaultProxy,
    anonymous_registry: RegistryServer,
    basic_registry: RegistryServer,
) -> Run:
    """A wrong password for the Basic registry, and a registry that answers 503 to everything
    (the push retries it for its whole time budget, about two minutes)."""
    site.write_build("denied/hello")
    site.checkout.set_registries(
        {
            "basic": {
                "address": basic_registry.host,
                "default": True,
                "ca_cert": CA_IN_CHECKOUT,
                "username_env": USER_ENV,
                "password_env": PASSWORD_ENV,
            },
            "dead": {"address": dead_proxy.host, "default": True},
        }
    )
    site.write_docker_config({"auths": {}})
    return run_pants(
        site,
        "publish",
        "examples:hello",
        anonymous=anonymous_registry,
        proxy=dead_proxy,
        env={USER_ENV: BASIC_USER, PASSWORD_ENV: WRONG_PASSWORD},
        check=False,
    )


def test_wrong_password_fails_naming_the_registry_not_the_password(
    failed_publish: Run, basic_registry: RegistryServer, tls_files: TlsFiles
) -> None:
    output = failed_publish.output
    assert failed_publish.returncode != 0, output
    assert f"authentication to {basic_registry.host} failed" in output, output
    for tag in TAGS:
        assert f"✕ {basic_registry.host}/denied/hello:{tag} failed for" in output, output
    for secret in (WRONG_PASSWORD, f"{BASIC_USER}:{WRONG_PASSWORD}"):
        assert secret not in output
        assert base64.b64encode(secret.encode()).decode() not in output
    inspected = skopeo_inspect(
        f"{basic_registry.host}/denied/hello:latest",
        raw=True,
        creds=f"{BASIC_USER}:{BASIC_PASSWORD}",
        cert_dir=tls_files.cert_dir,
    )
    assert inspected.returncode != 0 and b"manifest unknown" in inspected.stderr, inspected.stderr


def test_registry_that_always_fails_stops_with_a_clear_message_and_no_tag(
    failed_publish: Run, dead_proxy: FaultProxy, anonymous_registry: RegistryServer
) -> None:
    output = failed_publish.output
    assert failed_publish.returncode != 0, output
    assert f"at {dead_proxy.host} failed after" in output and "HTTP 503" in output, output
    for tag in TAGS:
        assert f"✕ {dead_proxy.host}/denied/hello:{tag} failed for" in output, output
    # The later tag's step stopped at once instead of retrying a registry that had failed.
    assert f"as the first push of this image to {dead_proxy.host} failed" in output, output
    assert failed_publish.seconds < 200, failed_publish.seconds
    assert len(failed_publish.proxied) > 1 and {r.action for r in failed_publish.proxied} == {"503"}
    # Nothing reached the registry, no tag exists, and no reference was recorded.
    assert "denied/hello" not in failed_publish.registry_log
    inspected = skopeo_inspect(f"{anonymous_registry.host}/denied/hello:latest", raw=True)
    assert inspected.returncode != 0, inspected.stdout
    assert "denied/hello" not in catalog(anonymous_registry.host)
    assert not [
        ref for ref in failed_publish.record or {} if "/denied/" in ref
    ], failed_publish.record


# --- 5. a tag that fails after the image got there ---------------------------------------


@pytest.fixture(scope="module")
def second_tag_fails(anonymous_registry: RegistryServer) -> Iterator[FaultProxy]:
    failing = f"/v2/partial/hello/manifests/{TAGS[1]}"
    proxy = FaultProxy(
        anonymous_registry.host,
        lambda method, path: "400" if method == "PUT" and path == failing else FORWARD,
    )
    yield proxy
    proxy.stop()


def test_a_failed_tag_is_the_only_one_reported_failed(
    first_publish: FirstPublish,  # for the packaged layout
    site: Site,
    second_tag_fails: FaultProxy,
    anonymous_registry: RegistryServer,
) -> None:
    """Pants' summary, the push's output and the record agree with the registry itself."""
    site.write_build("partial/hello")
    site.checkout.set_registries({"partial": {"address": second_tag_fails.host, "default": True}})
    site.write_docker_config({"auths": {}})
    run = run_pants(
        site,
        "publish",
        "examples:hello",
        anonymous=anonymous_registry,
        proxy=second_tag_fails,
        check=False,
    )
    digest = packaged_digest(site)
    host = second_tag_fails.host
    moved, failed = TAGS
    assert run.returncode != 0, run.output
    assert f"✓ {host}/partial/hello:{moved} published to {host} as {digest}." in run.output
    assert f"✕ {host}/partial/hello:{failed} failed for {host} as {digest}." in run.output
    assert f"{host}/partial/hello:{failed} not moved" in run.output
    recorded = {ref for ref in run.record or {} if "/partial/" in ref}
    assert recorded == {f"{host}/partial/hello@{digest}", f"{host}/partial/hello:{moved}"}
    served = skopeo_output(f"{anonymous_registry.host}/partial/hello:{moved}", raw=True)
    assert served == blob(site.layout, digest).read_bytes()
    missing = skopeo_inspect(f"{anonymous_registry.host}/partial/hello:{failed}", raw=True)
    assert missing.returncode != 0, missing.stdout
