"""Loopback fakes of the token services azure-identity talks to, checking what it sends.

``ManagedIdentityEndpoint`` answers as the managed-identity endpoints of App Service (and Azure ML
compute that sets ``IDENTITY_ENDPOINT``), Azure ML compute (``MSI_ENDPOINT``) and IMDS (VMs, AKS pod
identity, reached through ``AZURE_POD_IDENTITY_AUTHORITY_HOST``). ``EntraTokenEndpoint`` answers as
Entra ID's tenant metadata and token endpoint for workload identity (client-assertion grant), over
HTTPS. Each hands out one given token, only for the scopes it is told to, and records every request.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qs, urlsplit

APP_SERVICE, AZURE_ML, IMDS = "app_service", "azure_ml", "imds"

# What each flavour's client sends (azure-identity / MSAL): api-version, the secret header, the client-id parameter.
_FLAVOURS: dict[str, tuple[str, Optional[str], str]] = {
    APP_SERVICE: ("2019-08-01", "x-identity-header", "client_id"),
    AZURE_ML: ("2017-09-01", "secret", "clientid"),
    IMDS: ("2018-02-01", None, "client_id"),
}


@dataclass
class Seen:
    """One request as the fake saw it, and why it was refused (None when answered with a token)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)
    refused: Optional[str] = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], fake: Any, context: Optional[ssl.SSLContext]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.fake = fake
        self.context = context
        # Every connection and its thread: a client's keep-alive connection outlives serve_forever.
        self.connections: list[socket.socket] = []
        self.handler_threads: list[threading.Thread] = []

    def get_request(self) -> Any:
        sock, addr = self.socket.accept()
        if self.context is not None:
            # Handshake in the request's thread, so one bad client cannot stall the accept loop.
            sock = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        self.connections.append(sock)
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address), daemon=True)
        self.handler_threads.append(thread)
        thread.start()

    def close_connections(self) -> None:
        """End the connections clients keep open, and their threads (after ``shutdown``)."""
        for sock in self.connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self.handler_threads:
            thread.join(timeout=5)
        assert not any(t.is_alive() for t in self.handler_threads), "a fake's connection thread did not stop"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: tests read ``requests``
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        seen = Seen(
            self.command,
            parts.path,
            {k: v[-1] for k, v in parse_qs(parts.query).items()},
            {k.lower(): v for k, v in self.headers.items()},
            {k: v[-1] for k, v in parse_qs(body).items()},
        )
        status, answer = self.server.fake.answer(seen)  # type: ignore[attr-defined]
        self.server.fake.requests.append(seen)  # type: ignore[attr-defined]
        payload = json.dumps(answer).encode()
        self.send_response(status)
        for name, value in getattr(self.server.fake, "extra_headers", {}).items():  # type: ignore[attr-defined]
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve


