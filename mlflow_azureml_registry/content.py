"""A model folder on local disk: its files and the content hash that names its upload folder.

The hash is the Azure ML SDK's own ``get_object_hash`` (sha256 over names and bytes, entries sorted
case-insensitively per directory, seeded with the SDK's constant), so the plugin and ``MLClient``
land identical folders in the same ``LocalUpload/<hash>/<name>`` place and reuse each other's uploads.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

_HASH_SEED = b"Initialize for october 2021 AML CLI version"
_CHUNK = 4 * 1024 * 1024
_PARALLEL_MIN = 256 * 1024  # below this, handing a chunk to another thread costs more than it saves


@dataclass(frozen=True)
class LocalFile:
    relative_path: str  # POSIX separators, relative to the folder root
    path: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class FolderSnapshot:
    root: Path
    files: tuple[LocalFile, ...]
    content_hash: str

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def manifest(self) -> bytes:
        """The per-file SHA-256 manifest, canonical JSON (its own SHA-256 goes into the version's properties)."""
        files = {f.relative_path: {"sha256": f.sha256, "size": f.size} for f in self.files}
        return json.dumps({"version": 1, "files": files}, sort_keys=True, separators=(",", ":")).encode()

    @property
    def indicator(self) -> str:
        """The file that carries the SDK's ``upload_status=completed`` marker: the first in sorted order."""
        return min(f.relative_path for f in self.files)


def snapshot(root: Path) -> FolderSnapshot:
    """List every file under ``root`` (symlinks followed, as the SDK does) and hash the whole tree.

    One read of each file feeds both the tree hash and the file's own SHA-256; the second hash runs
    on another thread (hashlib releases the GIL), so the two cost about one.
    """
    root = Path(root)
    digest = hashlib.sha256(_HASH_SEED)
    files: list[LocalFile] = []
    with ThreadPoolExecutor(max_workers=1) as second_core:
        _walk(root, root, digest, files, second_core)
    return FolderSnapshot(root=root, files=tuple(files), content_hash=digest.hexdigest())


def _walk(root: Path, directory: Path, digest, files: list[LocalFile], pool: ThreadPoolExecutor) -> None:
    for entry in sorted(directory.iterdir(), key=lambda p: str(p).lower()):
        digest.update(entry.name.encode())
        target = entry.resolve() if entry.is_symlink() else entry
        if target.is_file():
            size = 0
            file_digest = hashlib.sha256()
            with open(target, "rb") as handle:
                for chunk in iter(lambda h=handle: h.read(_CHUNK), b""):
                    if len(chunk) >= _PARALLEL_MIN:
                        pending = pool.submit(file_digest.update, chunk)
                        digest.update(chunk)
                        pending.result()
                    else:
                        digest.update(chunk)
                        file_digest.update(chunk)
                    size += len(chunk)
            relative = entry.relative_to(root).as_posix()
            files.append(LocalFile(relative, target, size, file_digest.hexdigest()))
        elif target.is_dir():
            _walk(root, entry, digest, files, pool)


def parse_manifest(raw: bytes) -> dict[str, str]:
    """relative path -> SHA-256 from a manifest written by :meth:`FolderSnapshot.manifest`."""
    data = json.loads(raw.decode("utf-8"))
    return {path: entry["sha256"] for path, entry in data["files"].items()}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
