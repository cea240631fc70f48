"""A model folder on local disk: its files and the content hash that names its upload folder.

The hash is the Azure ML SDK's own ``get_object_hash`` (sha256 over names and bytes, entries sorted
case-insensitively per directory, seeded with the SDK's constant), so the plugin and ``MLClient``
land identical folders in the same ``LocalUpload/<hash>/<name>`` place and reuse each other's uploads.

The content hash must be known before the first byte is uploaded (it names the folder), so it costs
one read of every file. That read also gives each file its own SHA-256 (the integrity manifest): for a
large file a second thread hashes the same buffers, with the CRC-32 of its bytes, so the wall time is one
SHA-256 pass while storage is still idle. The upload then checks the bytes it sends against that CRC-32
(:mod:`.azure.blobs`), a quarter of SHA-256's CPU at the time the client shares the machine's cores with
the transfer. Re-registering unchanged files reads nothing: both hashes are kept in a per-user cache keyed
by each file's size, times, inode and device (:class:`HashCache`).

What a folder may hold is the folder policy (:mod:`.folder_policy`), enforced by its walk before anything is
hashed or uploaded.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import stat
import tempfile
import time
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from . import settings
from .folder_policy import (  # noqa: F401 - the policy's names, also reached through this module
    BLOB_NAME_MAX,
    FOLDER_NAME_MAX,
    RELATIVE_PATH_MAX,
    RELATIVE_SEGMENTS_MAX,
    FolderRefused,
    FolderWalk,
    name_problem,
    open_listed,
    unreadable,
)

_logger = logging.getLogger(__name__)

_HASH_SEED = b"Initialize for october 2021 AML CLI version"
_CHUNK = 1024 * 1024
_LARGE_CHUNK = 4 * 1024 * 1024
INLINE_DIGEST_MAX = 256 * 1024
"""Files up to this size are read whole, and hashed from that one buffer (larger ones in _LARGE_CHUNK pieces)."""
KEPT_BYTES_MAX = 32 * 1024 * 1024
"""Small files' bytes read for the content hash are kept, up to this total, so the upload sends them without
reading the files again: one open, read and close fewer per file in the upload's threads, where (thousands
of small files, threads contending for the GIL) each system call costs far more than in one thread."""

@dataclass(frozen=True)
class LocalFile:
    relative_path: str  # POSIX separators, relative to the folder root
    path: str  # where to read it (symlinks resolved); a str: thousands of Path objects cost more than the hashing
    size: int
    sha256: Optional[str]  # None until known (a snapshot from an older cache: complete_digests() fills it)
    mtime_ns: int = 0
    ctime_ns: int = 0
    # Of the bytes this process hashed (large files): what their upload checks. Not kept in the hash cache, so
    # not part of what a file is: a cached file's upload checks its SHA-256 instead.
    crc32: Optional[int] = field(default=None, compare=False)

    def unchanged(self) -> bool:
        """True when the file still has the size and times it had when it was listed."""
        try:
            now = os.stat(self.path)
        except OSError:
            return False
        return (now.st_size, now.st_mtime_ns, now.st_ctime_ns) == (self.size, self.mtime_ns, self.ctime_ns)


@dataclass(frozen=True)
class FolderSnapshot:
    root: Path
    files: tuple[LocalFile, ...]
    content_hash: str
    listing: tuple[tuple[Any, ...], ...] = ()  # what the cache compares: every entry, in hash order, with its stat
    listed_ns: int = 0  # wall-clock time just before the listing (the cache's racy-file rule needs it)
    from_cache: bool = False
    contents: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)
    """relative path -> the bytes that were hashed, for small files (see :data:`KEPT_BYTES_MAX`)."""

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def complete(self) -> bool:
        """True when every file's own SHA-256 is known (the manifest can be written)."""
        return all(f.sha256 is not None for f in self.files)

    def manifest(self) -> bytes:
        """The per-file SHA-256 manifest, canonical JSON (its own SHA-256 goes into the version's properties)."""
        missing = [f.relative_path for f in self.files if f.sha256 is None]
        if missing:
            raise ValueError(f"The SHA-256 of {missing[0]!r} is not known yet")
        files = {f.relative_path: {"sha256": f.sha256, "size": f.size} for f in self.files}
        return json.dumps({"version": 1, "files": files}, sort_keys=True, separators=(",", ":")).encode()

    @property
    def indicator(self) -> str:
        """The file that carries the SDK's ``upload_status=completed`` marker: the first in sorted order."""
        return min(f.relative_path for f in self.files)

    def with_digests(self, digests: dict[str, str]) -> FolderSnapshot:
        """The same snapshot with files' SHA-256 filled in from ``digests`` (relative path -> digest).

        A file that already had a digest must get the same one: a different one means it changed meanwhile.
        """
        files = []
        for f in self.files:
            given = digests.get(f.relative_path)
            if given is not None and f.sha256 is not None and given != f.sha256:
                raise FileChangedError(f.path)
            files.append(f if given is None else replace(f, sha256=given))
        return replace(self, files=tuple(files))

    def without_contents(self) -> FolderSnapshot:
        """The same snapshot without the kept bytes (once they are sent, nothing needs them)."""
        return replace(self, contents={})

    def changed_files(self) -> list[LocalFile]:
        """Files whose size or times differ from the listing (written to since it was taken)."""
        return [f for f in self.files if not f.unchanged()]


