"""Count HTTP requests by destination, client side (blob requests) — benchmark and test instrumentation only."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlparse


@contextlib.contextmanager
def count_requests() -> Iterator[Counter]:
    """Within the block, count requests azure-core's requests transport sends, keyed by ``host:port``."""
    from azure.core.pipeline.transport import RequestsTransport

    counts: Counter = Counter()
    lock = threading.Lock()
    original = RequestsTransport.send

    def send(self, request, **kwargs):
        parts = urlparse(request.url)
        with lock:
            counts[f"{parts.hostname}:{parts.port}"] += 1
        return original(self, request, **kwargs)

    RequestsTransport.send = send
    try:
        yield counts
    finally:
        RequestsTransport.send = original
