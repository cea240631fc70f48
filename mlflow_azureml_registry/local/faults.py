"""Control-plane fault injection for the local workspace (``mlflow-azureml-registry local --fault-rate R``).

A share ``rate`` of requests gets one fault, drawn evenly from :data:`KINDS`:

- ``throttle``: 429 ``TooManyRequests`` with ``Retry-After`` (the service did nothing);
- ``unavailable``: 500 or 503 (the service did nothing);
- ``drop``: the connection closes before the request is dispatched (nothing happened);
- ``lost``: the request is dispatched, then the connection closes instead of the answer, so a write
  happened that the client never hears of. This is the fault that makes retried PUTs dangerous.

The injector plugs into the server's :class:`~.server.Interceptor` seam; it keeps counters so a test
can show which faults it survived. A seed makes a run repeatable (given the same request order).
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from typing import Optional

from .handlers import Request, Response

KINDS = ("throttle", "unavailable", "drop", "lost")
DROP = -1
"""Status of the marker response that tells the server to close the connection without dispatching."""


class FaultInjector:
    """Answers a share of control-plane requests with a fault; see the module docstring."""

    def __init__(
        self,
        rate: float,
        *,
        seed: Optional[int] = None,
        kinds: tuple[str, ...] = KINDS,
        retry_after_s: int = 1,
    ) -> None:
        if not 0 <= rate <= 1:
            raise ValueError(f"fault rate must be between 0 and 1, got {rate}")
        unknown = set(kinds) - set(KINDS)
        if unknown or not kinds:
            raise ValueError(f"fault kinds must be among {KINDS}, got {kinds}")
        self.rate = rate
        self.kinds = tuple(kinds)
        self.retry_after_s = retry_after_s
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._lost: set[int] = set()

    def _draw(self) -> Optional[str]:
        with self._lock:
            self.requests += 1
            if self._random.random() >= self.rate:
                return None
            kind = self._random.choice(self.kinds)
            self.injected[kind] += 1
            return kind

    def before(self, request: Request) -> Optional[Response]:
        kind = self._draw()
        if kind == "throttle":
            retry_after = {"Retry-After": str(self.retry_after_s)}
            return _error(429, "TooManyRequests", "Too many requests (injected).", retry_after)
        if kind == "unavailable":
            status = 503 if self._random.random() < 0.5 else 500
            code = "ServiceUnavailable" if status == 503 else "InternalServerError"
            return _error(status, code, "The service is unavailable (injected).", {})
        if kind == "drop":
            return Response(DROP)
        if kind == "lost":
            with self._lock:
                self._lost.add(id(request))
        return None

    def after(self, request: Request, response: Response) -> bool:
        with self._lock:
            if id(request) in self._lost:
                self._lost.discard(id(request))
                return False
        return True

    def summary(self) -> str:
        with self._lock:
            parts = ", ".join(f"{k} {self.injected[k]}" for k in self.kinds)
            return f"{sum(self.injected.values())} faults in {self.requests} requests ({parts})"


def _error(status: int, code: str, message: str, headers: dict[str, str]) -> Response:
    body = {"error": {"code": code, "message": message, "details": [], "additionalInfo": []}}
    return Response(
        status,
        body,
        {"x-ms-response-type": "error", "x-ms-request-id": str(uuid.uuid4()), **headers},
    )
