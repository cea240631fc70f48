"""``AzureMLArtifactRepository``: reads a model version's files, from a workspace datastore or from an Azure ML
registry's storage.

The URI is self-describing (a workspace datastore path, or a version of a workspace or registry), because MLflow
builds this repository from the download URI alone, often without a registry URI. Writes go through the registry's
create protocol only, so this repository is read-only.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import posixpath
import re
import tempfile
from pathlib import Path
from typing import Optional

from mlflow.entities import FileInfo
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, NOT_IMPLEMENTED, RESOURCE_DOES_NOT_EXIST
from mlflow.store.artifact.artifact_repo import ArtifactRepository

from . import concurrency, session, targets
from .azure.blobs import Destination
from .azure.errors import IntegrityError
from .azure.leases import LEASE_PREFIX
from .content import parse_manifest_entries, sha256_hex
from .errors import azure_errors
from .progress import TransferProgress
from .registration import MANIFEST_NAME, manifest_blob
from .uri import DatastoreLocation, InvalidUri, parse_artifact_uri

_READ_ONLY = (
    "Model files on Azure ML are written only by registering a model version "
    "(mlflow.register_model / MlflowClient.create_model_version); this repository is read-only."
)


# What this MLflow's base constructor takes: the URI only before 3.1.4, + tracking_uri, then + registry_uri (3.5).
_BASE_PARAMETERS = inspect.signature(ArtifactRepository.__init__).parameters


class AzureMLArtifactRepository(ArtifactRepository):
    def __init__(self, artifact_uri: str, tracking_uri: Optional[str] = None, registry_uri: Optional[str] = None):
        given = {"tracking_uri": tracking_uri, "registry_uri": registry_uri}
        super().__init__(artifact_uri, **{k: v for k, v in given.items() if k in _BASE_PARAMETERS})
        self.tracking_uri, self.registry_uri = tracking_uri, registry_uri
        try:
            parsed = parse_artifact_uri(artifact_uri)
        except InvalidUri as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
        self._parsed = parsed
        self._opened: Optional[tuple] = None

    def _version_repository(self, path: Optional[str]) -> tuple[Optional[AzureMLArtifactRepository], str]:
        """For ``.../models/<n>/versions`` (no version: MLflow opened the parent of a version's URI), the repository
        of the version the path's first segment names, and the rest of the path; (None, path) otherwise."""
        parsed = self._parsed
        if isinstance(parsed, DatastoreLocation) or parsed.version:
            return None, path or ""
        version, _, rest = (path or "").strip("/").partition("/")
        if not version:
            raise MlflowException(
                f"Name a version under {self.artifact_uri} (.../versions/<version>)", error_code=INVALID_PARAMETER_VALUE
            )
        child = parsed.child(version)
        return AzureMLArtifactRepository(child.artifact_uri, self.tracking_uri, self.registry_uri), rest

    def _open(self):
        """(blob folder, place of the files): a datastore path as it is; a version through its workspace's or
        registry's model-asset layer (one version GET, and for a registry a data reference), once."""
        parsed = self._parsed
        if isinstance(parsed, DatastoreLocation):  # the process's gateway, as it is now (configure() may reset it)
            with azure_errors():
                return session.gateway(parsed.workspace).blob_folder(parsed.datastore), parsed
        if self._opened is None:  # MLflow builds a repository per download: the version is read once for it
            self._opened = targets.assets_for(parsed.target).open_files(parsed)
        return self._opened

    @property
    def location(self):
        return self._open()[1]

    def _folder(self):
        return self._open()[0]

    def _manifest(self, folder) -> Optional[dict[str, tuple[str, int]]]:
        """path in the model folder -> (SHA-256, size), from the version's manifest (checked against the URI's
        digest); None when the URI carries no digest (files referenced in place, versions made elsewhere)."""
        digest = self.location.manifest_sha256
        if not digest:
            return None
        blob = getattr(self.location, "manifest_blob", None)
        if blob is None:
            match = _UPLOAD_FOLDER.match(self.location.path + "/")
            blob = manifest_blob(match.group(1) + "/x") if match else None
        raw = folder.read(blob) if blob else None
        if raw is None:
            raise IntegrityError(f"The manifest of {self.artifact_uri} is missing; the files cannot be verified")
        if sha256_hex(raw) != digest:
            raise IntegrityError(f"The manifest of {self.artifact_uri} does not match the registered version")
        return parse_manifest_entries(raw)

    def _in_folder(self, name: str) -> Optional[tuple[str, str]]:
        """(the version's folder, the path inside it) of a blob name; None when it is not inside one."""
        root = getattr(self.location, "root", None)
        if root is not None:
            return (root, name[len(root) + 1:]) if name.startswith(root + "/") else None
        inside = _UPLOAD_FILE.match(name)
        return (inside.group(1), inside.group(2)) if inside else None

    def _expected(
        self, manifest: dict[str, tuple[str, int]], names: list[str], prefix: Optional[str] = None
    ) -> dict[str, tuple[str, int]]:
        """blob name -> (SHA-256, size) for ``names``. A name the manifest does not know is an error: the files
        changed after registration; so is, for a download of whole model folders, a registered file missing."""
        expected: dict[str, tuple[str, int]] = {}
        found: dict[str, set[str]] = {}
        for name in names:
            inside = self._in_folder(name)
            if not inside or inside[1] not in manifest:
                raise IntegrityError(f"{name!r} is not part of the registered version's files")
            expected[name] = manifest[inside[1]]
            found.setdefault(inside[0], set()).add(inside[1])
        if prefix is not None:
            for upload_folder, files in found.items():
                if upload_folder.startswith(prefix.rstrip("/")) and set(manifest) - files:
                    missing = sorted(set(manifest) - files)[0]
                    raise IntegrityError(f"{upload_folder}/{missing} of the registered version is missing from storage")
        return expected

    def _blob_name(self, path: Optional[str]) -> str:
        relative = (path or "").strip("/")
        if relative and ".." in relative.split("/"):
            raise MlflowException(f"Invalid artifact path {path!r}", error_code=INVALID_PARAMETER_VALUE)
        target = self.location.child(relative)
        _check_scope(target.path, target.artifact_uri)
        return target.path

    # -- read ---------------------------------------------------------------------------------------
    def list_artifacts(self, path: Optional[str] = None) -> list[FileInfo]:
        inner, rest = self._version_repository(path)
        if inner is not None:
            version = self._parsed.child((path or "").strip("/").split("/")[0]).version
            return [FileInfo(f"{version}/{f.path}", f.is_dir, f.file_size) for f in inner.list_artifacts(rest or None)]
        prefix = self._blob_name(path)
        root = self.location.path + "/"
        infos = []
        with azure_errors():
            for name, size in self._folder().walk(prefix):
                if posixpath.basename(name) == MANIFEST_NAME:
                    continue
                relative = name[len(root):].rstrip("/") if name.startswith(root) else name.rstrip("/")
                infos.append(FileInfo(relative, size is None, size))
        return sorted(infos, key=lambda f: f.path)

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        inner, rest = self._version_repository(remote_file_path)
        if inner is not None:
            return inner._download_file(rest, local_path)
        name = self._blob_name(remote_file_path)
        with azure_errors():
            folder = self._folder()
            sizes = {e.name: e.size for e in folder.list(posixpath.dirname(name))}
            if name not in sizes:
                raise MlflowException(
                    f"Artifact {remote_file_path!r} not found at {self.artifact_uri}",
                    error_code=RESOURCE_DOES_NOT_EXIST,
                )
            manifest = self._manifest(folder)
            expected = None
            if manifest is not None:
                expected = {n: sha for n, (sha, _) in self._expected(manifest, [name]).items()}
            folder.download_files([(name, sizes[name], Path(local_path))], expected_sha256=expected)

    def _entries(self, folder, prefix: str, single_file: bool) -> tuple[list[tuple[str, int]], Optional[dict]]:
        """(blob name, size) of what to download, and blob name -> SHA-256 when the version has a manifest.

        With a manifest, the listing needs names only (several times cheaper to parse than full properties):
        sizes come from the manifest; a blob whose size differs fails its SHA-256 check all the same.
        """
        parent = posixpath.dirname(prefix)
        if not self.location.manifest_sha256:  # no manifest to read: sizes come from the listing
            entries = [(e.name, e.size) for e in folder.list(prefix) if posixpath.basename(e.name) != MANIFEST_NAME]
            if not entries and single_file:
                entries = [(e.name, e.size) for e in folder.list(parent) if e.name == prefix]
            return entries, None
        # the manifest and the listing do not wait for each other (concurrency.py)
        manifest, listed = concurrency.together(lambda: self._manifest(folder), lambda: list(folder.list_names(prefix)))
        names = [n for n in listed if posixpath.basename(n) != MANIFEST_NAME]
        if not names and single_file:
            names = [n for n in folder.list_names(parent) if n == prefix]
        if not names:
            return [], None
        expected = self._expected(manifest, names, prefix)
        return [(n, expected[n][1]) for n in names], {n: sha for n, (sha, _) in expected.items()}

    def download_artifacts(self, artifact_path: str, dst_path: Optional[str] = None) -> str:
        """One listing, then parallel downloads (MLflow's default lists folder by folder)."""
        inner, rest = self._version_repository(artifact_path)
        if inner is not None:
            if dst_path is None:
                dst_path = tempfile.mkdtemp()
            if not rest:  # the whole version, as a folder named after it
                folder = Path(dst_path) / self._parsed.child(artifact_path.strip("/")).version
                folder.mkdir(parents=True, exist_ok=True)
                return inner.download_artifacts("", str(folder))
            return inner.download_artifacts(rest, dst_path)
        artifact_path = (artifact_path or "").strip("/")
        if dst_path is None:
            dst_path = tempfile.mkdtemp()
        dst_root = Path(os.path.abspath(dst_path))
        if not dst_root.is_dir():
            raise MlflowException(
                f"The destination path for downloaded artifacts does not exist or is not a directory: {dst_path}",
                error_code=INVALID_PARAMETER_VALUE,
            )
        prefix = self._blob_name(artifact_path)
        root = self.location.path + "/"
        with azure_errors():
            folder = self._folder()
            # A path with nothing under it may be a single file, e.g. "MLmodel"; so may the location itself: a
            # version the Azure ML SDK or CLI made from one file (`az ml model create --path model.pkl`) is a file.
            entries, expected = self._entries(folder, prefix, single_file=True)
            if not entries:
                raise MlflowException(
                    f"No artifacts found at {self.location.child(artifact_path).artifact_uri}",
                    error_code=RESOURCE_DOES_NOT_EXIST,
                )
            destination = Destination(dst_root)
            plan = []
            whole_file = [name for name, _ in entries] == [self.location.path]  # the location is one file
            for name, size in entries:
                if whole_file:
                    relative = posixpath.basename(name)
                else:
                    relative = name[len(root):] if name.startswith(root) else name
                plan.append((name, size, destination.join(relative)))
            undo = _Undo(dst_root.resolve(), [dest for _, _, dest in plan])
            try:
                with TransferProgress("Downloading", len(plan)) as progress:
                    folder.download_files(plan, expected_sha256=expected, progress=progress)
            except BaseException:
                undo()  # a failed download leaves nothing of the model behind, and touches nothing else
                raise
        if whole_file:  # as MLflow's repositories answer for a file: its local path
            return str(dst_root / posixpath.basename(self.location.path))
        return str(dst_root / artifact_path) if artifact_path else str(dst_root)

    # -- write (refused) ----------------------------------------------------------------------------
    def log_artifact(self, local_file, artifact_path=None):
        raise MlflowException(_READ_ONLY, error_code=NOT_IMPLEMENTED)

    def log_artifacts(self, local_dir, artifact_path=None):
        raise MlflowException(_READ_ONLY, error_code=NOT_IMPLEMENTED)

    def delete_artifacts(self, artifact_path=None):
        raise MlflowException(_READ_ONLY, error_code=NOT_IMPLEMENTED)


def _check_scope(path: str, artifact_uri: str) -> None:
    """Reads stay inside one model's folder: never the datastore's root, all of ``LocalUpload`` (every model's
    files) or one upload's parent, nor the plugin's own lease blobs. ``INVALID_PARAMETER_VALUE`` otherwise."""
    parts = [p for p in path.split("/") if p]
    too_wide = (
        not parts
        or (parts[0] == "LocalUpload" and len(parts) < 3)
        or parts[0] == LEASE_PREFIX.strip("/").split("/")[0]
    )
    if too_wide:
        raise MlflowException(
            f"Refusing to read {artifact_uri!r}: it is not inside one model version's folder (it would read "
            f"{'the whole datastore' if not parts else repr('/'.join(parts)) + ' and everything under it'}). "
            "Use the URI get_model_version_download_uri returns, or a path under it.",
            error_code=INVALID_PARAMETER_VALUE,
        )


class _Undo:
    """What a download is about to write under ``root``, to remove again if it fails: the files that were not
    there before and the folders it makes. One listing per folder, not a system call per file."""

    def __init__(self, root: Path, files: list[Path]) -> None:
        self.files = files
        self.existed: set[Path] = set()
        self.made: list[Path] = []
        by_parent: dict[Path, list[Path]] = {}
        for f in files:
            by_parent.setdefault(f.parent, []).append(f)
        for parent, inside in by_parent.items():
            try:
                present = set(os.listdir(parent))
            except FileNotFoundError:
                present = set()
                folder = parent
                while folder != root and root in folder.parents and not folder.exists():
                    self.made.append(folder)
                    folder = folder.parent
            self.existed.update(f for f in inside if f.name in present)

    def __call__(self) -> None:
        for path in self.files:
            if path not in self.existed:
                with contextlib.suppress(OSError):
                    path.unlink()
        for folder in sorted(set(self.made), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: nothing else is removed


# LocalUpload/<hash>/<folder>/<file>: the manifest is keyed by <file>, the path inside the folder.
_UPLOAD_FOLDER = re.compile(r"^(.*?LocalUpload/[0-9a-f]{64})/")
_UPLOAD_FILE = re.compile(r"^(.*?LocalUpload/[0-9a-f]{64}/[^/]+)/(.+)$", re.DOTALL)  # any character in a name
