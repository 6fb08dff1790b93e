"""Real registries on loopback for the registry client's tests, and the tools to check them.

Three setups of the CNCF distribution registry (Debian's `docker-registry`): anonymous over
plain HTTP; htpasswd (bcrypt, from apache2-utils' `htpasswd`) over TLS with a CA made here
by `openssl`; and bearer tokens from a small token server written here, which checks
HTTP Basic credentials or refresh tokens and signs RS256 JWTs with `openssl dgst`, carrying
its certificate in the `x5c` header that the registry checks against its rootcertbundle.
A loopback HTTP proxy records requests and injects faults. Each server keeps its state
under a temporary directory, and a server that does not come up fails the test with its log.

Test modules load this file with `pytest_plugins = ["oci.registry_servers"]`.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import random
import secrets
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from hostprocess.oci.image import Image, RuntimeConfig, build_image
from hostprocess.oci.layout import layout_files
from hostprocess.oci.types import Compression
from hostprocess.oci.windows.base import base_layer_files
from hostprocess.oci.windows.layer import LayerFile
from oci.layer_blobs import write_layer_blob
from system_tools import system_tool

BASIC_USER, BASIC_PASSWORD = "alice", "basic-secret-Pa55"
TOKEN_USER, TOKEN_PASSWORD = "bob", "token-secret-Pa55"
IDENTITY_TOKEN = "refresh-token-0123456789abcdef"
TOKEN_SERVICE = "hostprocess-test-registry"
TOKEN_ISSUER = "hostprocess-test-token-server"
STARTUP_SECONDS = 20


def run(argv: Sequence[str], *, stdin: bytes = b"") -> bytes:
    result = subprocess.run(list(argv), input=stdin, capture_output=True, check=False)
    assert (
        result.returncode == 0
    ), f"{' '.join(argv)} failed:\n{result.stderr.decode(errors='replace')}"
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- certificates and passwords ----------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    cert: Path
    key: Path

    @property
    def cert_dir(self) -> Path:
        """A directory holding only the CA, as skopeo's --cert-dir wants."""
        return self.ca_cert.parent


def openssl(*args: str | Path, stdin: bytes = b"") -> bytes:
    return run([system_tool("openssl"), *map(str, args)], stdin=stdin)


NEW_KEY = ("-newkey", "rsa:2048", "-nodes", "-sha256")


def self_signed(key: Path, cert: Path, subject: str, *extensions: str) -> None:
    """A new RSA key and a self-signed certificate for it, valid for two days."""
    addext = [arg for extension in extensions for arg in ("-addext", extension)]
    openssl("req", "-x509", *NEW_KEY, "-days", "2", "-subj", subject, *addext,
            "-keyout", key, "-out", cert)  # fmt: skip


def make_tls(directory: Path) -> TlsFiles:
    """A test CA and a server certificate it signs for 127.0.0.1 and localhost."""
    (directory / "ca").mkdir(parents=True)
    ca_cert, ca_key = directory / "ca" / "ca.crt", directory / "ca.key"
    ca_extensions = ("basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign")
    self_signed(ca_key, ca_cert, "/CN=hostprocess test CA", *ca_extensions)
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    openssl("req", *NEW_KEY, "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", csr)
    extensions = directory / "server.ext"
    extensions.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
            "-sha256", "-days", "2", "-extfile", extensions, "-out", cert)  # fmt: skip
    return TlsFiles(ca_cert, cert, key)


def write_htpasswd(path: Path, users: dict[str, str]) -> None:
    """bcrypt entries (the registry accepts no other hash), made by apache2-utils' htpasswd."""
    htpasswd = system_tool("htpasswd")
    lines = [
        run([htpasswd, "-niB", user], stdin=password.encode()).strip()
        for user, password in users.items()
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")


# --- the distribution registry ------------------------------------------------------


@dataclass
class RegistryServer:
    host: str  # 127.0.0.1:PORT
    process: subprocess.Popen
    log_path: Path
    tls: TlsFiles | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_registry(
    directory: Path,
    *,
    tls: TlsFiles | None = None,
    auth: dict | None = None,
    relative_urls: bool = False,
) -> RegistryServer:
    """Start `docker-registry serve` on a free loopback port and wait until it answers."""
    binary = system_tool("docker-registry")
    directory.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("REGISTRY_")}
    for _ in range(3):  # another process may take the port between choosing and binding it
        port = free_port()
        http_config: dict = {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)}
        if tls:
            http_config["tls"] = {"certificate": str(tls.cert), "key": str(tls.key)}
        if relative_urls:
            http_config["relativeurls"] = True
        config = {
            "version": "0.1",
            "log": {"level": "info", "formatter": "text"},
            "storage": {
                "filesystem": {"rootdirectory": str(directory / "storage")},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": http_config,
        }
        if auth:
            config["auth"] = auth
        config_path = directory / "config.yml"  # JSON is YAML
        config_path.write_text(json.dumps(config, indent=2))
        log_path = directory / f"registry-{port}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [binary, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT, env=env
            )
        server = RegistryServer(f"127.0.0.1:{port}", process, log_path, tls)
        if _wait_until_serving(server):
            return server
        if "address already in use" not in server.log():
            break
    raise AssertionError(f"docker-registry did not start; its log ({log_path}):\n{server.log()}")


