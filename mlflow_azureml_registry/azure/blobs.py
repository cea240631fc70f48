"""Blob transfers for model folders: parallel, bounded memory, upload marker written last.

Uses azure-storage-blob directly. Upload folders follow the Azure ML SDK's layout and completion
marker (metadata ``upload_status=completed`` on the first file in sorted order), so a half-finished
upload is never mistaken for a complete one and either tool reuses the other's complete uploads.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError

from .errors import AzureMLError, Forbidden, IntegrityError, NotFound, Unauthenticated, UnsafeBlobName

UPLOAD_CONFIRMATION = {"upload_status": "completed"}
BLOCK_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True)
class BlobEntry:
    name: str  # full blob name
    size: int


def storage_error(exc: AzureError, what: str) -> AzureMLError:
    """Map an azure-storage-blob exception to the gateway's typed errors (no SDK text beyond the message)."""
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    request_id = response.headers.get("x-ms-request-id") if response is not None else None
    code = getattr(exc, "error_code", None)
    message = (getattr(exc, "reason", None) or getattr(exc, "message", None) or type(exc).__name__).splitlines()[0]
    cls: type[AzureMLError] = AzureMLError
    if status == 404:
        cls = NotFound
    elif status == 403:
        cls = Forbidden
    elif status == 401:
        cls = Unauthenticated
    return cls(f"{what} failed: {message}", status=status, code=code, request_id=request_id)


class BlobFolder:
    """One container in a storage account, as seen by the plugin."""

    def __init__(self, container_client: Any, *, concurrency: int = 8) -> None:
        self._container = container_client
        self._concurrency = max(1, concurrency)

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
        files: Iterable[tuple[Path, str, int]],
        *,
        progress: Optional[Callable[[int], None]] = None,
    ) -> int:
        """Upload ``(local path, blob name, size)`` items in parallel; return the number of requests' files.

        Stops at the first failure and raises it; nothing marks the folder complete in that case.
        """
        items = list(files)
        if not items:
            return 0
        big = [i for i in items if i[2] > BLOCK_SIZE]
        small = [i for i in items if i[2] <= BLOCK_SIZE]
        # Large files: one at a time, each split into blocks sent by all workers (bounded memory:
        # about concurrency x block size). Small files: one worker per file.
        for path, name, size in big:
            self._upload_one(path, name, size, self._concurrency)
            if progress:
                progress(size)
        self._run_parallel(
            lambda item: (self._upload_one(item[0], item[1], item[2], 1), progress and progress(item[2])),
            small,
        )
        return len(items)

    def _upload_one(self, path: Path, blob_name: str, size: int, concurrency: int) -> None:
        blob = self._container.get_blob_client(blob_name)
        try:
            with open(path, "rb") as stream:
                blob.upload_blob(stream, length=size, overwrite=True, max_concurrency=concurrency)
        except AzureError as exc:
            raise storage_error(exc, f"upload of {blob_name!r}") from None

    def upload_bytes(self, blob_name: str, data: bytes, *, overwrite: bool = True) -> None:
        """Write a small blob; with ``overwrite=False`` an existing blob is left as it is (one request either way)."""
        try:
            self._container.get_blob_client(blob_name).upload_blob(data, overwrite=overwrite)
        except ResourceExistsError:
            if overwrite:
                raise
        except AzureError as exc:
            raise storage_error(exc, f"upload of {blob_name!r}") from None

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
        progress: Optional[Callable[[int], None]] = None,
    ) -> None:
        """Download ``(blob name, size, local path)`` items in parallel (large ones block-parallel).

        With ``expected_sha256`` (blob name -> digest), every file is checked: small files as they
        stream, large (block-parallel) ones right after; a mismatch deletes the file and raises.
        """
        items = list(items)
        expected = expected_sha256 or {}
        big = [i for i in items if i[1] > BLOCK_SIZE]
        small = [i for i in items if i[1] <= BLOCK_SIZE]
        for name, size, dest in big:
            self._download_one(name, dest, self._concurrency, expected.get(name))
            if progress:
                progress(size)

        def download_small(item: tuple[str, int, Path]) -> None:
            self._download_one(item[0], item[2], 1, expected.get(item[0]))
            if progress:
                progress(item[1])

        self._run_parallel(download_small, small)

    def _download_one(self, blob_name: str, dest: Path, concurrency: int, sha256: Optional[str]) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            downloader = self._container.get_blob_client(blob_name).download_blob(max_concurrency=concurrency)
            with open(dest, "wb") as handle:
                if sha256 is not None and concurrency == 1:
                    digest = hashlib.sha256()
                    for chunk in downloader.chunks():
                        digest.update(chunk)
                        handle.write(chunk)
                    actual = digest.hexdigest()
                else:
                    downloader.readinto(handle)
                    actual = _file_sha256(dest) if sha256 is not None else None
        except AzureError as exc:
            raise storage_error(exc, f"download of {blob_name!r}") from None
        if sha256 is not None and actual != sha256:
            dest.unlink(missing_ok=True)
            raise IntegrityError(
                f"Integrity check failed for {blob_name!r}: its SHA-256 is {actual}, the registered version's "
                f"manifest says {sha256}. The file was changed after registration; it was not kept."
            )

    def _run_parallel(self, fn: Callable[[Any], Any], items: list[Any]) -> None:
        if not items:
            return
        if self._concurrency == 1 or len(items) == 1:
            for item in items:
                fn(item)
            return
        with ThreadPoolExecutor(max_workers=min(self._concurrency, len(items))) as pool:
            futures = [pool.submit(fn, item) for item in items]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
            for future in done:
                future.result()  # raises the first failure


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def safe_join(root: Path, relative: str) -> Path:
    """``root / relative``, refusing names that would land outside ``root`` (``..``, absolute paths)."""
    normalized = posixpath.normpath(relative.replace("\\", "/"))
    drive = len(normalized) > 1 and normalized[1] == ":"
    if normalized.startswith("/") or normalized == ".." or normalized.startswith("../") or drive:
        raise UnsafeBlobName(f"Refusing blob path {relative!r}: it would be written outside {root}")
    target = (root / normalized).resolve()
    root_resolved = root.resolve()
    if target != root_resolved and root_resolved not in target.parents:
        raise UnsafeBlobName(f"Refusing blob path {relative!r}: it would be written outside {root}")
    return Path(os.fspath(target))
