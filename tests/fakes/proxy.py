"""A loopback HTTPS proxy (HTTP ``CONNECT`` tunnels), recording where each tunnel went.

Corporate networks reach Azure through such a proxy, named by ``HTTPS_PROXY``; the test that uses it
checks that the plugin's control-plane and blob requests both go through it, and that ``NO_PROXY``
exempts hosts, as requests does.
"""

from __future__ import annotations

import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Tunnel(BaseHTTPRequestHandler):
    server: TunnelProxy

    def do_CONNECT(self) -> None:  # noqa: N802 - the HTTP method's name
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
        except OSError:
            self.send_error(502)
            return
        with self.server.lock:
            self.server.tunnels.append(self.path)
        self.send_response(200, "Connection established")
        self.end_headers()
        sockets = [self.connection, upstream]
        try:
            while True:
                readable, _, _ = select.select(sockets, [], [], 30)
                if not readable:
                    return
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is self.connection else self.connection).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


class TunnelProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Tunnel)
        self.lock = threading.Lock()
        self.tunnels: list[str] = []  # "host:port" of every CONNECT
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> TunnelProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