def _wait_until_serving(server: RegistryServer) -> bool:
    context = ssl.create_default_context(cafile=str(server.tls.ca_cert)) if server.tls else None
    deadline = time.monotonic() + STARTUP_SECONDS
    host, port = server.host.rsplit(":", 1)
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        if context:
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, int(port), timeout=2, context=context
            )
        else:
            connection = http.client.HTTPConnection(host, int(port), timeout=2)
        try:
            connection.request("GET", "/v2/")
            if connection.getresponse().status in (200, 401):
                return True
        except OSError:
            time.sleep(0.05)
        finally:
            connection.close()
    server.stop()
    return False


# --- the token server ----------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenRequest:
    method: str
    user: str | None
    scopes: list[str]
    grant_type: str = ""


class TokenServer:
    """Issues registry JWTs to holders of a password or refresh token, as Docker's auth servers do.

    GET `/token?service=..&scope=..` with HTTP Basic, or POST `/token` with the OAuth
    `grant_type=refresh_token` form. Every authenticated user gets whatever they ask for.
    """

    def __init__(
        self, directory: Path, users: dict[str, str], refresh_tokens: dict[str, str]
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.key, self.cert = directory / "token-signer.key", directory / "token-signer.crt"
        self_signed(self.key, self.cert, "/CN=hostprocess test token signer")
        # The registry verifies the x5c chain against its rootcertbundle (this same certificate).
        self._x5c = base64.b64encode(ssl.PEM_cert_to_DER_cert(self.cert.read_text())).decode()
        self.users = users
        self.refresh_tokens = refresh_tokens
        self.oauth_enabled = True
        self.requests: list[TokenRequest] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
        self._server.daemon_threads = True
        self._server.token_server = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def issue(self, user: str, scopes: Sequence[str]) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": user,
            "aud": TOKEN_SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": [_access(scope) for scope in scopes],
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        # RS256 is RSASSA-PKCS1-v1_5 over SHA-256: exactly what `openssl dgst -sign` makes.
        signature = openssl("dgst", "-sha256", "-sign", self.key, stdin=signing_input.encode())
        return f"{signing_input}.{_b64url(signature)}"


def _access(scope: str) -> dict:
    """`type:name:actions`, where the name may itself contain ':' (a host:port prefix)."""
    kind, rest = scope.split(":", 1)
    name, actions = rest.rsplit(":", 1)
    return {"type": kind, "name": name, "actions": actions.split(",")}


class _TokenHandler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass

    @property
    def _tokens(self) -> TokenServer:
        return self.server.token_server  # type: ignore[attr-defined]

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        query = parse_qs(urlsplit(self.path).query)
        user = self._basic_user()
        scopes = query.get("scope", [])
        self._tokens.requests.append(TokenRequest("GET", user, scopes))
        if user is None or query.get("service") != [TOKEN_SERVICE]:
            self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
            return
        self._reply(200, {"token": self._tokens.issue(user, scopes), "expires_in": 300})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        scopes = " ".join(form.get("scope", [])).split()
        user = self._tokens.refresh_tokens.get(form.get("refresh_token", [""])[0])
        grant = form.get("grant_type", [""])[0]
        self._tokens.requests.append(TokenRequest("POST", user, scopes, grant))
        if not self._tokens.oauth_enabled:
            self._reply(404, {"error": "not_found"})
        elif user is None or grant != "refresh_token" or form.get("service") != [TOKEN_SERVICE]:
            self._reply(
                401, {"error": "invalid_grant", "error_description": "unknown refresh token"}
            )
        else:
            self._reply(200, {"access_token": self._tokens.issue(user, scopes), "expires_in": 300})

    def _basic_user(self) -> str | None:
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        user, _, password = base64.b64decode(value).decode().partition(":")
        return user if self._tokens.users.get(user) == password else None

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# --- a recording, fault-injecting proxy ----------------------------------------------

FORWARD = "forward"
DROP = "drop"  # close the connection without forwarding or answering
DROP_AFTER = "drop-after"  # forward, then close without answering: the registry acted, unseen
CORRUPT = "corrupt"  # forward, but flip the last byte of the reply's body
REDIRECT = "redirect"  # 307 to the same path on the registry itself, as storage redirects do
Policy = Callable[[str, str], str]  # (method, path) -> an action, or an HTTP status like "503"
INJECTED_ERROR = json.dumps({"errors": [{"code": "INJECTED", "message": "injected fault"}]})
# Per-connection headers, and the ones BaseHTTPRequestHandler writes itself.
_NOT_FORWARDED = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "date", "server"}
)


