"""Blob transfers for model folders: parallel, bounded memory, upload marker written last.

Uses azure-storage-blob directly. Upload folders follow the Azure ML SDK's layout and completion
marker (metadata ``upload_status=completed`` on the first file in sorted order), so a half-finished
upload is never mistaken for a complete one and either tool reuses the other's complete uploads.

:class:`BlobFolder` is the gateway's one view of a container: listings, small reads and writes, the completion
marker here; the transfers of many files in :mod:`.blob_upload` and :mod:`.blob_download`; what they share in
:mod:`.blob_common`. The names callers import stay importable from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError

from . import blob_download, blob_upload
from .blob_common import BLOCK_SIZE, DOWNLOAD_RANGE_SIZE, UPLOAD_BLOCK_SIZE, Progress, storage_error
from .blob_download import Destination
from .blob_upload import UploadItem
from .errors import AzureMLError, IntegrityError, UnsafeBlobName

__all__ = [
    "BLOCK_SIZE",
    "DOWNLOAD_RANGE_SIZE",
    "UPLOAD_BLOCK_SIZE",
    "UPLOAD_CONFIRMATION",
    "BlobEntry",
    "BlobFolder",
    "Destination",
    "IntegrityError",
    "Progress",
    "UnsafeBlobName",
    "UploadItem",
    "storage_error",
]

UPLOAD_CONFIRMATION = {"upload_status": "completed"}


@dataclass(frozen=True)
class BlobEntry:
    name: str  # full blob name
    size: int


class BlobFolder:
    """One container in a storage account, as seen by the plugin."""

    def __init__(self, container_client: Any, *, concurrency: int = 8) -> None:
        self._container = container_client
        self._concurrency = max(1, concurrency)
        self._upload_block_workers = max(1, concurrency)  # see UPLOAD_BLOCK_SIZE
        self._download_range_workers = max(1, concurrency // 2)

    @property
    def url(self) -> str:
        return self._container.url

    # -- upload -------------------------------------------------------------------------------------
    def is_complete(self, blob_name: str) -> bool:
        """True when ``blob_name`` exists and carries the completion marker."""
        try:
            props = self._container.get_blob_client(blob_name).get_blob_properties()
        except ResourceNotFoundError:
            return False
        except AzureError as exc:
            raise storage_error(exc, f"HEAD blob {blob_name!r}") from None
        metadata = props.metadata or {}
        return all(metadata.get(k) == v for k, v in UPLOAD_CONFIRMATION.items())

    def upload_files(
        self,
        files: Iterable[UploadItem],
        *,
        progress: Optional[Progress] = None,
    ) -> dict[str, str]:
        """Upload files in parallel; return blob name -> SHA-256 of the bytes sent. A file that changed since it
        was listed raises :class:`IntegrityError`; nothing marks the folder complete (:func:`.blob_upload.upload_files`,
        with this folder's worker counts)."""
        return blob_upload.upload_files(
            self._container,
            files,
            concurrency=self._concurrency,
            block_workers=self._upload_block_workers,
            progress=progress,
        )

    def upload_bytes(self, blob_name: str, data: bytes, *, overwrite: bool = True) -> None:
        """Write a small blob; with ``overwrite=False`` an existing blob is left as it is (one request either way)."""
        try:
            self._container.get_blob_client(blob_name).upload_blob(data, overwrite=overwrite)
        except ResourceExistsError:
            if overwrite:
                raise
        except AzureError as exc:
            raise storage_error(exc, f"upload of {blob_name!r}") from None

    def delete(self, blob_name: str) -> None:
        """Delete one blob; one already gone is what was asked."""
        try:
            self._container.get_blob_client(blob_name).delete_blob()
        except ResourceNotFoundError:
            pass
        except AzureError as exc:
            raise storage_error(exc, f"deleting blob {blob_name!r}") from None

    def mark_complete(self, blob_name: str, metadata: dict[str, str]) -> None:
        try:
            self._container.get_blob_client(blob_name).set_blob_metadata({**metadata, **UPLOAD_CONFIRMATION})
        except AzureError as exc:
            raise storage_error(exc, f"marking upload complete on {blob_name!r}") from None

    # -- read ---------------------------------------------------------------------------------------
    def list(self, prefix: str) -> Iterator[BlobEntry]:
        """Every blob under ``prefix/`` (recursive)."""
        start = prefix.rstrip("/") + "/" if prefix else ""
        try:
            for blob in self._container.list_blobs(name_starts_with=start):
                yield BlobEntry(blob.name, blob.size)
        except AzureError as exc:
            raise storage_error(exc, f"listing blobs under {start!r}") from None

    def list_names(self, prefix: str) -> Iterator[str]:
        """Every blob name under ``prefix/`` (recursive): a listing without sizes parses several times faster."""
        start = prefix.rstrip("/") + "/" if prefix else ""
        try:
            yield from self._container.list_blob_names(name_starts_with=start)
        except AzureError as exc:
            raise storage_error(exc, f"listing blobs under {start!r}") from None

    def walk(self, prefix: str) -> Iterator[tuple[str, Optional[int]]]:
        """One level under ``prefix/``: (name, size) for blobs, (name ending in '/', None) for folders."""
        start = prefix.rstrip("/") + "/" if prefix else ""
        try:
            for item in self._container.walk_blobs(name_starts_with=start, delimiter="/"):
                size = getattr(item, "size", None)
                if item.name.endswith("/"):
                    yield item.name, None
                else:
                    yield item.name, size
        except AzureError as exc:
            raise storage_error(exc, f"listing blobs under {start!r}") from None

    def read(self, blob_name: str, *, limit: int = 16 * 1024 * 1024) -> Optional[bytes]:
        """A small blob's bytes (e.g. ``MLmodel``), or None when it does not exist."""
        try:
            downloader = self._container.get_blob_client(blob_name).download_blob()  # one GET for small blobs
            if downloader.size > limit:
                raise AzureMLError(f"Blob {blob_name!r} is larger than {limit} bytes")
            return downloader.readall()
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise storage_error(exc, f"reading blob {blob_name!r}") from None

    def download_files(
        self,
        items: Iterable[tuple[str, int, Path]],
        *,
        expected_sha256: Optional[dict[str, str]] = None,
        progress: Optional[Progress] = None,
    ) -> None:
        """Download ``(blob name, size, local path)`` items in parallel (large ones in parallel ranges), each checked
        against ``expected_sha256`` (blob name -> digest) when given (:func:`.blob_download.download_files`, with
        this folder's worker counts)."""
        blob_download.download_files(
            self._container,
            items,
            concurrency=self._concurrency,
            range_workers=self._download_range_workers,
            expected_sha256=expected_sha256,
            progress=progress,
        )