class FileChangedError(RuntimeError):
    def __init__(self, path: str) -> None:
        super().__init__(
            f"{path} changed while it was being hashed or uploaded; register the model again once its files "
            "are no longer being written"
        )
        self.path = path


def snapshot(root: Path, *, cache: Optional[HashCache] = None) -> FolderSnapshot:
    """List every file under ``root`` (links inside it followed, as the SDK does) and compute the content hash.

    Raises :class:`FolderRefused` (an ``MlflowException``) when the folder holds what the policy in the module
    docstring refuses, before any file is read. Every file also gets its own SHA-256; files up to
    :data:`INLINE_DIGEST_MAX` keep their bytes, up to :data:`KEPT_BYTES_MAX` in all, and larger ones get the
    CRC-32 their upload is checked against (see the module docstring). ``cache`` defaults to
    :func:`default_cache`. Raises :class:`FileChangedError` when a file's size differs from its listing.
    """
    root = Path(root)
    listed_ns = time.time_ns()
    listing: list[tuple[Any, ...]] = []
    paths: list[str] = []
    FolderWalk(root, listing, paths).run()
    store = default_cache() if cache is None else cache
    cached = store.get(root, listing, paths) if store is not None else None
    if cached is not None:
        return cached
    digest = hashlib.sha256(_HASH_SEED)
    files: list[LocalFile] = []
    contents: dict[str, bytes] = {}
    kept = 0
    helper: Optional[ThreadPoolExecutor] = None  # a large file's own hashes, beside the content hash
    try:
        for entry, path in zip(listing, paths):
            relative, kind = entry[0], entry[1]
            digest.update(relative.rsplit("/", 1)[-1].encode())
            if kind != "f":
                continue
            size, mtime_ns, ctime_ns = entry[2], entry[3], entry[4]
            if size <= INLINE_DIGEST_MAX:
                with open(path, "rb", buffering=0, opener=open_listed) as handle:
                    data = handle.read(size + 1)  # one byte more: a file that grew since the listing shows it
                if len(data) != size:
                    raise FileChangedError(path)
                digest.update(data)
                files.append(LocalFile(relative, path, size, hashlib.sha256(data).hexdigest(), mtime_ns, ctime_ns))
                if kept + size <= KEPT_BYTES_MAX:
                    contents[relative] = data
                    kept += size
                continue
            if helper is None:
                helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="content-hash")
            with open(path, "rb", buffering=0, opener=open_listed) as handle:
                read, own = _hash_large(handle, digest, helper)
            if read != size:
                raise FileChangedError(path)
            files.append(LocalFile(relative, path, size, own.sha256.hexdigest(), mtime_ns, ctime_ns, own.crc32))
    except OSError as exc:  # listed a moment ago: gone or replaced (by a link: O_NOFOLLOW), or unreadable
        if exc.errno in (errno.ENOENT, errno.ELOOP):
            raise FileChangedError(path) from None
        raise unreadable(root, relative, exc) from None
    finally:
        if helper is not None:
            helper.shutdown()
    snap = FolderSnapshot(root, tuple(files), digest.hexdigest(), tuple(listing), listed_ns, contents=contents)
    if store is not None and snap.complete:
        store.put(snap)
    return snap


