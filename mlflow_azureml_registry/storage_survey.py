"""What storage gc (:mod:`.storage_gc`) finds in a workspace: the upload folders on its upload datastore, the
folders its model versions reference, and from both the plan: which folders are orphaned, old enough, and the
plugin's to delete.

Upload folders are ``LocalUpload/<content hash>/<folder>`` (a single uploaded file is ``LocalUpload/<hash>/<file>``:
an entry is whatever follows the hash); the plugin's manifest of a hash is ``LocalUpload/<hash>/.mlflow-manifest.json``
(:func:`.registration.manifest_blob`). A version references a folder when its ``modelUri`` names the folder, a file or
folder inside it, or a folder above it (the hash folder, ``LocalUpload``, the datastore's root).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

from . import concurrency, mapping
from .azure import errors as az
from .azure.blob_scan import StoredBlob, list_blobs
from .registration import ARTIFACT_ORIGIN, MANIFEST_NAME
from .uri import InvalidUri

MARKER_KEY, MARKER_VALUE = "upload_status", "completed"  # the Azure ML SDK's completion marker (blobs.py)
# A datastore path naming the datastore's root (``parse_asset_uri`` takes only non-empty paths).
_DATASTORE_ROOT = re.compile(r"^azureml://(?:.*/)?datastores/[^/]+/paths/*$", re.IGNORECASE)


@dataclass
class References:
    """The upload folders the workspace's model versions reference (paths inside the upload datastore)."""

    everything: bool = False  # a version names LocalUpload itself or the datastore's root
    hash_dirs: set[str] = field(default_factory=set)  # LocalUpload/<hash> named whole
    folders: set[str] = field(default_factory=set)  # LocalUpload/<hash>/<entry>, or something inside it
    versions: int = 0
    unplaced: int = 0  # versions whose modelUri is no datastore path or storage URL (a registry, a job, ...)

    def add(self, model_uri: Any, workspace: Any) -> None:
        """Count one version, by its ``modelUri`` (any form Azure ML writes: see :func:`reference_path`)."""
        self.versions += 1
        path = reference_path(model_uri, workspace)
        if path is None:
            self.unplaced += 1
            return
        for variant in {path, unquote(path).strip("/")}:
            parts = variant.split("/") if variant else []
            if not parts or parts == [ARTIFACT_ORIGIN]:
                self.everything = True
            elif parts[0] == ARTIFACT_ORIGIN and len(parts) == 2:
                self.hash_dirs.add(variant)
            elif parts[0] == ARTIFACT_ORIGIN:
                self.folders.add("/".join(parts[:3]))

    def covers_dir(self, hash_dir: str) -> bool:
        return self.everything or hash_dir in self.hash_dirs

    def covers(self, folder: str) -> bool:
        """Whether ``folder`` (``LocalUpload/<hash>/<entry>``) is referenced, itself, inside or above."""
        return self.covers_dir(folder.rsplit("/", 1)[0]) or folder in self.folders


def reference_path(model_uri: Any, workspace: Any) -> Optional[str]:
    """The datastore path a version's ``modelUri`` names (no leading or trailing '/'; ``""``: a datastore's root),
    or None when it names no datastore path.

    Azure ML's forms (``azureml://subscriptions/<s>/resourceGroups/<rg>/workspaces/<w>/datastores/<ds>/paths/<p>``,
    as the service and the Azure ML SDK store it, also with ``providers/Microsoft.MachineLearningServices/``, and
    ``azureml://datastores/<ds>/paths/<p>``) are read by :func:`.mapping.version_location`, as everywhere in the
    plugin. Storage URLs (``https://<account>.blob.../<container>/<p>``, ``wasbs://<container>@<account>.../<p>``)
    are read from their ``LocalUpload`` segment on. The datastore and workspace named are not compared: a path names
    the same content-addressed folder wherever it is, so at worst a folder is kept that another datastore's version
    names (nothing is deleted because of a datastore's name).
    """
    if not isinstance(model_uri, str) or not model_uri:
        return None
    if _DATASTORE_ROOT.match(model_uri):
        return ""
    try:
        return mapping.version_location({"properties": {"modelUri": model_uri}}, workspace).path
    except InvalidUri:
        pass
    parts = unquote(urlsplit(model_uri).path).split("/")
    if ARTIFACT_ORIGIN in parts:
        return "/".join(parts[parts.index(ARTIFACT_ORIGIN):]).strip("/")
    return None


def _version_uris(models: Any, name: str) -> list[Any]:
    try:
        return [(v.get("properties") or {}).get("modelUri") for v in models.list_versions(name)]
    except az.NotFound:  # gone since the container list (containers cannot be deleted: defensive)
        return []


def model_references(models: Any, workspace: Any) -> References:
    """Every version of every model of the workspace, archived ones included (both lists ask ``listViewType=All``,
    the gateway's default: an archived version keeps its files), read as :class:`References`. Costs one request
    per page of 20 models, and one per page of 20 versions of each model, sent through the process's request pool
    (``MLFLOW_AZUREML_REQUEST_CONCURRENCY`` at once). Raises the gateway's typed errors."""
    names = [c.get("name") for c in models.list_containers(list_view_type="All")]
    found = References()
    calls = [functools.partial(_version_uris, models, name) for name in names if name]
    for uris in concurrency.together(*calls):
        for model_uri in uris:
            found.add(model_uri, workspace)
    return found


