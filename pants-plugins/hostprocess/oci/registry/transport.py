"""Single HTTP exchanges with a registry: TLS, redirects, bounded reads, and error bodies read
as registries write them.

One connection per request, so exchanges from several threads never share state. Every
request has a deadline (`deadline.py`), and every body read has a bound: `MAX_BODY_BYTES` in
memory, the expected size for a streamed blob. Failures worth retrying (no response at all,
a body cut short, a missed deadline, 408, 429, 500, 502, 503, 504) become `TransientError`;
a certificate that does not verify is a `RegistryError` at once.
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

from hostprocess.oci.registry.deadline import Deadlines, Watchdog
from hostprocess.oci.registry.errors import RegistryError, TransientError
from hostprocess.oci.registry.retry import retry_after

IO_BLOCK_SIZE = 1 << 20  # how much of a body is read from disk or the socket at a time
USER_AGENT = "hostprocess-oci"
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
DEFAULT_PORTS = {"http": 80, "https": 443}
# Everything read into memory (manifests, indexes, token replies, error bodies) stops here.
# The distribution spec says clients and registries SHOULD expect manifests of at least 4 MiB
# and lets registries refuse larger ones (413); real manifests are a few KB.
MAX_BODY_BYTES = 4 << 20


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

    def __init__(self, registry: str, tls: ssl.SSLContext, deadlines: Deadlines) -> None:
        self._registry = registry
        self._tls = tls
        self._deadlines = deadlines

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Body = None,
        *,
        sink: Sink | None = None,
        size: int | None = None,
    ) -> Response:
        """Send one request, following GET/HEAD redirects.

        `Authorization` never follows a redirect to another origin (scheme, host and port),
        so an https-to-http redirect drops it too. A 2xx body goes to `sink` when given
        (`size`: exactly how many bytes it must have), else into memory (at most
        `MAX_BODY_BYTES`).
        """
        headers = dict(headers)
        for _ in range(MAX_REDIRECTS + 1):
            response = self._once(method, url, headers, body, sink, size)
            location = response.headers.get("Location")
            if (
                method not in ("GET", "HEAD")
                or response.status not in REDIRECT_STATUSES
                or not location
            ):
                return response
            target = urljoin(url, location)
            if origin(target) != origin(url):
                headers.pop("Authorization", None)
            url = target
        raise RegistryError(
            f"{method} {url_path(url)} at {self._registry}: more than {MAX_REDIRECTS} redirects"
        )

    def _once(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Body,
        sink: Sink | None,
        size: int | None,
    ) -> Response:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = self._connect(parts.scheme, parts.hostname or "", parts.port)
        what = f"{method} {url_path(url)}"
        source = body() if callable(body) else body
        streamed = (size or 0) + (_content_length(headers) if callable(body) else 0)
        watchdog = Watchdog(self._deadlines.allowance(streamed))
        try:
            with watchdog:
                connection.connect()
                watchdog.guard(connection.sock)
                connection.request(method, target, body=source, headers=dict(headers))
                raw = connection.getresponse()
                if sink is not None and 200 <= raw.status < 300:
                    data = b""
                    _stream(raw, sink, size, what)
                else:
                    data = _read_capped(raw, what)
        except _SinkFailed as failure:
            raise failure.error from None
        except ssl.SSLCertVerificationError as error:
            raise RegistryError(
                f"TLS certificate of {parts.netloc} (for {self._registry}) did not verify: "
                f"{error.verify_message}; pass the CA that signed it as a CA bundle"
            ) from None
        except (OSError, ValueError, http.client.HTTPException, TransientError) as error:
            if watchdog.expired:
                raise TransientError(
                    f"{what}: no complete answer within {round(watchdog.seconds, 1):g} s "
                    "(the request's deadline)"
                ) from None
            if isinstance(error, (TransientError, ValueError)):
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
        # The socket timeout bounds each read; the watchdog bounds the whole request.
        timeout = self._deadlines.request_seconds
        if scheme == "https":
            return http.client.HTTPSConnection(
                host, port, timeout=timeout, context=self._tls, blocksize=IO_BLOCK_SIZE
            )
        if scheme == "http":
            return http.client.HTTPConnection(host, port, timeout=timeout, blocksize=IO_BLOCK_SIZE)
        raise RegistryError(
            f"{self._registry} pointed at a {scheme!r} URL; only http(s) is supported"
        )


class _SinkFailed(Exception):
    """The sink's own error (a full disk), which is not the network's: raised as it is."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _stream(raw: http.client.HTTPResponse, sink: Sink, size: int | None, what: str) -> None:
    """Copy the body to `sink`, refusing a byte more than `size`; a short body is transient."""
    declared = _declared_length(raw)
    if size is not None and declared is not None and declared != size:
        raise RegistryError(f"{what}: the body has {declared} bytes, not the expected {size}")
    expected = size if size is not None else declared
    received = 0
    while True:
        block = raw.read(IO_BLOCK_SIZE if size is None else min(IO_BLOCK_SIZE, size - received + 1))
        if not block:
            break
        received += len(block)
        if size is not None and received > size:
            raise RegistryError(f"{what}: the body goes on past the expected {size} bytes")
        try:
            sink(block)
        except OSError as error:
            raise _SinkFailed(error) from None
    if expected is not None and received < expected:
        raise TransientError(
            f"{what}: the connection ended after {received} of {expected} bytes", transport=True
        )


def _read_capped(raw: http.client.HTTPResponse, what: str) -> bytes:
    """The body, in memory: at most MAX_BODY_BYTES of it (refused if a 2xx is longer)."""
    success = 200 <= raw.status < 300
    declared = _declared_length(raw)
    if success and declared is not None and declared > MAX_BODY_BYTES:
        raise RegistryError(_too_large(what, declared))
    chunks, received = [], 0
    while received <= MAX_BODY_BYTES:
        block = raw.read(min(IO_BLOCK_SIZE, MAX_BODY_BYTES + 1 - received))
        if not block:
            break
        chunks.append(block)
        received += len(block)
    data = b"".join(chunks)
    if received > MAX_BODY_BYTES:
        if success:
            raise RegistryError(_too_large(what, None))
        return data[:MAX_BODY_BYTES]  # an error's body is only read for its message
    if declared is not None and received < declared:
        raise TransientError(
            f"{what}: the connection ended after {received} of {declared} bytes", transport=True
        )
    return data


def _too_large(what: str, declared: int | None) -> str:
    size = f"{declared} bytes" if declared is not None else "more"
    return (
        f"{what}: the answer is {size}, over the {MAX_BODY_BYTES >> 20} MiB this client reads "
        "into memory (manifests, indexes, tokens and errors)"
    )


def _declared_length(raw: http.client.HTTPResponse) -> int | None:
    """The body's length as http.client parsed it from the headers, before any is read:
    0 for answers that have none (HEAD, 204, 304), None when the connection's end marks it."""
    return raw.length


def _content_length(headers: Mapping[str, str]) -> int:
    value = headers.get("Content-Length", "0")
    return int(value) if value.isdigit() else 0


def origin(url: str) -> tuple[str, str, int]:
    """A URL's origin as RFC 6454 defines it: scheme, lowercase host and port (defaulted)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port: int = parts.port or DEFAULT_PORTS.get(scheme) or 0
    return scheme, (parts.hostname or "").lower(), port


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