class _OwnHashes:
    """A file's own SHA-256 and CRC-32, fed in order from the helper thread."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.crc32 = 0

    def update(self, data: memoryview) -> None:
        self.sha256.update(data)  # both release the GIL on large buffers: they run beside the content hash
        self.crc32 = zlib.crc32(data, self.crc32)


def _hash_large(handle: Any, digest: Any, helper: ThreadPoolExecutor) -> tuple[int, _OwnHashes]:
    """Read ``handle`` once into two alternating buffers: this thread feeds ``digest`` (the content hash) while
    ``helper`` hashes the same bytes for the file's own digests and the next buffer is read. Bytes read."""
    own = _OwnHashes()
    buffers = (bytearray(_LARGE_CHUNK), bytearray(_LARGE_CHUNK))  # reused: no page faults per read
    pending: Optional[Future[None]] = None
    read = 0
    turn = 0
    try:
        while True:
            buffer = buffers[turn]
            count = handle.readinto(buffer)  # the helper still hashes the other buffer meanwhile
            if pending is not None:
                pending.result()
                pending = None
            if not count:
                return read, own
            view = memoryview(buffer)[:count]
            pending = helper.submit(own.update, view)
            digest.update(view)
            read += count
            turn ^= 1
    finally:
        if pending is not None:
            pending.result()  # never leave the helper reading a buffer this frame lets go of


def complete_digests(snap: FolderSnapshot, *, cache: Optional[HashCache] = None) -> FolderSnapshot:
    """``snap`` with every file's own SHA-256, reading the files that lack one (an upload that is reused)."""
    digests = {}
    for f in snap.files:
        if f.sha256 is None:
            file_digest = hashlib.sha256()
            with open(f.path, "rb", opener=open_listed) as handle:
                for chunk in iter(lambda h=handle: h.read(_CHUNK), b""):
                    file_digest.update(chunk)
            digests[f.relative_path] = file_digest.hexdigest()
    complete = snap.with_digests(digests)
    remember(complete, cache=cache)
    return complete


def remember(snap: FolderSnapshot, *, cache: Optional[HashCache] = None) -> None:
    """Keep a complete snapshot in the cache when its files are still as they were listed."""
    store = default_cache() if cache is None else cache
    if store is not None and not snap.from_cache and snap.complete and not snap.changed_files():
        store.put(snap)


def parse_manifest_entries(raw: bytes) -> dict[str, tuple[str, int]]:
    """relative path -> (SHA-256, size) from a manifest written by :meth:`FolderSnapshot.manifest`."""
    data = json.loads(raw.decode("utf-8"))
    return {path: (entry["sha256"], int(entry["size"])) for path, entry in data["files"].items()}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the content-hash cache -------------------------------------------------------------------------
_CACHE_FORMAT = 1
_RACY_NS = 2_000_000_000
"""A file written less than this before it was hashed may be written again within the same timestamp tick
(coarse clocks, FAT's 2 s) without its times changing: such snapshots are not cached (git's "racy" rule)."""
_CACHE_MAX_ENTRIES = 256
_CACHE_MAX_BYTES = 64 * 1024 * 1024
_HEX64 = re.compile("[0-9a-f]{64}")