@dataclass
class UploadFolder:
    path: str  # LocalUpload/<hash>/<entry>
    blobs: list[StoredBlob] = field(default_factory=list)


@dataclass
class HashDir:
    path: str  # LocalUpload/<hash>
    folders: dict[str, UploadFolder] = field(default_factory=dict)
    manifest: Optional[StoredBlob] = None


def upload_dirs(container_client: Any) -> dict[str, HashDir]:
    """The blobs under ``LocalUpload/``, grouped by hash folder and entry (one listing, paged by the SDK). Blobs
    outside that layout (directly under ``LocalUpload/``) are not listed."""
    dirs: dict[str, HashDir] = {}
    for blob in list_blobs(container_client, f"{ARTIFACT_ORIGIN}/"):
        parts = blob.name.split("/", 3)
        if len(parts) < 3 or not parts[1] or not parts[2]:
            continue
        hash_dir = dirs.setdefault(f"{parts[0]}/{parts[1]}", HashDir(f"{parts[0]}/{parts[1]}"))
        if len(parts) == 3 and parts[2] == MANIFEST_NAME:
            hash_dir.manifest = blob
        else:
            path = f"{hash_dir.path}/{parts[2]}"
            hash_dir.folders.setdefault(path, UploadFolder(path)).blobs.append(blob)
    return dirs


def in_folder(blob_name: str, folder: str) -> bool:
    return blob_name == folder or blob_name.startswith(folder + "/")


@dataclass(frozen=True)
class Orphan:
    """An upload folder no version references: its blobs as listed, and the hash folder's manifest when that goes
    too (no other entry of the hash folder stays). ``path`` is the hash folder itself when only its manifest is
    left. ``newest``: the last write to it or to the manifest, epoch seconds."""

    path: str
    hash_dir: str
    blobs: tuple[StoredBlob, ...]
    manifest: Optional[StoredBlob]
    newest: float

    @property
    def files(self) -> int:
        """The folder's own files (its hash folder's manifest is not one of them: :attr:`manifest_size`)."""
        return len(self.blobs)

    @property
    def size(self) -> int:
        """The folder's own bytes, without the manifest (so a folder shows the same wherever it is listed)."""
        return sum(b.size for b in self.blobs)

    @property
    def manifest_size(self) -> int:
        """Bytes of the hash folder's manifest when it goes with this folder (the last of its hash), else 0."""
        return self.manifest.size if self.manifest else 0

    @property
    def reclaimed(self) -> int:
        """What deleting it frees: the folder's bytes and, when it goes too, the manifest's."""
        return self.size + self.manifest_size

    @property
    def marker(self) -> Optional[StoredBlob]:
        """The blob carrying the completion marker (none: the upload never finished, or gc retired it)."""
        return next((b for b in self.blobs if b.metadata.get(MARKER_KEY) == MARKER_VALUE), None)


@dataclass
class Plan:
    references: References
    orphans: list[Orphan] = field(default_factory=list)  # old enough: deleted by --apply
    young: list[Orphan] = field(default_factory=list)  # written less than the minimum age ago: kept
    folders: int = 0  # upload folders seen
    referenced: int = 0  # of them, referenced by a version
    unmanaged: int = 0  # of them, in a hash folder without the plugin's manifest: never deleted


def make_plan(dirs: dict[str, HashDir], references: References, *, now: float, min_age_s: float) -> Plan:
    """Sort every upload folder into referenced, not the plugin's (no manifest), orphaned but younger than
    ``min_age_s`` (age: ``now`` minus the last write to the folder or its manifest), or orphaned and old enough."""
    plan = Plan(references, folders=sum(len(d.folders) for d in dirs.values()))
    for hash_dir in sorted(dirs):
        found = dirs[hash_dir]
        if found.manifest is None:
            plan.unmanaged += len(found.folders)
            continue
        manifest, stays, orphans = found.manifest, references.covers_dir(hash_dir), []
        for folder in sorted(found.folders.values(), key=lambda f: f.path):
            if references.covers(folder.path):
                plan.referenced, stays = plan.referenced + 1, True
                continue
            newest = max([b.last_modified for b in folder.blobs] + [manifest.last_modified])
            orphan = Orphan(folder.path, hash_dir, tuple(folder.blobs), None, newest)
            if now - newest < min_age_s:
                plan.young.append(orphan)
                stays = True
            else:
                orphans.append(orphan)
        if not found.folders and not stays:  # only the manifest is left (an upload that failed, a gc cut short)
            orphan = Orphan(hash_dir, hash_dir, (), manifest, manifest.last_modified)
            (plan.young if now - manifest.last_modified < min_age_s else plan.orphans).append(orphan)
            continue
        if orphans and not stays:
            last = orphans[-1]
            orphans[-1] = Orphan(last.path, hash_dir, last.blobs, manifest, last.newest)
        plan.orphans.extend(orphans)
    return plan
