"""The HTTPS server in front of the router: TLS, keep-alive, request ids, the request log.

A ``ThreadingHTTPServer`` (one daemon thread per connection, HTTP/1.1 keep-alive). The TLS handshake
runs in the connection's thread, so a stuck client cannot block ``accept``. :class:`Interceptor` is
the seam for fault injection: it may answer instead of the service (429, 503, ...) before a request
is dispatched, or drop the connection after the service has acted (a response lost on the wire).
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from .handlers import Request, Response
from .routing import Outcome, Router

log = logging.getLogger(__name__)
_JSON = "application/json; charset=utf-8"  # recorded on ARM answers, errors included


class Interceptor(Protocol):
    """Fault-injection seam (see :mod:`.faults`); the default lets everything through."""

    def before(self, request: Request) -> Optional[Response]:
        """A response to send instead of dispatching (e.g. 429 + ``Retry-After``), or None.

        A response with a negative status closes the connection without dispatching or answering.
        """

    def after(self, request: Request, response: Response) -> bool:
        """False drops the connection without answering, after the state has changed."""


class PassThrough:
    def before(self, request: Request) -> Optional[Response]:
        return None

    def after(self, request: Request, response: Response) -> bool:
        return True


class RequestLog:
    """Records of control-plane requests, in arrival order; optionally appended to a JSON-lines file."""

    def __init__(self, path: Optional[str] = None) -> None:
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        self._file = Path(path).open("a", encoding="utf-8") if path else None  # noqa: SIM115 - closed in close()

    def begin(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append a record at arrival (so the list is in arrival order); :meth:`finish` completes it."""
        with self._lock:
            self._records.append(record)
            return record

    def finish(self, record: dict[str, Any], **fields: Any) -> None:
        """Complete a record; the JSON line is written now (so the file is in completion order)."""
        with self._lock:
            record.update(fields)
            if self._file is not None:
                self._file.write(json.dumps(record) + "\n")
                self._file.flush()

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._records]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ControlPlaneServer
    timeout = 120  # idle keep-alive connections are closed after this

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes: without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every answer.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request.do_handshake()  # in this thread, not in accept()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._serve()

    do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _serve(self) -> None:
        started = time.perf_counter()
        request = self._read_request()
        srv = self.server
        record = srv.request_log.begin(
            # "at": arrival on time.perf_counter()'s clock, seconds; "ms" (when it ends): until the answer left
            {"method": request.method, "path": request.path, "query": request.query, "status": None,
             "at": round(started, 6)}
        )
        outcome = Outcome(srv.interceptor.before(request) or Response(0))
        if outcome.response.status < 0:  # the interceptor drops the connection before dispatch
            if srv.latency is not None:
                time.sleep(srv.latency.seconds())
            srv.request_log.finish(record, status=None, dropped=True, ms=_ms(started))
            self._drop()
            return
        if outcome.response.status == 0:
            outcome = srv.router.dispatch(request)
        response = outcome.response
        fields: dict[str, Any] = {
            "status": response.status,
            "operation": outcome.operation,
            "workspace": outcome.workspace,
        }
        if outcome.registry is not None:
            fields["registry"] = outcome.registry
        send = srv.interceptor.after(request, response)
        if not send:  # the state has changed, but the client never hears of it
            fields.update(status=None, dropped=True)
        latency = srv.latency
        if latency is not None:  # the answer leaves this long after the request arrived (its effect is immediate)
            time.sleep(max(0.0, latency.seconds() - (time.perf_counter() - started)))
        # completed before the answer leaves, so a client that has its answer also sees the record
        fields["ms"] = _ms(started)
        srv.request_log.finish(record, **fields)
        if send:
            self._write(request, response)
        else:
            self._drop()

    def _drop(self) -> None:
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _read_request(self) -> Request:
        parts = urlsplit(self.path)
        multi = parse_qs(parts.query, keep_blank_values=True)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = self._read_chunked()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        return Request(
            method=self.command,
            path=unquote(parts.path),
            query={k: v[-1] for k, v in multi.items()},
            query_multi=multi,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            base_url=f"https://{host}",
        )

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _write(self, request: Request, response: Response) -> None:
        payload = response.encoded()
        request_id = str(uuid.uuid4())
        self.send_response(response.status)
        headers = {
            "x-ms-request-id": request_id,
            "x-ms-correlation-request-id": request_id,
            "Cache-Control": "no-cache",
            **response.headers,
        }
        if response.body is not None:
            headers["Content-Type"] = _JSON
        headers["Content-Length"] = str(len(payload))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if request.method != "HEAD":
            self.wfile.write(payload)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


class ControlPlaneServer(ThreadingHTTPServer):
    """HTTPS on 127.0.0.1 only; ``port=0`` picks a free port."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        port: int,
        ssl_context: ssl.SSLContext,
        router: Router,
        request_log: RequestLog,
        interceptor: Optional[Interceptor] = None,
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.ssl_context = ssl_context
        self.router = router
        self.request_log = request_log
        self.interceptor: Interceptor = interceptor or PassThrough()
        self.latency: Optional[Any] = None  # a .latency.Latency: every answer's delay
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        return self.server_address[1]

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        return self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"azureml-local-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
