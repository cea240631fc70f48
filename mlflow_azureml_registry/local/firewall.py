"""A storage account whose firewall refuses this client: every blob request answered 403 ``AuthorizationFailure``.

Azure Storage applies an account's network rules ("Firewalls and virtual networks") before it looks at the
request's credential, and answers a client outside them, for any operation, with (recorded: Azure Storage
Explorer error reports, e.g. microsoft/AzureStorageExplorer#8769 and #9150)::

    403 This request is not authorized to perform this operation.
    x-ms-error-code: AuthorizationFailure       Content-Type: application/xml
    <?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationFailure</Code><Message>This request is not
    authorized to perform this operation.\\nRequestId:<id>\\nTime:<time></Message></Error>

Azurite has no network rules, so this stands in front of nothing: point ``MLFLOW_AZUREML_STORAGE_ACCOUNT_URL`` at
:attr:`RefusingStorage.account_url_template` and the workspace's datastores live behind a firewall. It serves
HTTPS with the local workspace's certificate (``LocalWorkspace.refusing_storage()``), on 127.0.0.1 only.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MESSAGE = "This request is not authorized to perform this operation."
CODE = "AuthorizationFailure"


def refusal_body(request_id: str, now: dt.datetime) -> bytes:
    """The XML error body Azure Storage sends with a firewall refusal."""
    when = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond * 10:07d}Z"
    return (
        '<?xml version="1.0" encoding="utf-8"?><Error><Code>'
        f"{CODE}</Code><Message>{MESSAGE}\nRequestId:{request_id}\nTime:{when}</Message></Error>"
    ).encode()


class _Refuse(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RefusingStorage
    timeout = 30

    def setup(self) -> None:
        super().setup()
        self.request.do_handshake()  # in this connection's thread, not in accept()

    def _refuse(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        with self.server.lock:
            self.server.refused.append(f"{self.command} {self.path.split('?', 1)[0]}")
        request_id = str(uuid.uuid4())
        body = refusal_body(request_id, dt.datetime.now(dt.timezone.utc))
        self.send_response(403, MESSAGE)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Server", "Microsoft-HTTPAPI/2.0")
        self.send_header("x-ms-request-id", request_id)
        self.send_header("x-ms-error-code", CODE)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _refuse  # noqa: N815 - http.server naming

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


class RefusingStorage(ThreadingHTTPServer):
    """HTTPS on 127.0.0.1 answering every request as a storage firewall that refuses the client (module docstring).

    Use as a context manager; :attr:`refused` lists ``"<METHOD> <path>"`` of each request refused."""

    daemon_threads = True

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Refuse)
        self.lock = threading.Lock()
        self.refused: list[str] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert_file), str(key_file))
        self._context = context
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        return self._context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:  # a client that hangs up is not an error
        pass

    @property
    def account_url_template(self) -> str:
        """For ``MLFLOW_AZUREML_STORAGE_ACCOUNT_URL``: path-style, as the local workspace's Azurite URL."""
        return f"https://127.0.0.1:{self.server_address[1]}/{{account}}"

    def __enter__(self) -> RefusingStorage:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
