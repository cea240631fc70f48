"""The write lock of a registry model: exclusive among the processes of this machine and the threads of each.

Workspaces serialise writes to a model with a blob lease in their datastore (:mod:`.leases`); an Azure ML registry
has no storage of its own that every client can reach, and the REST API has no conditional writes. A file lock
(``flock``) on a file named after the registry and the model keeps apart the workers of one ``mlflow server``
(MLflow 3 starts 4 by default) and every process of one user on one machine. Writers on other machines are not
kept apart: there, two read-modify-writes of one model at the same moment can lose one of them (docs/design.md,
*Registries*). Where ``fcntl`` does not exist (Windows), only the threads of a process are kept apart.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from typing import Any, Optional

from .. import settings
from .errors import ServiceUnavailable

_logger = logging.getLogger(__name__)

WAIT_S = 120.0
_thread_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def lock_directory() -> str:
    """``$MLFLOW_AZUREML_LOCK_DIR``, else ``<temp>/mlflow-azureml-registry-<uid>/locks`` (private to the user)."""
    configured = os.environ.get(settings.LOCK_DIR)
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    path = configured or os.path.join(tempfile.gettempdir(), f"mlflow-azureml-registry-{uid}", "locks")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


class HostLease:
    """``acquire``/``keep``/``release`` as :class:`.leases.ModelLease`, for one registry model."""

    def __init__(self, registry: str, model_name: str, *, wait_s: float = WAIT_S) -> None:
        self.model_name = model_name
        self._key = hashlib.sha256(f"{registry.lower()}\0{model_name}".encode()).hexdigest()[:40]
        with _guard:
            self._thread_lock = _thread_locks.setdefault(self._key, threading.Lock())
        self._wait_s = wait_s
        self._file: Optional[Any] = None
        self._held = False

    def acquire(self) -> None:
        if not self._thread_lock.acquire(timeout=self._wait_s):
            raise self._busy()
        self._held = True
        try:
            import fcntl
        except ImportError:  # Windows: the thread lock only
            return
        try:
            handle = open(os.path.join(lock_directory(), f"{self._key}.lock"), "a+b")  # noqa: SIM115 - held
        except OSError as exc:
            _logger.warning("Could not open the write lock of model %r (%s); going on with this process's lock only",
                            self.model_name, exc)
            return
        deadline = time.monotonic() + self._wait_s
        pause = 0.01
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._file = handle
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    self.release()
                    raise self._busy() from None
                time.sleep(pause)
                pause = min(pause * 1.5, 0.2)

    def _busy(self) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"Another writer on this machine has held the write lock of registry model {self.model_name!r} for over "
            f"{self._wait_s:.0f} s. Try again."
        )

    def keep(self) -> None:
        """Nothing to renew: the lock is held until released (or the process ends)."""

    def release(self, *, model_missing: bool = False) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            try:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            finally:
                handle.close()
        if self._held:
            self._held = False
            self._thread_lock.release()

    def __enter__(self) -> HostLease:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
