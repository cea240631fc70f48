"""What storage gc needs from a datastore's container: listings with what each blob is (size, last change, ETag,
metadata, lease), and writes that happen only to a blob still as it was listed (``If-Match`` on its ETag).

azure-storage-blob pages the listings itself (``ItemPaged``, up to 5,000 blobs a page); nothing here follows
continuation markers by hand. Failures are the gateway's typed errors (:func:`.blob_common.storage_error`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

from .blob_common import storage_error

HELD_LEASE_STATES = ("leased", "breaking")
"""Azure Storage's lease states in which a blob's lease is still held (``available``, ``expired`` and ``broken``
are free): the ``x-ms-lease-state`` values of Get Blob Properties and List Blobs (Storage REST reference)."""


@dataclass(frozen=True)
class StoredBlob:
    """One blob as listed: ``last_modified`` in epoch seconds (the service's clock, 1 s resolution), ``etag``
    without quotes."""

    name: str
    size: int
    last_modified: float
    etag: str
    metadata: dict[str, str] = field(default_factory=dict)


def list_blobs(container_client: Any, prefix: str) -> Iterator[StoredBlob]:
    """Every blob whose name starts with ``prefix`` (recursive), with its metadata: one List Blobs request per
    5,000 blobs, paged by azure-storage-blob. Raises the gateway's typed errors."""
    try:
        for blob in container_client.list_blobs(name_starts_with=prefix, include=["metadata"]):
            yield StoredBlob(
                name=blob.name,
                size=int(blob.size or 0),
                last_modified=blob.last_modified.timestamp(),
                etag=_bare(blob.etag),
                metadata=dict(blob.metadata or {}),
            )
    except AzureError as exc:
        raise storage_error(exc, f"listing blobs under {prefix!r}") from None


def held_leases(container_client: Any, prefix: str) -> list[str]:
    """Names of the blobs under ``prefix`` whose lease is held right now (one listing; the lease state comes with
    every listed blob). Raises the gateway's typed errors."""
    try:
        return [
            blob.name
            for blob in container_client.list_blobs(name_starts_with=prefix)
            if getattr(blob.lease, "state", None) in HELD_LEASE_STATES
        ]
    except AzureError as exc:
        raise storage_error(exc, f"listing leases under {prefix!r}") from None


def set_metadata_if_unchanged(container_client: Any, blob: StoredBlob, metadata: dict[str, str]) -> Optional[str]:
    """Replace ``blob``'s metadata with ``metadata`` only if the blob is still the one listed (its ETag): its new
    ETag, or None when it changed or is gone since (412/404; nothing written). Other failures raise."""
    outcome, answer = _unless_changed(
        lambda: container_client.get_blob_client(blob.name).set_blob_metadata(
            metadata, etag=blob.etag, match_condition=MatchConditions.IfNotModified
        ),
        f"setting metadata of blob {blob.name!r}",
    )
    return _bare(answer.get("etag")) if outcome == _WRITTEN else None


def _bare(etag: Any) -> str:
    """An ETag as List Blobs gives it: without the quotes response headers put around it (both forms are accepted
    in ``If-Match``; Azurite checked), so the ETags of a listing and of a write compare."""
    return str(etag or "").strip('"')


DELETED, CHANGED, GONE = "deleted", "changed", "gone"
_WRITTEN = "written"


def delete_if_unchanged(container_client: Any, name: str, etag: str) -> str:
    """Delete blob ``name`` (and its snapshots) only if its ETag is still ``etag``: :data:`DELETED`;
    :data:`CHANGED` when it was written since (412, also a blob under a lease: nothing deleted); :data:`GONE` when
    it no longer exists. Other failures raise the gateway's typed errors."""
    outcome, _ = _unless_changed(
        lambda: container_client.get_blob_client(name).delete_blob(
            delete_snapshots="include", etag=etag, match_condition=MatchConditions.IfNotModified
        ),
        f"deleting blob {name!r}",
    )
    return DELETED if outcome == _WRITTEN else outcome


def _unless_changed(write: Callable[[], Any], what: str) -> tuple[str, Any]:
    """Send a write conditional on an ETag (``If-Match``): (``_WRITTEN``, the answer); (:data:`CHANGED`, None) when
    the blob was written since (412); (:data:`GONE`, None) when it no longer exists (404). Other failures raise the
    gateway's typed errors, naming ``what``."""
    try:
        return _WRITTEN, write()
    except ResourceNotFoundError:
        return GONE, None
    except HttpResponseError as exc:
        if exc.status_code == 412:
            return CHANGED, None
        raise storage_error(exc, what) from None
    except AzureError as exc:
        raise storage_error(exc, what) from None
