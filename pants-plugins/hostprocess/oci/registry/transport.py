"""Single HTTP exchanges with a registry: TLS, redirects, and error bodies read as registries write them.

One connection per request, so exchanges from several threads never share state. Failures
worth retrying (no response at all, 429, 5xx) become `TransientError`; a certificate that
does not verify is a `RegistryError` at once.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Union
from urllib.parse import urljoin, urlsplit

from hostprocess.oci.registry.errors import RegistryError, TransientError
from hostprocess.oci.registry.retry import retry_after

IO_BLOCK_SIZE = 1 << 20  # how much of a body is read from disk or the socket at a time
USER_AGENT = "hostprocess-oci"
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5


class BodyStream(Protocol):
    """A request body that http.client reads in pieces as it sends, then closed."""

    def read(self, size: int = -1) -> bytes:
        ...

    def close(self) -> None:
        ...


# A streamed body is a factory, so that every try of a request sends it from the start.
Body = Union[bytes, Callable[[], BodyStream], None]
Sink = Callable[[bytes], None]


@dataclass(frozen=True)
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    url: str  # the URL that answered, to resolve relative Locations against


class Transport:
    """Sends requests to one registry (and the hosts it redirects to) with one TLS setup."""

    def __init__(self, registry: str, tls: ssl.SSLContext, timeout: float) -> None:
        self._registry = registry
        self._tls = tls
        self._timeout = timeout

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Body = None,
        *,
        sink: Sink | None = None,
    ) -> Response:
        """Send one request, following GET/HEAD redirects (without credentials to other hosts)."""
        headers = dict(headers)
        for _ in range(MAX_REDIRECTS + 1):
            response = self._once(method, url, headers, body, sink)
            location = response.headers.get("Location")
            if (
                method not in ("GET", "HEAD")
                or response.status not in REDIRECT_STATUSES
                or not location
            ):
                return response
            target = urljoin(url, location)
            if urlsplit(target).netloc != urlsplit(url).netloc:
                headers.pop("Authorization", None)
            url = target
        raise RegistryError(
            f"{method} {url_path(url)} at {self._registry}: more than {MAX_REDIRECTS} redirects"
        )

    def _once(
        self, method: str, url: str, headers: Mapping[str, str], body: Body, sink: Sink | None
    ) -> Response:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = self._connect(parts.scheme, parts.hostname or "", parts.port)
        what = f"{method} {url_path(url)}"
        source = body() if callable(body) else body
        sinking = False  # the sink's own errors (a full disk) are not the network's
        try:
            connection.request(method, target, body=source, headers=dict(headers))
            raw = connection.getresponse()
            data = b""
            if sink is not None and 200 <= raw.status < 300:
                for block in iter(lambda: raw.read(IO_BLOCK_SIZE), b""):
                    sinking = True
                    sink(block)
                    sinking = False
            else:
                data = raw.read()
        except ssl.SSLCertVerificationError as error:
            raise RegistryError(
                f"TLS certificate of {parts.netloc} (for {self._registry}) did not verify: "
                f"{error.verify_message}; pass the CA that signed it as a CA bundle"
            ) from None
        except (OSError, http.client.HTTPException) as error:
            if sinking:
                raise
            raise TransientError(
                f"{what}: {type(error).__name__}: {error}", transport=True
            ) from None
        finally:
            connection.close()
            if source is not None and not isinstance(source, bytes):
                source.close()
        if raw.status in RETRYABLE_STATUSES:
            detail, codes = error_detail(data)
            raise TransientError(
                f"{what}: HTTP {raw.status}{detail}",
                retry_after=retry_after(raw.headers.get("Retry-After")),
                status=raw.status,
                codes=codes,
            )
        return Response(raw.status, raw.headers, data, url)

    def _connect(self, scheme: str, host: str, port: int | None) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(
                host, port, timeout=self._timeout, context=self._tls, blocksize=IO_BLOCK_SIZE
            )
        if scheme == "http":
            return http.client.HTTPConnection(
                host, port, timeout=self._timeout, blocksize=IO_BLOCK_SIZE
            )
        raise RegistryError(
            f"{self._registry} pointed at a {scheme!r} URL; only http(s) is supported"
        )


def tls_context(ca_bundle: Path | None, *, verify: bool) -> ssl.SSLContext:
    """The system's trust store, plus a private CA when one is given; no checks if insecure."""
    context = ssl.create_default_context()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def is_loopback(registry: str) -> bool:
    """`localhost`, 127.0.0.0/8 or [::1], with or without a port."""
    host = urlsplit(f"//{registry}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def error_detail(body: bytes) -> tuple[str, tuple[str, ...]]:
    """': CODE: message; ...' from a registry's (or token server's) error body, and the codes."""
    try:
        data = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", errors="replace").strip()
        return (f": {text[:200]}" if text else "", ())
    if not isinstance(data, dict):
        return "", ()
    errors = data.get("errors")
    if isinstance(errors, list):
        parts, codes = [], []
        for error in errors:
            if isinstance(error, dict):
                codes.append(str(error.get("code", "")))
                parts.append(_describe_error(error))
        return (": " + "; ".join(parts) if parts else "", tuple(codes))
    message = (
        data.get("details")
        or data.get("error_description")
        or data.get("error")
        or data.get("message")
    )
    return (f": {str(message)[:200]}" if message else "", ())


def _describe_error(error: Mapping[str, Any]) -> str:
    text = f"{error.get('code', 'UNKNOWN')}: {error.get('message', '')}".rstrip(": ")
    detail = error.get("detail")
    if detail:
        rendered = detail if isinstance(detail, str) else json.dumps(detail, sort_keys=True)
        text += f" ({rendered[:200]})"
    return text


def url_path(url: str) -> str:
    """A URL's path for messages: upload URLs carry long opaque state in their query."""
    return urlsplit(url).path