class _Fake:
    """A server thread on 127.0.0.1 (an ephemeral port); use as a context manager."""

    def __init__(self, context: Optional[ssl.SSLContext] = None) -> None:
        self.requests: list[Seen] = []
        self._server = _Server(_Handler, self, context)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def __enter__(self) -> _Fake:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)

    def answer(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    @property
    def granted(self) -> list[Seen]:
        return [r for r in self.requests if r.refused is None]

    @property
    def refusals(self) -> list[str]:
        return [r.refused for r in self.requests if r.refused is not None]


class ManagedIdentityEndpoint(_Fake):
    """A managed-identity token endpoint of one flavour (``APP_SERVICE``, ``AZURE_ML`` or ``IMDS``)."""

    def __init__(
        self,
        flavour: str,
        token: str,
        resources: set[str],
        *,
        secret: Optional[str] = None,
        client_id: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.flavour, self.token, self.resources = flavour, token, resources
        self.secret, self.client_id = secret, client_id

    @property
    def url(self) -> str:
        """For ``IDENTITY_ENDPOINT``/``MSI_ENDPOINT``; IMDS is reached at ``AZURE_POD_IDENTITY_AUTHORITY_HOST``."""
        return f"http://127.0.0.1:{self.port}/msi/token"

    @property
    def authority_host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _problem(self, seen: Seen) -> Optional[str]:
        api_version, secret_header, client_id_param = _FLAVOURS[self.flavour]
        if seen.method != "GET":
            return f"method {seen.method}"
        if self.flavour == IMDS:
            if seen.path != "/metadata/identity/oauth2/token":
                return f"path {seen.path}"
            if seen.headers.get("metadata") != "true":
                return "no Metadata: true header"
        elif seen.headers.get(secret_header or "") != self.secret:
            return f"{secret_header} header missing or wrong"
        if seen.query.get("api-version") != api_version:
            return f"api-version {seen.query.get('api-version')!r}"
        if seen.query.get("resource") not in self.resources:
            return f"resource {seen.query.get('resource')!r} not granted"
        if seen.query.get(client_id_param) != self.client_id:
            return f"{client_id_param}={seen.query.get(client_id_param)!r}, expected {self.client_id!r}"
        return None

    def answer(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        seen.refused = self._problem(seen)
        if seen.refused:
            return 400, {"error": "invalid_request", "error_description": seen.refused}
        now = int(time.time())
        body = {"access_token": self.token, "expires_on": str(now + 3600), "resource": seen.query["resource"]}
        body["token_type"] = "Bearer"
        if self.flavour == IMDS:
            body.update(expires_in="3600", ext_expires_in="3600", not_before=str(now))
        return 200, body


class ThrottlingEndpoint(_Fake):
    """A token endpoint that answers every request 429 with ``Retry-After: retry_after`` (seconds).

    Each answer closes its connection, so once the fake is closed a client's next attempt is refused.
    """

    def __init__(self, retry_after: int = 3600) -> None:
        super().__init__()
        self.extra_headers = {"Retry-After": str(retry_after), "Connection": "close"}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/msi/token"

    def answer(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        seen.refused = "throttled"
        return 429, {"error": "throttled", "error_description": "too many requests"}


class EntraTokenEndpoint(_Fake):
    """Entra ID for one tenant over HTTPS: OpenID metadata and the client-assertion token grant."""

    def __init__(
        self,
        token: str,
        scopes: set[str],
        *,
        tenant_id: str,
        client_id: str,
        assertion: str,
        cert_file: str,
        key_file: str,
    ) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        super().__init__(context)
        self.token, self.scopes = token, scopes
        self.tenant_id, self.client_id, self.assertion = tenant_id, client_id, assertion

    @property
    def authority_host(self) -> str:
        """For ``AZURE_AUTHORITY_HOST``."""
        return f"https://127.0.0.1:{self.port}"

    def _metadata(self) -> dict[str, Any]:
        base = f"{self.authority_host}/{self.tenant_id}"
        return {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "tenant_region_scope": "WW",
        }

    def _problem(self, seen: Seen) -> Optional[str]:
        form = seen.form
        if form.get("grant_type") != "client_credentials":
            return f"grant_type {form.get('grant_type')!r}"
        if form.get("client_id") != self.client_id:
            return f"client_id {form.get('client_id')!r}"
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return f"client_assertion_type {form.get('client_assertion_type')!r}"
        if form.get("client_assertion") != self.assertion:
            return "client_assertion is not the federated token file's content"
        asked = set((form.get("scope") or "").split()) - {"offline_access", "openid", "profile"}
        if not asked or not asked <= self.scopes:
            return f"scope {form.get('scope')!r} not granted"
        return None

    def answer(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        tenant = f"/{self.tenant_id}"
        if seen.method == "GET" and seen.path == f"{tenant}/v2.0/.well-known/openid-configuration":
            return 200, self._metadata()
        if seen.method == "POST" and seen.path == f"{tenant}/oauth2/v2.0/token":
            seen.refused = self._problem(seen)
            if seen.refused:
                return 400, {"error": "invalid_client", "error_description": seen.refused}
            return 200, {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": self.token}
        seen.refused = f"unexpected {seen.method} {seen.path}"
        return 404, {"error": "not_found", "error_description": seen.refused}


class SilentEndpoint:
    """A token service that accepts every TCP connection and never answers (a hung endpoint).

    With a TLS ``context`` it completes the handshake first, so the client's request is sent and only
    the answer never comes. It reads what clients send (``request_lines``: the first line of each
    request, to show which endpoint was asked) and holds each connection open until the fake is
    closed; closing it closes the listener and every held connection and joins its threads.
    """

    def __init__(self, context: Optional[ssl.SSLContext] = None) -> None:
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._held: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.connections = 0
        self.request_lines: list[str] = []
        self._acceptor = threading.Thread(target=self._accept, name="silent-endpoint", daemon=True)

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    @property
    def url(self) -> str:
        """For ``IDENTITY_ENDPOINT``/``MSI_ENDPOINT``."""
        return f"http://127.0.0.1:{self.port}/msi/token"

    @property
    def authority_host(self) -> str:
        """For ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` (http) or, with TLS, ``AZURE_AUTHORITY_HOST``."""
        return f"{'https' if self._context else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> SilentEndpoint:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        with self._lock:
            held, threads = list(self._held), list(self._threads)
        for sock in held:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in threads:
            thread.join(timeout=5)
        assert not any(t.is_alive() for t in [self._acceptor, *threads]), "a SilentEndpoint thread did not stop"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._held.append(sock)
                thread = threading.Thread(target=self._hold, args=(sock,), name="silent-endpoint-conn", daemon=True)
                self._threads.append(thread)
            thread.start()

    def _hold(self, sock: socket.socket) -> None:
        """Read (and keep) the connection until the fake closes; never write a byte of HTTP."""
        try:
            if self._context is not None:
                sock.settimeout(5)
                sock = self._context.wrap_socket(sock, server_side=True)
                with self._lock:
                    self._held.append(sock)
            sock.settimeout(0.1)
            seen = b""
            while not self._stop.is_set():
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    return
                if b"\r\n" not in seen:  # no answer ever comes, so a connection carries one request
                    seen += data
                    if b"\r\n" in seen:
                        self.request_lines.append(seen.split(b"\r\n", 1)[0].decode("latin-1"))
        except (OSError, ssl.SSLError):
            return
