"""Test-only helpers: name resolution for ``*.localhost`` and a guard against off-loopback traffic.

Only tests import this. The Azure ML SDK uploads to ``https://<account>.blob.core.localhost:<port>``
and ``*.localhost`` does not resolve everywhere, so tests resolve it in-process. The plugin never
needs this: it takes the storage account URL from ``MLFLOW_AZUREML_STORAGE_ACCOUNT_URL``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any


def _is_localhost_name(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    return isinstance(host, str) and (host == "localhost" or host.rstrip(".").endswith(".localhost"))


@contextlib.contextmanager
def resolve_localhost() -> Iterator[None]:
    """Within the block, ``getaddrinfo`` answers 127.0.0.1 for ``localhost`` and ``*.localhost``."""
    original = socket.getaddrinfo

    def getaddrinfo(
        host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> Any:  # noqa: A002
        if _is_localhost_name(host):
            return original("127.0.0.1", port, socket.AF_INET, type, proto, flags)
        return original(host, port, family, type, proto, flags)

    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = original


class OffLoopbackConnection(OSError):
    """Raised instead of connecting anywhere but the loopback interface."""


def _loopback(address: Any) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths and the like
        return True
    try:
        return ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback
    except ValueError:
        return _is_localhost_name(address[0])


@contextlib.contextmanager
def loopback_only() -> Iterator[list[Any]]:
    """Within the block, a TCP/UDP connect to a non-loopback address raises :class:`OffLoopbackConnection`
    (the managed-identity endpoint 169.254.169.254 included). Yields the refused addresses."""
    refused: list[Any] = []
    original_connect, original_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
            refused.append(address)
            raise OffLoopbackConnection(f"test tried to connect off loopback: {address!r}")
        return original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
            refused.append(address)
            raise OffLoopbackConnection(f"test tried to connect off loopback: {address!r}")
        return original_connect_ex(self, address)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex  # type: ignore[method-assign]
    try:
        yield refused
    finally:
        socket.socket.connect, socket.socket.connect_ex = original_connect, original_connect_ex  # type: ignore[method-assign]
