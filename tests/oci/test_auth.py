"""Tests for credential lookup, and for the credentials it finds against real registries.

Lookups read real files and run a real credential-helper program (a script put on the
PATH given to the lookup); the registries are the htpasswd-over-TLS and bearer-token
setups of registry_servers.py, and pushes are checked with skopeo.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any, Dict

import pytest
from _pytest.fixtures import SubRequest

from hostprocess.oci.auth import (
    Credentials,
    CredentialsError,
    credentials_from_docker_config,
    credentials_from_env,
    credentials_from_helper,
    docker_config_path,
    find_credentials,
)
from hostprocess.oci.registry import RegistryClient, RegistryError

# Registered before its import, so that the helpers' own asserts explain their failures.
pytest.register_assert_rewrite("oci.registry_servers")
from oci.registry_servers import (  # noqa: E402
    BASIC_PASSWORD,
    BASIC_USER,
    IDENTITY_TOKEN,
    TOKEN_PASSWORD,
    TOKEN_USER,
    BuiltImage,
    RegistryServer,
    TlsFiles,
    TokenServer,
    assert_served,
    unique_repository,
)

pytest_plugins = ["oci.registry_servers"]

HOST = "registry.example.com:5000"
WRONG_PASSWORD = "wrong-Pa55-do-not-print"


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _write_config(directory: Path, config: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    return path


def _helper(
    directory: Path, suffix: str, store: dict[str, dict[str, str]], *, fail: str = ""
) -> dict[str, str]:
    """A real `docker-credential-<suffix>` program answering from `store`; returns an env whose
    PATH finds it. It appends each server URL it is asked about to `<suffix>.asked`."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (directory / f"{suffix}.json").write_text(json.dumps(store))
    script = bin_dir / f"docker-credential-{suffix}"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"store = json.load(open({str(directory / f'{suffix}.json')!r}))\n"
        "server = sys.stdin.read()\n"
        f"open({str(directory / f'{suffix}.asked')!r}, 'a').write(server + '\\n')\n"
        f"if {fail!r}:\n"
        f"    sys.stderr.write({fail!r}); sys.exit(2)\n"
        "if sys.argv[1:] != ['get'] or server not in store:\n"
        "    print('credentials not found in native keychain'); sys.exit(1)\n"
        "json.dump(dict(store[server], ServerURL=server), sys.stdout)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def _asked(directory: Path, suffix: str) -> list:
    path = directory / f"{suffix}.asked"
    return path.read_text().splitlines() if path.exists() else []


# --- Credentials ---------------------------------------------------------------------------


def test_repr_never_shows_secrets() -> None:
    creds = Credentials("alice", "hunter2-password", "identity-token-value")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds]), repr({"c": creds})):
        assert "alice" in text
        assert "hunter2" not in text and "identity-token-value" not in text
    assert "password=<none>" in repr(Credentials(identity_token="t"))


# --- config.json ---------------------------------------------------------------------------


def test_auths_from_docker_config_dir(tmp_path: Path) -> None:
    _write_config(tmp_path / "docker", {"auths": {HOST: {"auth": _auth("alice", "pa:ss:word")}}})
    env = {"DOCKER_CONFIG": str(tmp_path / "docker")}
    assert docker_config_path(env) == tmp_path / "docker" / "config.json"
    assert credentials_from_docker_config(HOST, env=env) == Credentials("alice", "pa:ss:word")


def test_default_config_is_under_home(tmp_path: Path) -> None:
    _write_config(tmp_path / ".docker", {"auths": {HOST: {"auth": _auth("bob", "pw")}}})
    assert credentials_from_docker_config(HOST, env={"HOME": str(tmp_path)}) == Credentials(
        "bob", "pw"
    )


def test_explicit_config_path_wins_over_environment(tmp_path: Path) -> None:
    path = _write_config(tmp_path / "explicit", {"auths": {HOST: {"auth": _auth("carol", "pw")}}})
    env = {"DOCKER_CONFIG": str(tmp_path / "nowhere")}
    assert credentials_from_docker_config(HOST, config_path=path, env=env) == Credentials(
        "carol", "pw"
    )


