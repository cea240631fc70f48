"""Injected latency for the local workspace (``mlflow-azureml-registry local --latency MS[:JITTER]``).

On Azure, one control-plane request takes roughly 50-300 ms; on the local workspace a few milliseconds. What a user
waits for is then the number of requests that must happen one after another. With latency injected, every
control-plane answer (discovery, the registry's operation polls and data plane included) leaves ``ms`` milliseconds,
plus or minus up to ``jitter`` (uniform), after the request arrived; its effect on the service's state is immediate.
Blob requests (Azurite) get none: a delay per request needs the request's boundaries, which only an HTTP-aware proxy
sees, and the plugin's blob transfers are measured against MLflow's and raw azure-storage-blob's instead.
"""

from __future__ import annotations

import random
import re
import threading
from typing import Optional


class Latency:
    """``ms`` ± ``jitter`` milliseconds per answer; a seed makes the draws repeatable."""

    def __init__(self, ms: float, jitter: float = 0.0, *, seed: Optional[int] = None) -> None:
        if ms < 0 or jitter < 0 or jitter > ms:
            raise ValueError(f"latency must be >= 0 ms with 0 <= jitter <= latency, got {ms}:{jitter}")
        self.ms, self.jitter = float(ms), float(jitter)
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, spec: str, *, seed: Optional[int] = None) -> Latency:
        """``"100"`` or ``"100:20"`` (milliseconds). Raises ``ValueError`` with the expected form."""
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?::\s*(\d+(?:\.\d+)?)\s*)?", spec or "")
        if not match:
            raise ValueError(f"--latency takes MS or MS:JITTER in milliseconds (e.g. 100 or 100:20), not {spec!r}")
        return cls(float(match[1]), float(match[2] or 0), seed=seed)

    def seconds(self) -> float:
        """This answer's delay, in seconds."""
        if not self.jitter:
            return self.ms / 1000
        with self._lock:
            offset = self._random.uniform(-self.jitter, self.jitter)
        return (self.ms + offset) / 1000

    def __str__(self) -> str:
        return f"{self.ms:g} ms" + (f" ± {self.jitter:g} ms" if self.jitter else "")
