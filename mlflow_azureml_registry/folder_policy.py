"""The model folder policy: what a model folder may hold, enforced by one walk before anything is hashed or
uploaded (:class:`FolderWalk`).

What a folder may hold (the walk enforces it, before anything is hashed or uploaded; :class:`FolderRefused`):
regular files and folders, and symbolic links whose target is inside the folder, which are followed. Refused,
naming the path: a link whose target is outside the folder (its target is not read); a link to a folder that
contains it, which would be walked forever (the walk keeps the device and inode of the folders it is in, so any
loop, through links or bind mounts, is seen on its first step); a link to nothing or a loop of links; a FIFO,
device or socket; and a name Azure Blob Storage would not store as it is (:func:`name_problem`, and the blob
name's length and segment limits, :data:`RELATIVE_PATH_MAX`). It costs no system call per file beyond the walk's
own: the names come with the directory listing, a link's target is resolved only for links, and the device and
inode of folders come from the stat the listing already makes.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import Any, Optional

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, PERMISSION_DENIED

# -- what a blob name can hold ------------------------------------------------------------------------
# Azure Blob Storage ("Naming and Referencing Containers, Blobs, and Metadata"): a blob name is at most 1,024
# characters and 254 path segments; control characters (0x00-0x1F, 0x81, ...) and code points such as U+E000
# cannot be used; no path segment should end with a dot. Seen on Azurite 3.35: a backslash is stored as '/'; names
# with U+0001-U+001F but tab, LF and CR, or with U+FFFE or U+FFFF, are stored, and then the container cannot be
# listed (HTTP 500: the listing is XML); a LF is stored and listed, but such a version never downloads. Azurite
# keeps tab, CR, DEL, C1 controls, private-use characters, trailing dots, names over 1,024 characters and over 254
# segments: those are refused on the documented rules alone. Kept as they are, and allowed: '%' (the client
# percent-encodes it), spaces, '?', '#', '+', '&', ';', non-ASCII text composed or decomposed, emoji, leading dots.
BLOB_NAME_MAX = 1024
"""Characters in a blob name, counted as UTF-16 code units (a character outside the BMP counts twice)."""
BLOB_SEGMENTS_MAX = 254
FOLDER_NAME_MAX = 255
"""The longest upload folder name (``LocalUpload/<hash>/<folder name>/``) the length budget below allows for."""
UPLOAD_PREFIX_MAX = len("LocalUpload/") + 64 + 1 + FOLDER_NAME_MAX + 1
RELATIVE_PATH_MAX = BLOB_NAME_MAX - UPLOAD_PREFIX_MAX
"""The longest path inside a model folder (691): what is left of a blob name under the longest upload prefix."""
RELATIVE_SEGMENTS_MAX = BLOB_SEGMENTS_MAX - 3
_NONCHARACTERS = "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(1, 15))
_UNSTORABLE = re.compile(
    r"[\\\x00-\x1f\x7f-\x9f\ud800-\udfff\ue000-\uf8ff\ufdd0-\ufdef\ufffe\uffff\U000f0000-\U0010ffff"
    + _NONCHARACTERS
    + "]"
)
_REMEDY_NAME = "rename it (or move it out of the folder) and register again"


def name_problem(name: str) -> Optional[str]:
    """Why Azure Blob Storage would not keep ``name`` (one file or folder name) as it is; None when it would."""
    bad = _UNSTORABLE.search(name)
    if bad is not None:
        char = bad.group()
        point = ord(char)
        if char == "\\":
            return "contains a backslash ('\\'), which Azure Blob Storage stores as '/'"
        if 0xD800 <= point <= 0xDFFF:  # os.fsdecode's stand-in for a byte that is not UTF-8
            return "is not valid UTF-8 (blob names are Unicode text)"
        if point < 0xA0:
            kind = "a control character"
        elif 0xE000 <= point <= 0xF8FF or point >= 0xF0000:
            kind = "a private-use character"
        else:
            kind = "a Unicode noncharacter"
        return f"contains U+{point:04X}, {kind}, which a blob name cannot hold"
    if name.endswith("."):
        return "ends with a dot, which Azure Blob Storage's naming rules exclude at the end of a path segment"
    return None


class FolderRefused(MlflowException):
    """A model folder that cannot be registered as it is; nothing was uploaded. Names the path and what to do."""

    def __init__(
        self, root: Any, relative: str, problem: str, remedy: str, *, error_code: int = INVALID_PARAMETER_VALUE
    ) -> None:
        super().__init__(
            f"Model folder {root} cannot be registered: {relative!r} {problem}; {remedy}", error_code=error_code
        )
        self.relative_path = relative


_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)



_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def open_listed(path: str, flags: int) -> int:
    """Open a listed file as it was listed: a link put in its place since is not followed, and a FIFO put in its
    place does not block (its read comes back short, which reads as a changed file)."""
    return os.open(path, flags | _OPEN_FLAGS)


def unreadable(root: Any, relative: str, exc: OSError) -> FolderRefused:
    code = PERMISSION_DENIED if isinstance(exc, PermissionError) else INVALID_PARAMETER_VALUE
    return FolderRefused(root, relative, f"cannot be read ({exc.strerror or exc})",
                         "make it readable, or move it out of the folder, and register again", error_code=code)


class FolderWalk:
    """The listing of one model folder, in the SDK's hash order, under the folder policy (module docstring).

    Entries: (relative path, kind, size, mtime_ns, ctime_ns, inode, device), kind ``f`` (file) or ``d`` (folder);
    ``paths`` holds where to read each (a link's resolved target, so reads never pass through the link again).
    """

    def __init__(self, root: Path, listing: list[tuple[Any, ...]], paths: list[str]) -> None:
        self.root, self.listing, self.paths = root, listing, paths
        self.real_root = os.path.realpath(root)
        self.inside = self.real_root if self.real_root.endswith(os.sep) else self.real_root + os.sep
        self.open_folders: dict[tuple[int, int], str] = {}  # (device, inode) -> relative path, of the walk's ancestors

    def run(self) -> None:
        try:
            info = os.stat(self.root)
        except OSError as exc:
            raise unreadable(self.root, ".", exc) from None
        self.open_folders[(info.st_dev, info.st_ino)] = "."
        self._list(str(self.root), "", 1)

    def _refuse(self, relative: str, problem: str, remedy: str) -> FolderRefused:
        return FolderRefused(self.root, relative, problem, remedy)

    def _list(self, directory: str, prefix: str, depth: int) -> None:
        """The SDK sorts ``str(path).lower()``; siblings share the directory part, so their names decide (ties keep
        the directory's order in both, the sort being stable)."""
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda e: e.name.lower())
        except OSError as exc:
            raise unreadable(self.root, prefix[:-1] or ".", exc) from None
        unstorable, append, append_path = _UNSTORABLE.search, self.listing.append, self.paths.append
        for entry in entries:
            name = entry.name
            relative = prefix + name
            # name_problem(name), inlined with a fast path for printable ASCII (a regex search costs 6 times more)
            if (
                name[-1] == "."
                or "\\" in name
                or (not (name.isascii() and name.isprintable()) and unstorable(name) is not None)
            ):
                problem = name_problem(name)
                raise self._refuse(relative, f"cannot be stored as an Azure blob name: it {problem}", _REMEDY_NAME)
            link = entry.is_symlink()  # from the directory listing: no system call
            target = entry.path
            if link:
                target = os.path.realpath(entry.path)
                if target != self.real_root and not target.startswith(self.inside):
                    raise self._refuse(
                        relative,
                        f"is a symbolic link to {target}, outside the model folder (links are followed only when "
                        "they stay inside it)",
                        "copy what it points to into the folder in its place, or register the folder that holds it",
                    )
            try:
                info = entry.stat()  # follows the link (inside the folder): one stat per entry, as the SDK's walk
            except OSError as exc:
                if not link:
                    raise unreadable(self.root, relative, exc) from None
                if exc.errno == errno.ELOOP:
                    raise self._refuse(relative, "is a symbolic link that never resolves (a loop of links)",
                                       "remove it, or point it at a file or folder inside the model folder") from None
                raise self._refuse(relative, f"is a symbolic link to {target}, which does not exist",
                                   "remove it, or restore what it points to") from None
            mode = info.st_mode
            if stat.S_ISREG(mode):
                if len(relative) > RELATIVE_PATH_MAX // 2 or depth > RELATIVE_SEGMENTS_MAX:
                    self._check_blob_name(relative, depth)
                append((relative, "f", info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev))
                append_path(target)
            elif stat.S_ISDIR(mode):
                key = (info.st_dev, info.st_ino)
                ancestor = self.open_folders.get(key)
                if ancestor is not None:
                    where = "the model folder itself" if ancestor == "." else f"the folder {ancestor!r}"
                    what = f"is a symbolic link to {target} ({where})" if link else f"is {where} again (a bind mount?)"
                    raise self._refuse(
                        relative,
                        f"{what}, which contains it: following it would never end (a loop)",
                        "remove the link, or point it at a folder that does not contain it",
                    )
                append((relative, "d", 0, 0, 0, 0, 0))
                append_path(target)
                self.open_folders[key] = relative
                self._list(entry.path, relative + "/", depth + 1)
                del self.open_folders[key]
            else:
                kind = next((kind for test, kind in _SPECIAL_KINDS if test(mode)), "not a regular file or folder")
                what = f"is a symbolic link to {target}, which is {kind}" if link else f"is {kind}"
                raise self._refuse(relative, f"{what}: a model folder holds regular files and folders only",
                                   "remove it from the folder and register again")

    def _check_blob_name(self, relative: str, depth: int) -> None:
        """The blob name ``LocalUpload/<hash>/<folder>/<relative>`` must fit Azure's length and segment limits."""
        length = len(relative) if relative.isascii() else len(relative.encode("utf-16-le")) // 2
        if length > RELATIVE_PATH_MAX:
            raise self._refuse(
                relative,
                f"is a path of {length} characters: with the upload folder's prefix, blob names hold at most "
                f"{BLOB_NAME_MAX:,} characters, which leaves {RELATIVE_PATH_MAX} for a path inside the model folder",
                "shorten its folder or file names and register again",
            )
        if depth > RELATIVE_SEGMENTS_MAX:
            raise self._refuse(
                relative,
                f"is a path of {depth} segments: blob names hold at most {BLOB_SEGMENTS_MAX}, and the upload folder's "
                f"prefix takes 3, which leaves {RELATIVE_SEGMENTS_MAX} for a path inside the model folder",
                "flatten the folder and register again",
            )