@dataclass
class Recorded:
    method: str
    path: str
    action: str
    content_range: str | None
    arrived: float = 0.0  # time.monotonic() when the request reached the proxy
    answered: float | None = None  # just before the reply (or the dropped connection) went out


def max_in_flight(records: Sequence[Recorded]) -> int:
    """The most of `records` the proxy was handling at one moment.

    A request is in flight at the proxy from its arrival until it is answered, and the client
    sent it before and got the answer after: so this never exceeds the client's own count.
    """
    events = sorted(
        [(r.arrived, 1) for r in records] + [(_answered(r), -1) for r in records],
        key=lambda event: (event[0], event[1]),  # an answer before an arrival at the same time
    )
    most = current = 0
    for _, change in events:
        current += change
        most = max(most, current)
    return most


def _answered(record: Recorded) -> float:
    assert record.answered is not None, f"{record.method} {record.path} was never answered"
    return record.answered


FAULTS = (DROP, DROP_AFTER, "500", "503", "429")


def random_faults(seed: int, rate: float) -> Policy:
    """Fail a `rate` of requests, chosen and typed by seeded generators, one per kind of request.

    The n-th request of a kind (its method and what it addresses: a blob, an upload, a
    manifest) meets the same fate on every run, however concurrent blob uploads interleave.
    """
    generators: dict[str, random.Random] = {}
    lock = threading.Lock()

    def policy(method: str, path: str) -> str:
        kind = f"{method} {request_kind(path)}"
        with lock:
            generator = generators.setdefault(kind, random.Random(f"{seed} {kind}"))
            return generator.choice(FAULTS) if generator.random() < rate else FORWARD

    return policy


def request_kind(path: str) -> str:
    """What a distribution-API path addresses, without the names and digests that vary."""
    for marker, kind in (
        ("/blobs/uploads/", "upload"),
        ("/blobs/", "blob"),
        ("/manifests/", "manifest"),
    ):
        if marker in path:
            return kind
    return path


