"""Registry credentials: from environment variables the caller names, or Docker's config.json.

Docker's lookup order is kept so that whatever `docker login` (or a cloud provider's
credential helper) set up works unchanged: `credHelpers[<host>]`, then `credsStore`, then
`auths[<host>]`. Secrets are kept out of every repr and error message, since build tools
print both.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DOCKER_HUB_SERVER = "https://index.docker.io/v1/"  # the key `docker login` uses for Docker Hub
DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")
IDENTITY_TOKEN_USERNAME = "<token>"  # a helper's way of saying Secret is an identity token
HELPER_TIMEOUT_SECONDS = 60


# Processes run by Pants as PEXes get a fixed PATH, so the caller passes the PATH where
# `docker-credential-*` helpers live under this name instead.
HELPER_PATH_VARIABLE = "HOSTPROCESS_HELPER_PATH"


def helper_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with PATH taken from HELPER_PATH_VARIABLE when that is set."""
    out = dict(env)
    if HELPER_PATH_VARIABLE in out:
        out["PATH"] = out[HELPER_PATH_VARIABLE]
    return out


class CredentialsError(Exception):
    """Credentials were configured but could not be read; never carries a secret."""


@dataclass(frozen=True, repr=False)
class Credentials:
    """A username and password, or an OAuth identity (refresh) token, or both."""

    username: str = ""
    password: str = ""
    identity_token: str = ""

    def __repr__(self) -> str:
        password = "<hidden>" if self.password else "<none>"
        token = "<hidden>" if self.identity_token else "<none>"
        return (
            f"Credentials(username={self.username!r}, password={password}, identity_token={token})"
        )

    __str__ = __repr__


def find_credentials(
    registry: str,
    *,
    username_env: str | None = None,
    password_env: str | None = None,
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Credentials | None:
    """Credentials for `registry` (`host[:port]`): the named variables if set, else config.json."""
    if (username_env is None) != (password_env is None):
        raise ValueError("name both username_env and password_env, or neither")
    if username_env and password_env:
        from_env = credentials_from_env(username_env, password_env, env=env)
        if from_env:
            return from_env
    return credentials_from_docker_config(registry, config_path=config_path, env=env)


def credentials_from_env(
    username_env: str, password_env: str, *, env: Mapping[str, str] | None = None
) -> Credentials | None:
    """Credentials from two environment variables; None when neither is set."""
    environ = os.environ if env is None else env
    username, password = environ.get(username_env, ""), environ.get(password_env, "")
    if not username and not password:
        return None
    if not username or not password:
        present, missing = (
            (username_env, password_env) if username else (password_env, username_env)
        )
        raise CredentialsError(f"${present} is set but ${missing} is not: set both or neither")
    return Credentials(username, password)


def docker_config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where Docker reads its config: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`."""
    environ = os.environ if env is None else env
    if environ.get("DOCKER_CONFIG"):
        return Path(environ["DOCKER_CONFIG"]) / "config.json"
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    return home / ".docker" / "config.json"


def credentials_from_docker_config(
    registry: str, *, config_path: Path | None = None, env: Mapping[str, str] | None = None
) -> Credentials | None:
    """Docker's lookup for `registry`; None when the config (or its entry) is absent."""
    path = config_path or docker_config_path(env)
    config = _read_config(path)
    if config is None:
        return None
    server = DOCKER_HUB_SERVER if registry in DOCKER_HUB_HOSTS else registry
    helpers = _section(config, "credHelpers", path)
    for suffix in (helpers.get(registry) or helpers.get(server), config.get("credsStore")):
        if suffix:
            found = credentials_from_helper(str(suffix), server, env=env)
            if found:
                return found
    entry = _auths_entry(_section(config, "auths", path), server)
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise CredentialsError(f"the auths entry of {registry} in {path} is not a JSON object")
    return _decode_auths_entry(entry, registry, path)


def credentials_from_helper(
    suffix: str, server: str, *, env: Mapping[str, str] | None = None
) -> Credentials | None:
    """Ask `docker-credential-<suffix> get` (found on `env`'s PATH) about `server`."""
    environ = dict(os.environ if env is None else env)
    program = f"docker-credential-{suffix}"
    executable = shutil.which(program, path=environ.get("PATH", os.defpath))
    if executable is None:
        raise CredentialsError(f"credential helper {program} (for {server}) is not on PATH")
    try:
        result = subprocess.run(
            [executable, "get"],
            input=server.encode(),
            capture_output=True,
            env=environ,
            timeout=HELPER_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CredentialsError(
            f"credential helper {program} did not answer for {server} within "
            f"{HELPER_TIMEOUT_SECONDS} s"
        ) from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace").strip()
        if "credentials not found" in output.lower():
            return None
        raise CredentialsError(
            f"credential helper {program} failed for {server} "
            f"(exit {result.returncode}): {output[:200]}"
        )
    return _parse_helper_output(result.stdout, program, server)


def _parse_helper_output(stdout: bytes, program: str, server: str) -> Credentials:
    try:
        reply = json.loads(stdout)
        username, secret = reply["Username"], reply["Secret"]
    except (ValueError, TypeError, KeyError):
        raise CredentialsError(
            f"credential helper {program} printed no JSON object with Username and Secret "
            f"for {server}"
        ) from None
    if username == IDENTITY_TOKEN_USERNAME:
        return Credentials(identity_token=secret)
    return Credentials(username, secret)


def _read_config(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise CredentialsError(f"cannot read Docker config {path}: {error.strerror}") from None
    try:
        config = json.loads(text)
    except ValueError as error:
        # JSONDecodeError's message has a position but never the document's text.
        raise CredentialsError(f"Docker config {path} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise CredentialsError(f"Docker config {path} is not a JSON object")
    return config


def _section(config: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    section = config.get(key, {})
    if not isinstance(section, dict):
        raise CredentialsError(f"{key} in Docker config {path} is not a JSON object")
    return section


def _auths_entry(auths: Mapping[str, Any], server: str) -> Any:
    """The entry keyed by `server`, else by a legacy URL form (`https://host/v1/`) of its host."""
    if server in auths:
        return auths[server]
    host = _hostname(server)
    for key, entry in auths.items():
        if _hostname(key) == host:
            return entry
    return None


def _hostname(key: str) -> str:
    """Docker's ConvertToHostname: drop a scheme and any path."""
    if "://" in key:
        return urlsplit(key).netloc
    return key.split("/", 1)[0]


def _decode_auths_entry(entry: Mapping[str, Any], registry: str, path: Path) -> Credentials | None:
    username = password = ""
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, TypeError):
            decoded = ""
        username, colon, password = decoded.partition(":")
        if not colon:
            raise CredentialsError(
                f"the auth of {registry} in {path} is not base64 of 'username:password'"
            )
    token = entry.get("identitytoken", "")
    if not password and not token:
        return None
    return Credentials(username, password, token)
