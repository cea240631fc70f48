"""A per-model lock among this plugin's clients: a blob lease in the workspace's default blob store.

The Azure ML REST API has no conditional writes (no ETag / If-Match on model containers or versions),
so two clients that read-modify-write the same model can overwrite each other, and two registrations
can race for one version number. Every client of this plugin holds the model's lease while it does
that; the lease is Azure Storage's own mutual exclusion (``409 LeaseAlreadyPresent`` for everyone
else) and expires by itself if its holder dies. Clients that are not this plugin (the Azure ML CLI,
Studio, the SDK) do not take it: the create protocol's verification still guards against them.

When the lease cannot be used at all (no storage permission, storage unreachable) the write goes on
without it, with a warning: a tag update must not fail because blob storage is down.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from types import TracebackType
from typing import Any, Optional

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError

from .errors import ServiceUnavailable

_logger = logging.getLogger(__name__)

LEASE_DATASTORE = "workspaceblobstore"
LEASE_PREFIX = "mlflow-azureml-registry/leases/"
LEASE_DURATION_S = 60  # the longest finite lease Azure Storage grants (15-60 s)
RENEW_AFTER_S = 30.0
WAIT_S = 120.0
MAX_POLL_S = 0.2
"""The longest pause between two tries for a taken lease (they start at 0.02 s and grow by half each time)."""


_local_locks: dict[tuple[str, str], threading.Lock] = {}
_local_guard = threading.Lock()


def _local_lock(container_client: Optional[Any], model_name: str) -> threading.Lock:
    """This process's lock for one model's lease: threads of one process (an ``mlflow server`` worker) wait for it,
    and only its holder asks storage for the lease, instead of each polling the blob."""
    where = str(getattr(container_client, "url", "") or "")
    with _local_guard:
        return _local_locks.setdefault((where, model_name), threading.Lock())


class ModelLease:
    """``with gateway.model_lease(name):`` — hold the model's lease for the block (or go on without it)."""

    def __init__(self, container_client: Optional[Any], model_name: str, *, wait_s: float = WAIT_S) -> None:
        self._container = container_client  # None: the datastore could not be reached; no lease
        self._local = _local_lock(container_client, model_name)
        self._local_held = False
        self.model_name = model_name
        self.blob_name = f"{LEASE_PREFIX}{model_name}"
        self._wait_s = wait_s
        self._lease: Any = None
        self._acquired_at = 0.0
        self._created = False  # this client made the lease blob (the model may not even exist)

    @property
    def held(self) -> bool:
        return self._lease is not None

    def __enter__(self) -> ModelLease:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.release()

    @classmethod
    def unavailable(cls, model_name: str, exc: Exception) -> ModelLease:
        """A lease that will not be held, because the datastore itself could not be reached."""
        lease = cls(None, model_name)
        lease._without_lease(exc)
        return lease

    def acquire(self) -> None:
        from azure.storage.blob import BlobLeaseClient

        deadline = time.monotonic() + self._wait_s
        if not self._local.acquire(timeout=self._wait_s):
            raise self._busy()
        self._local_held = True
        try:
            self._acquire_blob(BlobLeaseClient, deadline)
        except BaseException:
            self._release_local()  # the caller releases nothing when acquire raises
            raise

    def _acquire_blob(self, BlobLeaseClient: Any, deadline: float) -> None:  # noqa: N803 - the class, imported late
        if self._container is None:
            return
        blob = self._container.get_blob_client(self.blob_name)
        pause = 0.02
        while True:
            lease = BlobLeaseClient(blob)
            try:
                lease.acquire(lease_duration=LEASE_DURATION_S)
            except ResourceNotFoundError:
                self._create(blob)
                continue
            except HttpResponseError as exc:
                if exc.status_code != 409:
                    return self._without_lease(exc)
                if time.monotonic() >= deadline:
                    self._release_local()
                    raise self._busy() from None
                time.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 1.5, MAX_POLL_S)
                continue
            except AzureError as exc:
                return self._without_lease(exc)
            self._lease, self._acquired_at = lease, time.monotonic()
            return

    def _busy(self) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"Another client has held the write lease of model {self.model_name!r} for over "
            f"{self._wait_s:.0f} s (blob {self.blob_name!r} in {LEASE_DATASTORE}). Try again; a "
            f"crashed client's lease expires within {LEASE_DURATION_S} s."
        )

    def _release_local(self) -> None:
        if self._local_held:
            self._local_held = False
            self._local.release()

    def _create(self, blob: Any) -> None:
        # Another client may have created it first (and may hold a lease on it already).
        with contextlib.suppress(ResourceExistsError):
            blob.upload_blob(b"", overwrite=False)
            self._created = True

    def _without_lease(self, exc: Exception) -> None:
        _logger.warning(
            "Could not take the write lease of model %r (%s); going on without it. Concurrent writes by other "
            "clients to this model may overwrite each other.",
            self.model_name,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )

    def keep(self) -> None:
        """Renew the lease when half its time is gone (call between steps of a long critical section)."""
        if self._lease is None or time.monotonic() - self._acquired_at < RENEW_AFTER_S:
            return
        try:
            self._lease.renew()
            self._acquired_at = time.monotonic()
        except AzureError as exc:
            self._lease = None
            self._without_lease(exc)

    def release(self, *, model_missing: bool = False) -> None:
        """Give the lease back. ``model_missing``: the write found nothing to write to (no such model or
        version), so a lease blob this client made is deleted instead: a mistyped name leaves nothing behind."""
        lease, self._lease = self._lease, None
        if lease is None:
            self._release_local()
            return
        try:
            if model_missing and self._created:
                self._container.get_blob_client(self.blob_name).delete_blob(lease=lease)
            else:
                lease.release()
        except AzureError as exc:  # it expires by itself
            _logger.info("Could not release the write lease of model %r: %s", self.model_name, exc)
        finally:
            self._release_local()

