"""The create protocol: files first, then a version number nobody else holds.

1. Hash the folder (the Azure ML SDK's content hash) and upload it to ``LocalUpload/<hash>/<folder>`` on the
   workspace blob store, unless that folder already carries the completion marker and still holds exactly these
   files (its manifest, names and sizes); the marker is written last, so a half-finished upload is never reused.
2. Under the model's write lease, read the container: its ``nextVersion`` is the number to take.
3. ``PUT`` the version with a fresh registration id in its properties. Other files already at that number
   (a writer that takes no lease) are refused by the service: take the next number.
4. ``GET`` it back: if the registration id is ours, the version is ours. If another writer's id is there, try
   the next number. If the PUT's outcome was lost (dropped answer, 5xx after the write), the same GET decides:
   ours → done; absent → PUT again; someone else's → next.
5. Stamp the container with the version's creation time (MLflow's last update of the model). The version exists
   by then: a failure here is logged, not raised, so a retry never makes a second version.

Steps 2-5 run under the model's write lease (:mod:`.azure.leases`), so this plugin's clients never race each
other for a number; the verification still guards against clients that do not take it. A version therefore never
exists without its files, and never carries two registrations.
"""

from __future__ import annotations

import logging
import posixpath
import uuid
from dataclasses import dataclass
from typing import Any, Optional

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ErrorCode

from .azure import errors as az
from .azure.blobs import UploadItem
from .azure.gateway import AzureMLGateway
from .content import FileChangedError, FolderRefused, FolderSnapshot, complete_digests, remember, sha256_hex, snapshot
from .mapping import PROP_REGISTRATION_ID, last_updated, registration_id, set_last_updated
from .progress import TransferProgress
from .sources import LocalModel
from .uri import DatastoreLocation

_logger = logging.getLogger(__name__)

UPLOAD_DATASTORE = "workspaceblobstore"  # the Azure ML SDK uploads local models there by name
ARTIFACT_ORIGIN = "LocalUpload"
MAX_ALLOCATION_ATTEMPTS = 20


MANIFEST_NAME = ".mlflow-manifest.json"


@dataclass(frozen=True)
class UploadedFolder:
    location: DatastoreLocation
    snapshot: FolderSnapshot
    reused: bool
    manifest_sha256: str


def manifest_blob(folder_path: str) -> str:
    """Where the per-file SHA-256 manifest of ``LocalUpload/<hash>/<folder>`` lives: ``LocalUpload/<hash>/``.

    Outside the model folder, and not a name the folder's prefix matches (the Azure ML SDK downloads
    by prefix), so SDK users never see it. The hash fixes the files, so one manifest serves any folder name.
    A folder at the container's root has its manifest at the root too.
    """
    parent = posixpath.dirname(folder_path.rstrip("/"))
    return f"{parent}/{MANIFEST_NAME}" if parent else MANIFEST_NAME


def upload_folder(gateway: AzureMLGateway, model: LocalModel, *, model_name: str) -> UploadedFolder:
    """Step 1: make ``LocalUpload/<hash>/<folder>`` hold exactly the folder's files, marker last.

    The bytes the upload sends must be the ones that were hashed (each file's own SHA-256, for the
    manifest, comes from the hashing read), or nothing is marked complete.
    """
    snap = folder_snapshot(model)
    location = DatastoreLocation(
        gateway.workspace, UPLOAD_DATASTORE, f"{ARTIFACT_ORIGIN}/{snap.content_hash}/{model.folder_name}"
    )
    folder = gateway.blob_folder(UPLOAD_DATASTORE)
    indicator = f"{location.path}/{snap.indicator}"
    if folder.is_complete(indicator):
        reused = complete_digests(snap.without_contents())
        manifest = reused.manifest()
        stored = folder.read(manifest_blob(location.path))
        mismatch = _stored_mismatch(folder, location.path, reused, manifest, stored)
        if mismatch is None:
            _logger.info("Model files already uploaded at %s; reusing them", location.path)
            if stored is None:  # an upload made by the Azure ML SDK, which writes no manifest: the content decides it
                folder.upload_bytes(manifest_blob(location.path), manifest, overwrite=False)
            return UploadedFolder(location, reused, reused=True, manifest_sha256=sha256_hex(manifest))
        # The path is content-addressed: left as it is, every later registration of these files would be broken.
        _logger.warning("The upload at %s does not hold these files (%s); uploading them again", location.path,
                        mismatch)
        wanted = {f"{location.path}/{f.relative_path}" for f in snap.files}
        for entry in folder.list(location.path):
            if entry.name not in wanted:
                folder.delete(entry.name)
    snap, manifest = send_folder(folder, snap, location.path)
    # Metadata as the SDK writes it; "version" is a placeholder there too until the version exists.
    folder.mark_complete(indicator, {"name": model_name, "version": str(uuid.uuid4())})
    return UploadedFolder(location, snap, reused=False, manifest_sha256=sha256_hex(manifest))


def folder_snapshot(model: LocalModel) -> FolderSnapshot:
    """The folder's files and content hash (``content.snapshot``); a file that changes while it is read is an
    ``az.IntegrityError``, a folder the policy refuses MLflow's own ``MlflowException`` (which reaches callers,
    and MLflow's server, as it is)."""
    try:
        return snapshot(model.path)
    except FileChangedError as exc:
        raise az.IntegrityError(str(exc)) from None
    except FolderRefused as exc:
        raise MlflowException(exc.message, error_code=ErrorCode.Value(exc.error_code)) from None


