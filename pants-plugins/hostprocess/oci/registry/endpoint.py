"""One registry as push and pull see it: its base URL, authorized requests, retries and checks.

HTTPS is verified (against the system store plus a CA bundle) unless the registry is marked
insecure; plain HTTP is used only when HTTPS fails at the transport level and the registry
is loopback or marked insecure, as Docker does.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Callable, TypeVar

from hostprocess.oci.registry.authorizer import Authorizer, Scopes
from hostprocess.oci.registry.errors import RegistryError, TransientError
from hostprocess.oci.registry.retry import Retry, retrying
from hostprocess.oci.registry.transport import (
    USER_AGENT,
    Body,
    Response,
    Sink,
    Transport,
    error_detail,
    origin,
    url_path,
)

T = TypeVar("T")


class Endpoint:
    """Requests to one registry (`host[:port]`); safe to share between threads."""

    def __init__(
        self,
        registry: str,
        transport: Transport,
        authorizer: Authorizer,
        retry: Retry,
        *,
        plain_http_allowed: bool,
    ) -> None:
        self.registry = registry
        self._transport = transport
        self._authorizer = authorizer
        self._retry = retry
        self._plain_http_allowed = plain_http_allowed
        self._base: str | None = None
        self._base_lock = threading.Lock()

    def base_url(self) -> str:
        """`scheme://host`, found (and the registry's challenge learnt) on first use."""
        with self._base_lock:
            if self._base is None:
                self._base = self.retrying("reach the registry", self._detect_scheme)
            return self._base

    def exchange(
        self,
        method: str,
        url: str,
        scopes: Scopes,
        headers: Mapping[str, str],
        body: Body = None,
        *,
        sink: Sink | None = None,
        size: int | None = None,
    ) -> Response:
        """One request; credentials go only to the registry's own origin (scheme, host, port).

        A 401 from the registry gets one fresh challenge-response try. A 401 from another
        origin (an upload `Location` or a redirect elsewhere) is refused: its challenge is
        never learnt, so the registry's credentials never reach it.
        """
        home = origin(self.base_url())
        own = origin(url) == home
        for attempt in range(2):
            full = {"User-Agent": USER_AGENT, **headers}
            authorization = self._authorizer.authorization(scopes) if own else None
            if authorization:
                full["Authorization"] = authorization
            response = self._transport.request(method, url, full, body, sink=sink, size=size)
            if response.status != 401:
                return response
            if not own or origin(response.url) != home:
                raise self._foreign_challenge(method, response.url)
            if attempt or not self._authorizer.challenged(response, scopes):
                raise self._authorizer.failure(response)
        raise AssertionError("unreachable")

    def _foreign_challenge(self, method: str, url: str) -> RegistryError:
        scheme, host, port = origin(url)
        return RegistryError(
            f"{method} {url_path(url)}: {scheme}://{host}:{port}, where {self.registry} sent "
            f"the request, asked for credentials; {self.registry}'s credentials are only sent "
            f"to {self.registry} itself and its token service",
            status=401,
        )

    def retrying(
        self, what: str, attempt: Callable[[int], T], *, stop: threading.Event | None = None
    ) -> T:
        """`attempt(failures so far)`, retried on transient failures; see `retry.retrying`."""
        return retrying(self._retry, f"{what} at {self.registry}", attempt, stop=stop)

    def expect(self, response: Response, statuses: Sequence[int], what: str) -> None:
        """Fail for good unless the response has one of `statuses`."""
        if response.status not in statuses:
            detail, codes = error_detail(response.body)
            raise RegistryError(
                f"{what} at {self.registry} failed: HTTP {response.status}{detail}",
                status=response.status,
                codes=codes,
            )

    def _detect_scheme(self, _: int) -> str:
        """HTTPS, or HTTP if allowed and HTTPS fails below HTTP; also learns the challenge.

        A `/v2/` that answers, but not as a registry does (any status but 200 and 401 that is
        not worth a retry, or an HTML page), fails at once: retrying a wrong address only hides
        the mistake for the whole retry budget.
        """
        failure: TransientError | None = None
        for scheme in ("https", "http") if self._plain_http_allowed else ("https",):
            base = f"{scheme}://{self.registry}"
            try:
                response = self._transport.request("GET", f"{base}/v2/", {"User-Agent": USER_AGENT})
            except TransientError as error:
                if not error.transport:
                    raise  # it speaks HTTP(S) but is briefly unwell: retry the same scheme
                failure = error
                continue
            content_type = response.headers.get("Content-Type", "")
            if response.status not in (200, 401) or content_type.lower().startswith("text/html"):
                answer = f"HTTP {response.status}" + (f" ({content_type})" if content_type else "")
                raise RegistryError(
                    f"{self.registry} is not a registry (check the address): GET {base}/v2/ "
                    f"answered {answer}",
                    status=response.status,
                )
            if response.status == 401:
                if origin(response.url) != origin(base):  # redirected: not the registry's
                    raise self._foreign_challenge("GET", response.url)
                self._authorizer.challenged(response)
            return base
        assert failure is not None
        raise failure
