"""Downloading a model's files from a container (:meth:`.blobs.BlobFolder.download_files`): small files one request
each on parallel workers, large ones in parallel ranges written in place and hashed in order as they arrive, every
file checked against the version's manifest; and :class:`Destination`, which keeps what is written under its folder.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Callable, Optional

from azure.core import MatchConditions
from azure.core.exceptions import AzureError

from .blob_common import BLOCK_SIZE, DOWNLOAD_RANGE_SIZE, Progress, run_parallel, storage_error
from .errors import IntegrityError, UnsafeBlobName

_HASH_READ = 1024 * 1024


def download_files(
    container: Any,
    items: Iterable[tuple[str, int, Path]],
    *,
    concurrency: int,
    range_workers: int,
    expected_sha256: Optional[dict[str, str]] = None,
    progress: Optional[Progress] = None,
) -> None:
    """Download ``(blob name, size, local path)`` items from ``container`` (an azure-storage-blob
    ``ContainerClient``): small ones on up to ``concurrency`` workers, large ones one at a time in ranges fetched by
    ``range_workers`` threads.

    With ``expected_sha256`` (blob name -> digest), every file is checked as it streams (large files
    in order, right behind the ranges written); a mismatch deletes the file and raises :class:`IntegrityError`.
    Storage failures raise the gateway's typed errors.
    """
    items = list(items)
    expected = expected_sha256 or {}
    # Each folder made once, here: a mkdir per file in the workers is a system call per file where
    # threads contend for the GIL, which costs far more than the call itself.
    for folder in {dest.parent for _, _, dest in items}:
        folder.mkdir(parents=True, exist_ok=True)
    for name, size, dest in items:
        if size > BLOCK_SIZE:
            if progress is None:
                _download_ranges(container, name, dest, expected.get(name), None, range_workers)
                continue
            with progress.large_file(dest.name, size) as advance:
                _download_ranges(container, name, dest, expected.get(name), advance, range_workers)
            progress.file_done()

    def download_small(item: tuple[str, int, Path]) -> None:
        _download_small(container, item[0], item[2], expected.get(item[0]))
        if progress:
            progress.file_done()

    run_parallel(download_small, [i for i in items if i[1] <= BLOCK_SIZE], concurrency)


def _download_small(container: Any, blob_name: str, dest: Path, sha256: Optional[str]) -> None:
    digest = hashlib.sha256()
    try:
        downloader = container.get_blob_client(blob_name).download_blob()
        with open(dest, "wb") as handle:
            for chunk in downloader.chunks():
                digest.update(chunk)
                handle.write(chunk)
    except AzureError as exc:
        raise storage_error(exc, f"download of {blob_name!r}") from None
    _verify(blob_name, dest, sha256, digest.hexdigest())


def _download_ranges(
    container: Any,
    blob_name: str,
    dest: Path,
    sha256: Optional[str],
    progress: Optional[Callable[[int], None]],
    workers: int,
) -> None:
    """Ranges fetched in parallel and written in place; the file is hashed in order as they arrive.

    The first range gives the size and ETag; the others are asked with If-Match on it, so a blob
    replaced meanwhile fails instead of mixing two versions. Memory: see :data:`.blob_common.DOWNLOAD_RANGE_SIZE`.
    """
    blob = container.get_blob_client(blob_name)
    hashed = _OrderedHasher(dest) if sha256 is not None else None
    try:
        with open(dest, "wb", buffering=0) as handle:
            fd = handle.fileno()

            def at(offset: int) -> _PlacedWriter:
                return _PlacedWriter(fd, offset, hashed, progress)

            first = blob.download_blob(offset=0, length=DOWNLOAD_RANGE_SIZE)
            size = int(first.properties.content_range.rsplit("/", 1)[1])
            etag = first.properties.etag

            def fetch(offset: int) -> None:
                length = min(DOWNLOAD_RANGE_SIZE, size - offset)
                part = blob.download_blob(
                    offset=offset, length=length, etag=etag, match_condition=MatchConditions.IfNotModified
                )
                part.readinto(at(offset))  # the body's bytes go to their place in the file: no copy of the range

            first.readinto(at(0))
            del first
            offsets = list(range(DOWNLOAD_RANGE_SIZE, size, DOWNLOAD_RANGE_SIZE))
            run_parallel(fetch, offsets, workers)
        actual = hashed.hexdigest(size) if hashed is not None else None
    except AzureError as exc:
        dest.unlink(missing_ok=True)
        raise storage_error(exc, f"download of {blob_name!r}") from None
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    _verify(blob_name, dest, sha256, actual)


class _PlacedWriter:
    """What ``StorageStreamDownloader.readinto`` writes one range into: each write lands at its own place in the
    file (``os.pwrite``: no seek, no lock shared with the other ranges), is handed to the hasher and counted."""

    def __init__(
        self, fd: int, offset: int, hashed: Optional[_OrderedHasher], progress: Optional[Callable[[int], None]]
    ) -> None:
        self._fd, self._offset, self._hashed, self._progress = fd, offset, hashed, progress

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False  # readinto then writes in order, as one stream

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        at, done = self._offset, 0
        while done < len(view):
            done += os.pwrite(self._fd, view[done:], at + done)
        if self._hashed is not None:
            self._hashed.written(at, view)
        if self._progress:
            self._progress(done)
        self._offset += done
        return done


class _OrderedHasher:
    """SHA-256 of a file written in ranges that complete out of order.

    The worker whose range is next in order hashes it from memory, then any ranges that completed
    meanwhile, read back from the page cache; an out-of-order range is only noted. No range stays in
    memory for the hash, and hashing overlaps the download.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._digest = hashlib.sha256()
        self._position = 0  # everything before it is hashed
        self._waiting: dict[int, int] = {}  # offset -> length: written, not hashed yet
        self._busy = False  # a worker is hashing
        self._lock = threading.Lock()

    def written(self, offset: int, data: bytes) -> None:
        with self._lock:
            if self._busy or offset != self._position:
                self._waiting[offset] = len(data)
                return
            self._busy = True
        self._digest.update(data)
        length = len(data)
        while True:
            with self._lock:
                self._position += length
                length = self._waiting.pop(self._position, 0)
                if not length:
                    self._busy = False
                    return
            self._hash_from_file(self._position, length)

    def _hash_from_file(self, offset: int, length: int) -> None:
        with open(self._path, "rb") as reader:
            reader.seek(offset)
            while length:
                chunk = reader.read(min(length, _HASH_READ))
                if not chunk:
                    raise IntegrityError(f"{self._path} was truncated while it was being downloaded")
                self._digest.update(chunk)
                length -= len(chunk)

    def hexdigest(self, size: int) -> Optional[str]:
        """The digest once all ``size`` bytes are hashed (None if some never were)."""
        with self._lock:
            return self._digest.hexdigest() if self._position == size and not self._busy else None