class HashCache:
    """Content hash and per-file SHA-256 of folders, keyed by every entry's name, size, times, inode and device.

    One JSON file per folder path, in a directory only the user can write (checked before every use);
    written atomically; anything unreadable or unexpected is a miss, never an error. A changed, added,
    removed or renamed file changes the listing, so the entry no longer matches and the folder is hashed.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _usable(self) -> bool:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            info = os.lstat(self.directory)
        except OSError:
            return False
        if not stat.S_ISDIR(info.st_mode):
            return False
        if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o022):
            _logger.debug("Content-hash cache %s is not private to this user; not used", self.directory)
            return False
        return True

    def _entry_path(self, root: Path) -> Path:
        key = hashlib.sha256(f"{_CACHE_FORMAT}\0{os.path.abspath(root)}".encode()).hexdigest()
        return self.directory / f"{key}.json"

    def get(self, root: Path, listing: list[tuple[Any, ...]], paths: list[str]) -> Optional[FolderSnapshot]:
        """The cached snapshot of ``root`` when its entry matches ``listing`` exactly (``paths``: the files)."""
        if not self._usable():
            return None
        try:
            flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(self._entry_path(root), flags)
            with os.fdopen(fd, "rb") as handle:
                raw = handle.read(_CACHE_MAX_BYTES + 1)
            data = json.loads(raw.decode("utf-8")) if len(raw) <= _CACHE_MAX_BYTES else None
        except (OSError, ValueError):
            return None
        try:
            if (
                not isinstance(data, dict)
                or data.get("format") != _CACHE_FORMAT
                or data.get("root") != os.path.abspath(root)
                or [tuple(e) for e in data["listing"]] != listing
            ):
                return None
            content_hash, digests = data["content_hash"], data["sha256"]
            if not _is_hex64(content_hash):
                return None
            files = []
            for entry, path in zip(listing, paths):
                if entry[1] != "f":
                    continue
                sha = digests[entry[0]]
                if not _is_hex64(sha):
                    return None
                files.append(LocalFile(entry[0], path, entry[2], sha, entry[3], entry[4]))
        except (KeyError, TypeError, AttributeError):
            return None
        listed_ns = data.get("listed_ns")
        if not isinstance(listed_ns, int):
            return None
        return FolderSnapshot(root, tuple(files), content_hash, tuple(listing), listed_ns, from_cache=True)

    def put(self, snap: FolderSnapshot) -> None:
        """Store ``snap`` unless a file was written within :data:`_RACY_NS` before it was listed."""
        if not snap.listing or not snap.complete:
            return
        if any(max(e[3], e[4]) > snap.listed_ns - _RACY_NS for e in snap.listing if e[1] == "f"):
            return
        if not self._usable():
            return
        data = {
            "format": _CACHE_FORMAT,
            "root": os.path.abspath(snap.root),
            "listing": [list(e) for e in snap.listing],
            "listed_ns": snap.listed_ns,
            "content_hash": snap.content_hash,
            "sha256": {f.relative_path: f.sha256 for f in snap.files},
        }
        target = self._entry_path(snap.root)
        try:
            fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(data, handle, separators=(",", ":"))
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            self._prune()
        except OSError as exc:
            _logger.debug("Could not write the content-hash cache: %s", exc)

    def _prune(self) -> None:
        entries = sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-_CACHE_MAX_ENTRIES]:
            old.unlink(missing_ok=True)


def _is_hex64(value: Any) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def default_cache() -> Optional[HashCache]:
    """The user's content-hash cache, or None when ``MLFLOW_AZUREML_HASH_CACHE=false``."""
    directory = settings.hash_cache_directory()
    return HashCache(Path(directory)) if directory is not None else None