def send_folder(folder: Any, snap: FolderSnapshot, root: str) -> tuple[FolderSnapshot, bytes]:
    """Upload a folder's files under ``root`` in ``folder`` (a ``BlobFolder``), then its per-file SHA-256 manifest
    beside it (:func:`manifest_blob`); the snapshot with every digest, and the manifest's bytes. The bytes sent
    are checked against the hashing read (a large file's CRC-32, a small file's SHA-256); a file that changed
    since it was hashed is an ``az.IntegrityError``, and then no manifest is written. Workspaces and registries
    upload with it alike."""
    with TransferProgress("Uploading", len(snap.files)) as progress:
        kept = snap.contents  # small files' bytes, read for the content hash: sent as they are
        sent = folder.upload_files(
            (UploadItem(f.path, f"{root}/{f.relative_path}", f.size, f.sha256, kept.get(f.relative_path), f.crc32)
             for f in snap.files),
            progress=progress,
        )
    del kept
    snap = snap.without_contents()  # nothing holds the kept bytes any more
    try:
        snap = snap.with_digests({f.relative_path: sent[f"{root}/{f.relative_path}"] for f in snap.files})
    except FileChangedError as exc:
        raise az.IntegrityError(str(exc)) from None
    changed = snap.changed_files()
    if changed:
        raise az.IntegrityError(str(FileChangedError(changed[0].path)))
    manifest = snap.manifest()
    folder.upload_bytes(manifest_blob(root), manifest)
    remember(snap)
    return snap, manifest


def _stored_mismatch(
    folder: Any, path: str, snap: FolderSnapshot, manifest: bytes, stored: Optional[bytes]
) -> Optional[str]:
    """Why a completed upload at ``path`` cannot be reused for ``snap``, or None when it can.

    The completion marker says an upload finished, not that its blobs are still these files: anyone with the
    datastore's SAS can overwrite them afterwards. So the ``stored`` manifest must be this folder's (when there is
    one: the Azure ML SDK writes none), and the blobs under the folder exactly its files, at their sizes. Costs a
    manifest GET and one listing per 5,000 blobs. A file overwritten with other bytes of the same size, manifest
    untouched, is not seen here (that would take reading every file back); the manifest check of every download
    still refuses it.
    """
    if stored is not None and stored != manifest:
        return "its manifest lists other files"
    expected = {f"{path}/{f.relative_path}": f.size for f in snap.files}
    for entry in folder.list(path):
        size = expected.pop(entry.name, None)
        if size is None:
            return f"{entry.name!r} is not one of the files"
        if size != entry.size:
            return f"{entry.name!r} has {entry.size} bytes, not {size}"
    if expected:
        return f"{min(expected)!r} is missing"
    return None


def stamp_model(models: Any, name: str, container: dict[str, Any], version: dict[str, Any]) -> None:
    """Step 5: the model's last update is the new version's creation. The version is created already, so a
    failure leaves only the model's last update behind (a warning), never an error that invites a second version.
    ``models``: the gateway's model operations (a workspace's or a registry's)."""
    set_last_updated(container, last_updated(version))
    try:
        models.put_container(name, container, read_back=False)
    except az.AzureMLError as exc:
        _logger.warning("Version %s of model %s is registered, but the model's last update could not be written: %s",
                        version.get("name"), name, exc.message)


def next_version(container: dict[str, Any]) -> int:
    """The container's ``nextVersion`` (1 when absent or not an integer)."""
    value = ((container or {}).get("properties") or {}).get("nextVersion")
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return 1


def existing_version(models: Any, name: str, version: int) -> Optional[dict[str, Any]]:
    """The version as stored, or None when there is none (``models``: the gateway's model operations)."""
    try:
        return models.get_version(name, str(version))
    except az.NotFound:
        return None


def create_version(gateway: AzureMLGateway, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Steps 7-10 of the create protocol (docs/design.md): under the model's write lease, read the container,
    PUT ``body`` at its ``nextVersion``, verify it, then stamp the container with the version's creation time
    (MLflow moves a registered model's last update when a version is created). Returns the version as stored.

    ``nextVersion`` read under the lease counts every version the service has created (the Azure ML SDK trusts
    it the same way); a number taken all the same (a writer that takes no lease) is settled by the PUT's refusal
    of other files and by the verification. Raises ``az.NotFound`` when the model is gone, ``az.Conflict`` when
    no number could be had.
    """
    reg_id = str(uuid.uuid4())
    body["properties"].setdefault("properties", {})[PROP_REGISTRATION_ID] = reg_id
    with gateway.model_lease(name) as lease:
        container = gateway.models.get_container(name)
        candidate = next_version(container)
        for _ in range(MAX_ALLOCATION_ATTEMPTS):
            lease.keep()
            try:
                gateway.models.put_version(name, str(candidate), body)
            except az.AssetPathImmutable:
                # Another writer holds this number with other files.
                candidate += 1
                continue
            except (az.OutcomeUnknown, az.ServiceUnavailable, az.Throttled) as exc:
                _logger.warning("Outcome of creating %s/%s is unclear (%s); checking", name, candidate, exc)
            stored = existing_version(gateway.models, name, candidate)
            if stored is None:
                continue  # the PUT did not land: try the same number again
            if registration_id(stored) == reg_id:
                stamp_model(gateway.models, name, container, stored)
                return stored
            candidate += 1  # a racing writer took it
    raise az.Conflict(
        f"Could not allocate a version number for model {name!r} after {MAX_ALLOCATION_ATTEMPTS} attempts "
        "(many concurrent registrations?)"
    )