def _verify(blob_name: str, dest: Path, expected: Optional[str], actual: Optional[str]) -> None:
    if expected is not None and actual != expected:
        dest.unlink(missing_ok=True)
        raise IntegrityError(
            f"Integrity check failed for {blob_name!r}: its SHA-256 is {actual}, the registered version's "
            f"manifest says {expected}. The file was changed after registration; it was not kept."
        )


class Destination:
    """Where downloaded blobs may be written: under ``root`` only, whatever their names or existing symlinks say.

    Each directory is resolved once (a realpath costs a system call per path component, which adds up over
    thousands of files); each file's own name is checked for being a symlink.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._resolved = root.resolve()
        self._directories: dict[str, Path] = {"": self._resolved}

    def _inside(self, path: Path) -> bool:
        return path == self._resolved or self._resolved in path.parents

    def join(self, relative: str) -> Path:
        """``root / relative``, refusing names that would land outside ``root`` (``..``, absolute paths, links)."""
        normalized = posixpath.normpath(relative.replace("\\", "/"))
        drive = len(normalized) > 1 and normalized[1] == ":"
        if normalized.startswith("/") or normalized == ".." or normalized.startswith("../") or drive:
            raise UnsafeBlobName(f"Refusing blob path {relative!r}: it would be written outside {self.root}")
        if normalized == ".":
            return self._resolved
        parent, _, name = normalized.rpartition("/")
        directory = self._directories.get(parent)
        if directory is None:
            directory = (self._resolved / parent).resolve()
            if not self._inside(directory):
                raise UnsafeBlobName(f"Refusing blob path {relative!r}: it would be written outside {self.root}")
            self._directories[parent] = directory
        target = directory / name
        if target.is_symlink():
            target = target.resolve()
            if not self._inside(target):
                raise UnsafeBlobName(f"Refusing blob path {relative!r}: it would be written outside {self.root}")
        return target
