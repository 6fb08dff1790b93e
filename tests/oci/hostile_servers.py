"""Loopback HTTP(S) servers that behave as a hostile or broken registry would, for the
registry client's security tests.

A `ScriptedServer` answers every request with a function the test writes (`Script`), and
records each request with its headers, so a test can assert what reached which origin.
With `tls`, it speaks HTTPS; with `tls` and `dual=True`, it speaks HTTPS and plain HTTP on
the same port (telling them apart by the first byte), so that an https-to-http redirect can
stay on one host and port.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from oci.registry_servers import TlsFiles

_TLS_HANDSHAKE = 0x16  # the first byte of a TLS ClientHello record


@dataclass(frozen=True)
class Seen:
    """One request as it arrived: `headers` with lowercase names; `tls` how it came."""

    method: str
    path: str
    headers: dict[str, str]
    tls: bool


class Handler(BaseHTTPRequestHandler):
    """What a `Script` gets: the request (method, path, headers) and the socket to answer."""

    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    @property
    def over_tls(self) -> bool:
        return isinstance(self.connection, ssl.SSLSocket)

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        seen = Seen(
            self.command,
            self.path,
            {name.lower(): value for name, value in self.headers.items()},
            self.over_tls,
        )
        self.server.owner.requests.append(seen)
        self.close_connection = True
        self.server.owner.script(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


Script = Callable[[Handler], None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: ScriptedServer

    def __init__(self, tls: ssl.SSLContext | None, dual: bool) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self._tls = tls
        self._dual = dual

    def finish_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        if self._tls is not None:
            first = request.recv(1, socket.MSG_PEEK)
            if not self._dual or (first and first[0] == _TLS_HANDSHAKE):
                try:
                    request = self._tls.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # a client that refused our certificate: nothing to answer
        super().finish_request(request, client_address)


class ScriptedServer:
    """A loopback server that answers with `script` and records every request."""

    def __init__(self, script: Script, *, tls: TlsFiles | None = None, dual: bool = False) -> None:
        self.script = script
        self.requests: list[Seen] = []
        context = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls.cert), str(tls.key))
        self._server = _Server(context, dual)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://{self.host}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def authorizations(self) -> list[str]:
        """The `Authorization` header of every request that carried one."""
        return [
            seen.headers["authorization"]
            for seen in self.requests
            if "authorization" in seen.headers
        ]


# --- answers -------------------------------------------------------------------------


def reply(
    handler: Handler, status: int, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()
) -> None:
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def challenge(handler: Handler, value: str) -> None:
    """A 401 with one `WWW-Authenticate` challenge."""
    reply(handler, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', [("WWW-Authenticate", value)])


def stream(handler: Handler, chunks: Iterable[bytes], *, length: int | None = None) -> int:
    """A 200 whose body is `chunks`, sent as they come (with `length` as Content-Length if
    given, else delimited by closing the connection); the number of bytes the client took."""
    handler.send_response(200)
    if length is not None:
        handler.send_header("Content-Length", str(length))
    handler.send_header("Connection", "close")
    handler.end_headers()
    sent = 0
    try:
        for chunk in chunks:
            handler.wfile.write(chunk)
            handler.wfile.flush()
            sent += len(chunk)
    except OSError:
        pass  # the client hung up: exactly what a bounded reader should do
    return sent


def endless(block: bytes = b"\0" * (64 << 10)) -> Iterable[bytes]:
    while True:
        yield block


def trickle(data: bytes, interval: float) -> Iterable[bytes]:
    """`data` one byte every `interval` seconds."""
    for byte in data:
        time.sleep(interval)
        yield bytes([byte])


def trickle_status_line(handler: Handler, interval: float, count: int) -> None:
    """Send an answer's first `count` bytes one every `interval` seconds, then hang up."""
    try:
        for byte in b"HTTP/1.1 200 OK\r\n"[:count]:
            time.sleep(interval)
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
    except OSError:
        pass


def forward(handler: Handler, upstream: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """Send the request on to `upstream` (`host:port`, plain HTTP) as it came, Host included."""
    host, port = upstream.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        excluded = {"connection", "keep-alive", "transfer-encoding", "authorization"}
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in excluded}
        connection.request(handler.command, handler.path, body=handler.body(), headers=headers)
        response = connection.getresponse()
        kept = [
            (name, value)
            for name, value in response.getheaders()
            if name.lower()
            not in ("connection", "content-length", "transfer-encoding", "date", "server")
        ]
        return response.status, kept, response.read()
    finally:
        connection.close()