class FaultProxy:
    """An HTTP proxy in front of a registry that keeps the Host header (so the registry's
    Locations point back at it), records every request and applies `policy` to each."""

    def __init__(self, upstream: str, policy: Policy = lambda method, path: FORWARD) -> None:
        self.upstream = upstream
        self.policy = policy
        self.latency = 0.0  # seconds each request waits before it is handled, to make overlaps
        self.records: list[Recorded] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _handle(self) -> None:
        proxy: FaultProxy = self.server.proxy  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        action = proxy.policy(self.command, path)
        record = Recorded(
            self.command, path, action, self.headers.get("Content-Range"), time.monotonic()
        )
        proxy.records.append(record)
        time.sleep(proxy.latency)
        if action == DROP:
            record.answered = time.monotonic()
            self.close_connection = True
        elif action == REDIRECT:
            location = f"http://{proxy.upstream}{self.path}"
            self._reply(record, 307, [("Location", location)], b"")
        elif action.isdigit():
            headers = [("Retry-After", "0"), ("Content-Type", "application/json")]
            self._reply(record, int(action), headers, INJECTED_ERROR.encode())
        else:
            status, headers, data = self._forward(proxy.upstream, body)
            if action == DROP_AFTER:
                record.answered = time.monotonic()
                self.close_connection = True
                return
            if action == CORRUPT and data:
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            self._reply(record, status, headers, data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _forward(self, upstream: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        host, port = upstream.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED}
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def _reply(
        self, record: Recorded, status: int, headers: list[tuple[str, str]], data: bytes
    ) -> None:
        """Relay a reply; a HEAD keeps the registry's Content-Length (the blob's size)."""
        record.answered = time.monotonic()
        head = self.command == "HEAD"
        dropped = _NOT_FORWARDED if head else _NOT_FORWARDED | {"content-length"}
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in dropped:
                self.send_header(name, value)
        if not head:
            self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(data)


# --- skopeo, the independent verifier ---------------------------------------------------


def skopeo_inspect(
    reference: str,
    *,
    raw: bool = False,
    config: bool = False,
    creds: str | None = None,
    cert_dir: Path | None = None,
) -> subprocess.CompletedProcess:
    argv = [system_tool("skopeo"), "inspect", "--retry-times", "0"]
    argv += ["--raw"] if raw else []
    argv += ["--config"] if config else []
    argv += ["--cert-dir", str(cert_dir)] if cert_dir else ["--tls-verify=false"]
    argv += ["--creds", creds] if creds else ["--no-creds"]
    return subprocess.run(
        [*argv, f"docker://{reference}"], capture_output=True, check=False, timeout=60
    )


def skopeo_output(reference: str, **options: Any) -> bytes:
    result = skopeo_inspect(reference, **options)
    assert result.returncode == 0, f"skopeo inspect {reference} failed:\n{result.stderr.decode()}"
    return result.stdout


def assert_served(host: str, repository: str, built: BuiltImage, **skopeo: Any) -> None:
    """skopeo sees our exact manifest and config under the digest and under every tag."""
    digest = built.image.digest
    for reference in [f"{repository}@{digest}"] + [f"{repository}:{tag}" for tag in built.tags]:
        raw = skopeo_output(f"{host}/{reference}", raw=True, **skopeo)
        assert raw == built.image.manifest, reference
        for key in (b'"platform"', b'"os.version"'):
            assert key not in raw
        inspected = json.loads(skopeo_output(f"{host}/{reference}", **skopeo))
        assert inspected["Digest"] == digest, reference
        assert inspected["Os"] == "windows" and inspected["Architecture"] == "amd64"
    config = skopeo_output(f"{host}/{repository}:{built.tags[0]}", raw=True, config=True, **skopeo)
    assert config == built.image.config
    assert b"os.version" not in config


# --- a real image in an OCI layout ---------------------------------------------------------


@dataclass(frozen=True)
class BuiltImage:
    layout: Path
    image: Image
    tags: tuple[str, ...]
    layer_sizes: tuple[int, ...]  # base layer, then each app layer


def build_layout(
    directory: Path,
    cc0: bytes,
    *app_layers: Sequence[LayerFile],
    tags: Sequence[str] = ("v1", "latest"),
    compression: Compression = Compression.GZIP,
) -> BuiltImage:
    """The built-in base layer plus one layer of each of `app_layers`, as an OCI layout."""
    (directory / "blobs" / "sha256").mkdir(parents=True)
    base = write_layer_blob(
        directory, base_layer_files(cc0), base=True, compression=Compression.GZIP
    )
    apps = [
        write_layer_blob(directory, files, base=False, compression=compression)
        for files in app_layers
    ]
    image = build_image(
        RuntimeConfig(entrypoint=["powershell.exe", "./hello.ps1"]),
        [base, *apps],
        architecture="amd64",
        created=0,
        history=["base", *("COPY app" for _ in apps)],
    )
    for rel, data in layout_files(image, tags).items():
        (directory / rel).write_bytes(data)
    return BuiltImage(directory, image, tuple(tags), tuple(layer.size for layer in [base, *apps]))


def layered_image(directory: Path, cc0_path: Path, layers: int) -> BuiltImage:
    """The base layer and `layers` app layers of distinct random content: `layers` + 2 blobs."""
    app_layers = [[LayerFile(f"app{i}/data.bin", os.urandom(64 * 1024))] for i in range(layers)]
    return build_layout(directory, cc0_path.read_bytes(), *app_layers)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def servers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registries")


@pytest.fixture(scope="session")
def anonymous_registry(servers_dir: Path) -> Iterator[RegistryServer]:
    server = start_registry(servers_dir / "anonymous")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_files(servers_dir: Path) -> TlsFiles:
    return make_tls(servers_dir / "tls")


@pytest.fixture(scope="session")
def basic_registry(servers_dir: Path, tls_files: TlsFiles) -> Iterator[RegistryServer]:
    htpasswd = servers_dir / "htpasswd"
    write_htpasswd(htpasswd, {BASIC_USER: BASIC_PASSWORD})
    auth = {"htpasswd": {"realm": "hostprocess-test", "path": str(htpasswd)}}
    server = start_registry(servers_dir / "basic", tls=tls_files, auth=auth)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_server(servers_dir: Path) -> Iterator[TokenServer]:
    server = TokenServer(
        servers_dir / "token-server", {TOKEN_USER: TOKEN_PASSWORD}, {IDENTITY_TOKEN: TOKEN_USER}
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_registry(servers_dir: Path, token_server: TokenServer) -> Iterator[RegistryServer]:
    auth = {
        "token": {
            "realm": token_server.realm,
            "service": TOKEN_SERVICE,
            "issuer": TOKEN_ISSUER,
            "rootcertbundle": str(token_server.cert),
        }
    }
    # Relative upload Locations here, absolute ones elsewhere: the client must resolve both.
    server = start_registry(servers_dir / "token", auth=auth, relative_urls=True)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def small_image(tmp_path_factory: pytest.TempPathFactory, cc0_path: Path) -> BuiltImage:
    app = [LayerFile("hello.ps1", b"Write-Host 'hello from a HostProcess container'\r\n")]
    return build_layout(tmp_path_factory.mktemp("small") / "layout", cc0_path.read_bytes(), app)


@pytest.fixture
def fresh_token_server(token_server: TokenServer) -> Iterator[TokenServer]:
    """The token server with its request log cleared and OAuth on, restored afterwards."""
    token_server.requests.clear()
    yield token_server
    token_server.oauth_enabled = True


@pytest.fixture
def repository(request: pytest.FixtureRequest) -> str:
    """A repository of this test's own on the shared registries."""
    return unique_repository(request.node.name)


@pytest.fixture
def proxy(anonymous_registry: RegistryServer) -> Iterator[FaultProxy]:
    """A recording, fault-injecting proxy in front of the anonymous registry (forwarding all)."""
    proxy = FaultProxy(anonymous_registry.host)
    yield proxy
    proxy.stop()


def unique_repository(name: str) -> str:
    """A repository name for one test, so tests sharing a registry never see each other's tags."""
    cleaned = "-".join(
        part for part in "".join(c if c.isalnum() else " " for c in name.lower()).split()
    )
    return f"test/{cleaned}"


# --- hostile registries: a proxy that rewrites the registry's replies ----------------------

Reply = tuple[int, list[tuple[str, str]], bytes]  # status, headers, body
Rewrite = Callable[[str, str, Reply], Reply]  # (method, path, the registry's reply) -> reply


class RewritingProxy(FaultProxy):
    """A `FaultProxy` that passes each reply it forwards through `rewrite`, to play a registry
    that lies in its headers or bodies while a real one stores what it was sent."""

    def __init__(
        self,
        upstream: str,
        rewrite: Rewrite,
        policy: Policy = lambda method, path: FORWARD,
    ) -> None:
        super().__init__(upstream, policy)
        self.rewrite = rewrite
        self._server.RequestHandlerClass = _RewritingHandler


class _RewritingHandler(_ProxyHandler):
    def _forward(self, upstream: str, body: bytes) -> Reply:
        proxy: RewritingProxy = self.server.proxy  # type: ignore[attr-defined]
        reply = super()._forward(upstream, body)
        return proxy.rewrite(self.command, urlsplit(self.path).path, reply)


def without_header(name: str, applies: Callable[[str, str], bool]) -> Rewrite:
    """Drop header `name` from the replies to the requests (method, path) that `applies` to."""

    def rewrite(method: str, path: str, reply: Reply) -> Reply:
        status, headers, data = reply
        if applies(method, path):
            headers = [(k, v) for k, v in headers if k.lower() != name.lower()]
        return status, headers, data

    return rewrite


def with_header(name: str, value: str, applies: Callable[[str, str], bool]) -> Rewrite:
    """Set header `name` to `value` in the replies to the requests that `applies` to."""

    def rewrite(method: str, path: str, reply: Reply) -> Reply:
        status, headers, data = without_header(name, applies)(method, path, reply)
        return status, headers + ([(name, value)] if applies(method, path) else []), data

    return rewrite


def replaced_reply(replacement: Reply, applies: Callable[[str, str], bool]) -> Rewrite:
    """Answer the requests that `applies` to with `replacement`, whatever the registry said."""

    def rewrite(method: str, path: str, reply: Reply) -> Reply:
        return replacement if applies(method, path) else reply

    return rewrite
