"""Uploading a model's files to a container (:meth:`.blobs.BlobFolder.upload_files`): small files one request each
on parallel workers, large ones as blocks staged in parallel while the file is read in order, every file checked
against what was hashed when it was listed.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

from azure.core.exceptions import AzureError, HttpResponseError

from .blob_common import BLOCK_SIZE, UPLOAD_BLOCK_SIZE, Progress, run_parallel, storage_error
from .errors import IntegrityError


class UploadItem(NamedTuple):
    path: str | Path
    blob_name: str
    size: int
    sha256: Optional[str] = None  # when already known, the bytes sent must have it
    data: Optional[bytes] = None  # a small file's bytes, already read (and hashed): sent without reading the file
    crc32: Optional[int] = None  # with sha256: the CRC-32 of the bytes hashed; a large file's upload checks this


def upload_files(
    container: Any,
    files: Iterable[UploadItem],
    *,
    concurrency: int,
    block_workers: int,
    progress: Optional[Progress] = None,
) -> dict[str, str]:
    """Upload files to ``container`` (an azure-storage-blob ``ContainerClient``) in parallel; return blob name ->
    SHA-256 of the bytes sent.

    Small files (up to :data:`.blob_common.BLOCK_SIZE`) go on up to ``concurrency`` workers, one request each; large
    ones one at a time, their blocks staged by ``block_workers`` threads. Each file's SHA-256 is computed from the
    bytes as they are sent (no read of its own). A file whose size or known SHA-256 differs from what was read is an
    :class:`IntegrityError`: it changed since it was listed. Stops at the first failure and raises it (storage
    failures as the gateway's typed errors); nothing marks the folder complete.
    """
    items = [UploadItem(*i) for i in files]
    digests: dict[str, str] = {}
    # Large files: one at a time, their blocks sent in parallel (bounded memory: about
    # (workers + 1) x UPLOAD_BLOCK_SIZE). Small files: one worker per file, one request each.
    for item in items:
        if item.size > BLOCK_SIZE:
            if progress is None:
                digests[item.blob_name] = _upload_blocks(container, item, None, block_workers)
                continue
            with progress.large_file(str(item.path), item.size) as advance:
                digests[item.blob_name] = _upload_blocks(container, item, advance, block_workers)
            progress.file_done()

    def upload_small(item: UploadItem) -> None:
        digests[item.blob_name] = _upload_small(container, item)
        if progress:
            progress.file_done()

    run_parallel(upload_small, [i for i in items if i.size <= BLOCK_SIZE], concurrency)
    return digests


def _upload_small(container: Any, item: UploadItem) -> str:
    if item.data is not None and item.sha256 is not None:
        data, sha256 = item.data, item.sha256  # the bytes the caller hashed: nothing to read or check
    else:
        with open(item.path, "rb") as stream:
            data = stream.read(item.size + 1)
        sha256 = _checked_sha256(item, data, len(data))
    try:
        container.get_blob_client(item.blob_name).upload_blob(data, length=len(data), overwrite=True)
    except AzureError as exc:
        raise storage_error(exc, f"upload of {item.blob_name!r}") from None
    return sha256


def _upload_blocks(
    container: Any, item: UploadItem, progress: Optional[Callable[[int], None]], workers: int
) -> str:
    """Stage the file's blocks in parallel as it is read in order, then commit them.

    The bytes read are checked against the item: by CRC-32 when the caller gives it with the SHA-256 (they
    came from one read of the file: a different byte changes the CRC), else by SHA-256, computed here.
    """
    blob = container.get_blob_client(item.blob_name)
    # Block ids of one blob must all have the same length; a random prefix keeps this upload's apart.
    prefix = uuid.uuid4().hex[:16]
    by_crc = item.sha256 is not None and item.crc32 is not None
    digest = None if by_crc else hashlib.sha256()
    crc = 0
    block_ids: list[str] = []
    slots = threading.Semaphore(workers)
    failures: list[BaseException] = []

    def stage(block_id: str, data: bytes) -> None:
        try:
            if not failures:
                blob.stage_block(block_id, data, length=len(data))
                if progress:
                    progress(len(data))
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread below
            failures.append(exc)
        finally:
            slots.release()

    sent = 0
    with ThreadPoolExecutor(max_workers=workers) as pool, open(item.path, "rb") as stream:
        while not failures:
            slots.acquire()  # at most one block per worker in flight, plus the one being read
            data = stream.read(UPLOAD_BLOCK_SIZE)
            if not data:
                slots.release()
                break
            if digest is None:
                crc = zlib.crc32(data, crc)
            else:
                digest.update(data)
            sent += len(data)
            block_ids.append(base64.b64encode(f"{prefix}{len(block_ids):08d}".encode()).decode())
            pool.submit(stage, block_ids[-1], data)
            del data
    if failures:
        if isinstance(failures[0], AzureError):
            raise storage_error(failures[0], f"upload of {item.blob_name!r}") from None
        raise failures[0]
    if digest is None:
        if sent != item.size or crc != item.crc32:
            raise IntegrityError(_CHANGED.format(path=item.path))
        sha256 = str(item.sha256)
    else:
        sha256 = _checked_sha256(item, None, sent, digest.hexdigest())
    try:
        blob.commit_block_list(block_ids)
    except HttpResponseError as exc:
        if exc.error_code != "InvalidBlockList" or not _landed_meanwhile(blob, item.size):
            raise storage_error(exc, f"upload of {item.blob_name!r}") from None
    except AzureError as exc:
        raise storage_error(exc, f"upload of {item.blob_name!r}") from None
    return sha256


def _landed_meanwhile(blob: Any, size: int) -> bool:
    """After ``InvalidBlockList``: did another upload of the same files commit this blob while ours staged?

    Committing a block list discards every uncommitted block of the blob (Azure Storage, *Put Block List*:
    uncommitted blocks are garbage-collected when the blob is committed), so two uploads of one folder at once
    (two registrations of the same files) make the later commit fail. The blob's name is content-addressed
    (``LocalUpload/<content hash>/...``) and a writer commits only bytes it has checked against its hashing read,
    so a blob of the expected size there holds these very bytes; each download checks them against the manifest.
    """
    try:
        return int(blob.get_blob_properties().size) == size
    except AzureError:
        return False


def _checked_sha256(item: UploadItem, data: Optional[bytes], length: int, sha256: Optional[str] = None) -> str:
    """The SHA-256 of the bytes sent for ``item``; an error when they are not the file that was listed."""
    if sha256 is None:
        sha256 = hashlib.sha256(data or b"").hexdigest()
    if length != item.size or (item.sha256 is not None and sha256 != item.sha256):
        raise IntegrityError(_CHANGED.format(path=item.path))
    return sha256


_CHANGED = (
    "{path} changed while it was being uploaded (it is not the file that was hashed); "
    "register the model again once its files are no longer being written"
)