def test_legacy_url_keys_and_identity_tokens(tmp_path: Path) -> None:
    path = _write_config(
        tmp_path,
        {
            "auths": {
                f"https://{HOST}/v1/": {"auth": _auth("dave", ""), "identitytoken": "refresh-me"},
                "https://index.docker.io/v1/": {"auth": _auth("hubuser", "hubpass")},
            }
        },
    )
    assert credentials_from_docker_config(HOST, config_path=path) == Credentials(
        "dave", "", "refresh-me"
    )
    assert credentials_from_docker_config("docker.io", config_path=path) == Credentials(
        "hubuser", "hubpass"
    )


@pytest.mark.parametrize(
    "config",
    [
        None,
        {},
        {"auths": {}},
        {"auths": {HOST: {}}},
        {"auths": {"other:1": {"auth": _auth("a", "b")}}},
    ],
)
def test_nothing_configured_is_none(tmp_path: Path, config: dict | None) -> None:
    path = tmp_path / "config.json"
    if config is not None:
        path.write_text(json.dumps(config))
    assert credentials_from_docker_config(HOST, config_path=path) is None


def test_broken_config_names_the_file_but_not_its_secrets(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(
        '{{"auths": {{"{}": {{"auth": "{}"}}'.format(HOST, _auth("eve", "leaked-secret"))
    )
    with pytest.raises(CredentialsError, match="is not valid JSON") as raised:
        credentials_from_docker_config(HOST, config_path=path)
    assert str(path) in str(raised.value) and _auth("eve", "leaked-secret") not in str(raised.value)
    path.write_text(json.dumps({"auths": {HOST: {"auth": "bm90LWEtcGFpcg=="}}}))  # "not-a-pair"
    with pytest.raises(
        CredentialsError, match=rf"auth of {re.escape(HOST)} in .* is not base64"
    ) as raised:
        credentials_from_docker_config(HOST, config_path=path)
    assert "bm90LWEtcGFpcg" not in str(raised.value) and "not-a-pair" not in str(raised.value)
    path.write_text(json.dumps({"auths": [HOST]}))
    with pytest.raises(CredentialsError, match=r"auths in Docker config .* is not a JSON object"):
        credentials_from_docker_config(HOST, config_path=path)


# --- credential helpers ---------------------------------------------------------------------


def test_cred_helper_for_the_host_comes_first(tmp_path: Path) -> None:
    env = _helper(tmp_path, "test", {HOST: {"Username": "helper-user", "Secret": "helper-secret"}})
    config = {
        "credHelpers": {HOST: "test"},
        "credsStore": "absent-store",  # never asked: the host's own helper answered
        "auths": {HOST: {"auth": _auth("file-user", "file-pass")}},
    }
    env["DOCKER_CONFIG"] = str(_write_config(tmp_path / "docker", config).parent)
    found = credentials_from_docker_config(HOST, env=env)
    assert found == Credentials("helper-user", "helper-secret")
    assert _asked(tmp_path, "test") == [HOST]


def test_creds_store_then_auths(tmp_path: Path) -> None:
    env = _helper(tmp_path, "store", {"other:1": {"Username": "u", "Secret": "s"}})
    config = {"credsStore": "store", "auths": {HOST: {"auth": _auth("file-user", "file-pass")}}}
    env["DOCKER_CONFIG"] = str(_write_config(tmp_path / "docker", config).parent)
    assert credentials_from_docker_config("other:1", env=env) == Credentials("u", "s")
    # "credentials not found" from the store is not an error: the auths entry is used.
    assert credentials_from_docker_config(HOST, env=env) == Credentials("file-user", "file-pass")
    assert _asked(tmp_path, "store") == ["other:1", HOST]


def test_helper_token_username_means_identity_token(tmp_path: Path) -> None:
    env = _helper(tmp_path, "test", {HOST: {"Username": "<token>", "Secret": "an-identity-token"}})
    assert credentials_from_helper("test", HOST, env=env) == Credentials(
        identity_token="an-identity-token"
    )


def test_helper_failures_are_errors(tmp_path: Path) -> None:
    env = _helper(tmp_path, "broken", {}, fail="keychain locked")
    with pytest.raises(
        CredentialsError, match=r"docker-credential-broken failed for .* keychain locked"
    ):
        credentials_from_helper("broken", HOST, env=env)
    with pytest.raises(CredentialsError, match=r"docker-credential-missing .* is not on PATH"):
        credentials_from_helper("missing", HOST, env={"PATH": str(tmp_path / "empty")})


# --- environment variables ------------------------------------------------------------------


def test_credentials_from_named_environment_variables() -> None:
    env = {"REG_USER": "frank", "REG_PASS": "env-secret"}
    assert credentials_from_env("REG_USER", "REG_PASS", env=env) == Credentials(
        "frank", "env-secret"
    )
    assert credentials_from_env("REG_USER", "REG_PASS", env={}) is None
    with pytest.raises(
        CredentialsError, match=r"\$REG_USER is set but \$REG_PASS is not"
    ) as raised:
        credentials_from_env("REG_USER", "REG_PASS", env={"REG_USER": "frank"})
    assert "frank" not in str(raised.value)


def test_find_credentials_prefers_the_named_variables(tmp_path: Path) -> None:
    path = _write_config(tmp_path, {"auths": {HOST: {"auth": _auth("file-user", "file-pass")}}})
    env = {"REG_USER": "env-user", "REG_PASS": "env-pass"}
    options: Dict[str, Any] = dict(
        username_env="REG_USER", password_env="REG_PASS", config_path=path
    )
    assert find_credentials(HOST, env=env, **options) == Credentials("env-user", "env-pass")
    assert find_credentials(HOST, env={}, **options) == Credentials("file-user", "file-pass")
    with pytest.raises(ValueError, match="both username_env and password_env"):
        find_credentials(HOST, username_env="REG_USER", config_path=path)


# --- against real registries ------------------------------------------------------------------


def _client(
    server: RegistryServer, tls_files: TlsFiles, credentials: Credentials | None
) -> RegistryClient:
    return RegistryClient(server.host, credentials=credentials, ca_bundle=tls_files.ca_cert)


def _skopeo_options(server: RegistryServer, tls_files: TlsFiles, user: str, password: str) -> dict:
    options: dict = {"creds": f"{user}:{password}"}
    if server.tls:
        options["cert_dir"] = tls_files.cert_dir
    return options


@pytest.fixture(params=["basic", "token"])
def secured(request: SubRequest) -> tuple:
    """(registry, user, password) for the htpasswd-over-TLS and the bearer-token registries."""
    if request.param == "basic":
        return request.getfixturevalue("basic_registry"), BASIC_USER, BASIC_PASSWORD
    return request.getfixturevalue("token_registry"), TOKEN_USER, TOKEN_PASSWORD


def test_push_with_auths_from_docker_config(
    secured: tuple,
    tls_files: TlsFiles,
    small_image: BuiltImage,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    server, user, password = secured
    _write_config(tmp_path / "docker", {"auths": {server.host: {"auth": _auth(user, password)}}})
    credentials = find_credentials(server.host, env={"DOCKER_CONFIG": str(tmp_path / "docker")})
    repository = unique_repository(request.node.name)
    _client(server, tls_files, credentials).push(small_image.layout, repository, small_image.tags)
    assert_served(
        server.host, repository, small_image, **_skopeo_options(server, tls_files, user, password)
    )


def test_push_with_a_credential_helper(
    secured: tuple,
    tls_files: TlsFiles,
    small_image: BuiltImage,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    server, user, password = secured
    env = _helper(tmp_path, "test", {server.host: {"Username": user, "Secret": password}})
    env["DOCKER_CONFIG"] = str(
        _write_config(tmp_path / "docker", {"credHelpers": {server.host: "test"}}).parent
    )
    credentials = find_credentials(server.host, env=env)
    repository = unique_repository(request.node.name)
    _client(server, tls_files, credentials).push(small_image.layout, repository, small_image.tags)
    assert_served(
        server.host, repository, small_image, **_skopeo_options(server, tls_files, user, password)
    )
    assert _asked(tmp_path, "test") == [server.host]


def test_wrong_password_names_the_registry_not_the_password(
    secured: tuple, tls_files: TlsFiles, small_image: BuiltImage, request: pytest.FixtureRequest
) -> None:
    server, user, _ = secured
    client = _client(server, tls_files, Credentials(user, WRONG_PASSWORD))
    with pytest.raises(
        RegistryError, match=f"authentication to {re.escape(server.host)} failed"
    ) as raised:
        client.push(small_image.layout, unique_repository(request.node.name), small_image.tags)
    error = raised.value
    for text in (
        str(error),
        repr(error),
        repr(error.args),
        repr(error.__cause__),
        repr(error.__context__),
    ):
        assert WRONG_PASSWORD not in text and _auth(user, WRONG_PASSWORD) not in text
    assert error.status == 401


def test_identity_token_uses_the_oauth_flow(
    token_registry: RegistryServer,
    fresh_token_server: TokenServer,
    small_image: BuiltImage,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    path = _write_config(
        tmp_path, {"auths": {token_registry.host: {"identitytoken": IDENTITY_TOKEN}}}
    )
    credentials = find_credentials(token_registry.host, config_path=path)
    assert credentials == Credentials(identity_token=IDENTITY_TOKEN)
    repository = unique_repository(request.node.name)
    RegistryClient(token_registry.host, credentials=credentials).push(
        small_image.layout, repository, ["v1"]
    )
    posts = [r for r in fresh_token_server.requests if r.method == "POST"]
    assert posts and all(r.grant_type == "refresh_token" and r.user == TOKEN_USER for r in posts)
    assert not [r for r in fresh_token_server.requests if r.method == "GET"]
    served = dataclasses.replace(small_image, tags=("v1",))
    assert_served(token_registry.host, repository, served, creds=f"{TOKEN_USER}:{TOKEN_PASSWORD}")


def test_identity_token_falls_back_to_basic_when_oauth_is_absent(
    token_registry: RegistryServer,
    fresh_token_server: TokenServer,
    small_image: BuiltImage,
    request: pytest.FixtureRequest,
) -> None:
    fresh_token_server.oauth_enabled = False
    credentials = Credentials(TOKEN_USER, TOKEN_PASSWORD, IDENTITY_TOKEN)
    repository = unique_repository(request.node.name)
    RegistryClient(token_registry.host, credentials=credentials).push(
        small_image.layout, repository, ["v1"]
    )
    methods = [r.method for r in fresh_token_server.requests]
    assert methods[:2] == ["POST", "GET"] and fresh_token_server.requests[1].user == TOKEN_USER


def test_unknown_identity_token_names_the_registry(
    token_registry: RegistryServer,
    fresh_token_server: TokenServer,
    small_image: BuiltImage,
    request: pytest.FixtureRequest,
) -> None:
    client = RegistryClient(
        token_registry.host, credentials=Credentials(identity_token="not-a-valid-token")
    )
    with pytest.raises(
        RegistryError, match=rf"authentication to {re.escape(token_registry.host)} failed.*HTTP 401"
    ) as raised:
        client.push(small_image.layout, unique_repository(request.node.name), ["v1"])
    assert "not-a-valid-token" not in str(raised.value)


def test_helper_path_variable_replaces_path() -> None:
    from hostprocess.oci.auth import HELPER_PATH_VARIABLE, helper_env

    env = {
        "PATH": "/usr/bin:/bin",
        HELPER_PATH_VARIABLE: "/home/me/bin:/usr/bin",
        "HOME": "/home/me",
    }
    assert helper_env(env) == {**env, "PATH": "/home/me/bin:/usr/bin"}
    assert helper_env({"PATH": "/usr/bin"}) == {"PATH": "/usr/bin"}
