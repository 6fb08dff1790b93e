"""`Authorization` headers from the registry's challenge and our credentials: Basic, or bearer
tokens fetched from the challenge's realm and cached per scope.

Safe to share between threads: one lock guards the challenge and the token cache, so
concurrent requests for one scope wait for a single token exchange instead of each
starting their own.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from urllib.parse import urlencode, urlsplit

from hostprocess.oci.auth import Credentials
from hostprocess.oci.registry.challenges import Challenge, parse_challenges
from hostprocess.oci.registry.errors import RegistryError
from hostprocess.oci.registry.transport import USER_AGENT, Response, Transport, error_detail

CLIENT_ID = "hostprocess"  # the OAuth client_id sent with identity tokens
DEFAULT_TOKEN_LIFETIME = 60  # seconds, when a token reply has no expires_in (as the spec says)
TOKEN_EXPIRY_MARGIN = 5  # refresh tokens this many seconds before they expire

Scopes = tuple[str, ...]


class Authorizer:
    """Turns the registry's challenge and our credentials into `Authorization` headers."""

    def __init__(
        self,
        registry: str,
        credentials: Credentials | None,
        transport: Transport,
        *,
        insecure: bool,
    ) -> None:
        self._registry = registry
        self._credentials = credentials
        self._transport = transport
        self._insecure = insecure
        self._lock = threading.Lock()
        self._challenge: Challenge | None = None
        self._challenge_scheme = ""  # how the registry that sent the challenge was reached
        self._basic_sent = False
        self._tokens: dict[Scopes, tuple[str, float]] = {}

    def authorization(self, scopes: Scopes) -> str | None:
        """The header for a request needing `scopes`, or None before any challenge."""
        with self._lock:
            if self._challenge is None:
                return None
            if self._challenge.scheme == "basic":
                self._basic_sent = True
                return self._basic()
            token, expires = self._tokens.get(scopes, ("", 0.0))
            if time.monotonic() >= expires:
                token, lifetime = self._fetch_token(self._challenge, scopes)
                self._tokens[scopes] = (token, time.monotonic() + lifetime - TOKEN_EXPIRY_MARGIN)
            return f"Bearer {token}"

    def challenged(self, response: Response, scopes: Scopes = ()) -> bool:
        """Learn from the registry's own 401 (never another origin's: the caller checks);
        True when a retry with new authorization could succeed."""
        offered = {
            c.scheme: c
            for c in parse_challenges(response.headers.get_all("WWW-Authenticate") or [])
        }
        challenge = offered.get("bearer") or offered.get("basic")
        if challenge is None:
            return False
        with self._lock:
            if challenge.scheme == "basic":
                password = bool(self._credentials and self._credentials.password)
                retry = password and not self._basic_sent
            else:
                retry = True
                self._tokens.pop(scopes, None)
            self._challenge = challenge
            self._challenge_scheme = urlsplit(response.url).scheme
        return retry

    def failure(self, response: Response) -> RegistryError:
        """The error for a 401 that new authorization cannot cure."""
        detail, codes = error_detail(response.body)
        if self._credentials is None:
            message = (
                f"{self._registry} requires authentication and no credentials were given for it"
            )
        else:
            message = f"authentication to {self._registry} failed: HTTP 401{detail}"
        return RegistryError(message, status=401, codes=codes)

    def _basic(self) -> str:
        creds = self._credentials or Credentials()
        return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()

    def _fetch_token(self, challenge: Challenge, scopes: Scopes) -> tuple[str, float]:
        """A bearer token for `scopes` from the realm; OAuth POST for identity tokens."""
        realm = challenge.params.get("realm", "")
        if urlsplit(realm).scheme not in ("http", "https"):
            raise RegistryError(
                f"{self._registry} sent a bearer challenge without an http(s) realm"
            )
        service = challenge.params.get("service", "")
        creds = self._credentials
        if creds and (creds.password or creds.identity_token) and self._cleartext_realm(realm):
            raise RegistryError(
                f"{self._registry} is reached over TLS but names a token service over plain "
                f"HTTP ({urlsplit(realm).netloc}): its credentials would cross the network "
                "unencrypted, so they are not sent. Mark the registry `insecure = true` in "
                "`[hostprocess].registries` if that network is trusted."
            )
        if creds and creds.identity_token:
            response = self._token_post(realm, service, scopes, creds.identity_token)
            if response.status == 404:  # a token server without the OAuth endpoint
                response = self._token_get(realm, service, scopes)
        else:
            response = self._token_get(realm, service, scopes)
        if response.status in (401, 403):
            detail, codes = error_detail(response.body)
            raise RegistryError(
                f"authentication to {self._registry} failed: its token service at "
                f"{urlsplit(realm).netloc} refused the credentials "
                f"(HTTP {response.status}{detail})",
                status=response.status,
                codes=codes,
            )
        if response.status != 200:
            detail, codes = error_detail(response.body)
            raise RegistryError(
                f"token service {urlsplit(realm).netloc} of {self._registry} answered "
                f"HTTP {response.status}{detail}",
                status=response.status,
                codes=codes,
            )
        return _parse_token_reply(response.body, self._registry)

    def _cleartext_realm(self, realm: str) -> bool:
        """A plain-HTTP token service of a TLS registry that is not marked insecure."""
        plain = urlsplit(realm).scheme == "http"
        return plain and self._challenge_scheme == "https" and not self._insecure

    def _token_get(self, realm: str, service: str, scopes: Scopes) -> Response:
        params = [("service", service)] if service else []
        params += [("scope", scope) for scope in scopes]
        headers = {"User-Agent": USER_AGENT}
        creds = self._credentials
        if creds and creds.password:
            params.append(("account", creds.username))
            headers["Authorization"] = self._basic()
        separator = "&" if urlsplit(realm).query else "?"
        return self._transport.request("GET", f"{realm}{separator}{urlencode(params)}", headers)

    def _token_post(self, realm: str, service: str, scopes: Scopes, refresh_token: str) -> Response:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "service": service,
            "client_id": CLIENT_ID,
            "scope": " ".join(scopes),
        }
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/x-www-form-urlencoded"}
        return self._transport.request("POST", realm, headers, urlencode(form).encode())


def _parse_token_reply(body: bytes, registry: str) -> tuple[str, float]:
    """The token and its lifetime in seconds from a token service's JSON reply."""
    try:
        reply = json.loads(body)
        token = reply.get("token") or reply.get("access_token")
        lifetime = float(reply.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
    except (ValueError, AttributeError, TypeError):
        token, lifetime = None, 0.0
    if not token or not isinstance(token, str):
        raise RegistryError(f"the token service of {registry} sent no token")
    return token, lifetime
