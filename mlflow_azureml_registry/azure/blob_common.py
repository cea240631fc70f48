"""What the blob modules share (:mod:`.blobs`, :mod:`.blob_upload`, :mod:`.blob_download`, :mod:`.blob_scan`):
request sizes, the ``Progress`` protocol a transfer reports through, the mapping of azure-storage-blob's errors to
the gateway's typed errors, and the bounded thread pool transfers run on.
"""

from __future__ import annotations

from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from typing import Any, Callable, Protocol

from azure.core.exceptions import AzureError

from .errors import AzureMLError, NotFound, StorageForbidden, Unauthenticated

BLOCK_SIZE = 4 * 1024 * 1024
"""Files up to this size move in one request each (the client's single-put size); larger ones in blocks/ranges."""
UPLOAD_BLOCK_SIZE = 16 * 1024 * 1024
DOWNLOAD_RANGE_SIZE = 16 * 1024 * 1024
"""Per-request sizes of large files. Each request costs the storage service and the client about as much as a
few MiB of data, so 16 MiB needs a quarter of the requests of 4 MiB. Uploads stage blocks with the whole
transfer concurrency (8 by default): their reading thread only checks a CRC-32 (the SHA-256 came from the
hashing read, :mod:`..content`), and against Azurite on disk 8 x 16 MiB took 3.65-3.92 s for 1 GiB where
4 x 16 took 3.80-4.17 and 8 x 32 3.92-4.24 (interleaved rounds, 2026-11-30). Downloads fetch ranges with
half of it (4): they hash every byte as it arrives, and 8 x 16 MiB was no faster beyond the noise while its
peak RSS grew by about 128 MiB. Memory: about (workers + 1) x 16 MiB for uploads, twice workers x 16 MiB
for downloads (the SDK joins a range's pieces)."""


class Progress(Protocol):
    """What a transfer reports as it goes (``progress.TransferProgress`` shows it as MLflow's bars); called from
    worker threads."""

    def file_done(self) -> None: ...

    def large_file(self, name: str, size: int) -> AbstractContextManager[Callable[[int], None]]: ...


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
        cls = StorageForbidden
    elif status == 401:
        cls = Unauthenticated
    return cls(f"{what} failed: {message}", status=status, code=code, request_id=request_id)


def run_parallel(fn: Callable[[Any], Any], items: list[Any], workers: int) -> None:
    """``fn(item)`` for every item, on up to ``workers`` threads (in this thread when one would do); the first
    failure cancels the items not started and is raised."""
    if not items:
        return
    if workers == 1 or len(items) == 1:
        for item in items:
            fn(item)
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        futures = [pool.submit(fn, item) for item in items]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in done:
            future.result()  # raises the first failure
