"""``mlflow-azureml-registry gc [REGISTRY_URI] [--apply] [--min-age HOURS]``: reclaim upload folders that no model
version references.

Deleting a model version deletes Azure ML's record, not its files: ``LocalUpload/<hash>/<folder>`` stays on the
workspace's upload datastore (``workspaceblobstore``), and content addressing means another registration may use it
again. ``gc`` lists the folders no version of any model references (:mod:`.storage_survey`: every version, archived
ones included, of every model, whoever made it; a version naming a file inside a folder, or a folder above it,
references the folder), with their sizes; ``--apply`` deletes them, every blob under the folder and the hash's
manifest when nothing else of that hash stays.

What it may delete: only folders whose hash folder holds the plugin's manifest (``.mlflow-manifest.json``), that is
files the plugin uploaded, or an Azure ML SDK upload the plugin registered (and gave a manifest). The Azure ML SDK
uploads models, data assets, job code and environment contexts to the same ``LocalUpload/<hash>/`` layout and
records the kind of asset nowhere in storage, so folders without the manifest are never touched (counted as "not
the plugin's"): gc cannot tell an orphaned model from a data asset's files. One case it cannot rule out: a data
asset or job made from a folder with exactly the same files (same hash) as a model the plugin registered shares
that upload; gc sees only model versions, so once those are deleted it deletes the shared files too.

Registrations in flight. The create protocol uploads (or reuses) the folder *before* it takes the model's write
lease and creates the version (docs/design.md, steps 1-6, then 7-10), so at any moment a folder may be freshly
uploaded and not referenced yet, or an old orphan may have just passed a registration's reuse check (completion
marker, manifest, file list) and be about to get a version. So ``--apply``:

1. keeps every folder written less than ``--min-age`` hours ago (default 24; age from the newest blob of the folder
   and of its hash's manifest, as storage dated them, against this machine's clock: keep the age well above any
   clock skew): a fresh upload's version comes seconds later;
2. *retires* each old orphan first: removes the completion marker from its metadata (only if the blob is still as
   listed, ``If-Match``). A registration that checks the folder from then on finds no marker and uploads the files
   again, which it is allowed to do at any time;
3. waits :data:`RETIRE_GRACE_S` seconds (longer than a registration takes between its last look at the folder and
   taking the model's lease, retries included), then waits for a moment when **no model's write lease is held**
   (``mlflow-azureml-registry/leases/*``, read from the lease states of one listing; at most :data:`QUIET_WAIT_S`
   seconds, the time a writer itself waits for a lease, else nothing is deleted and gc says to try again). A
   registration that passed the reuse check before step 2 has by then created its version or holds its lease;
   a lease held means gc waits. Waiting for a quiet moment of the whole workspace, rather than skipping folders,
   is the only sound choice: a lease names a model, not the folder its registration uses;
4. reads every version again (the first reading is over a minute old by now) and lists each hash folder again: a folder
   referenced now, or written since it was listed, is kept and its marker put back;
5. deletes each blob only if it is still the one listed (``If-Match`` on its ETag): a blob a registration wrote
   after the listing is never deleted, and the folder is then left to that registration (which rewrites every file
   and the marker last). The manifest goes last, and only when every other entry of its hash went.

What remains possible: a writer that spends longer than the grace period between its last look at the folder and
creating its version, while no lease is held (a process stalled for a minute; this plugin going on without a lease
because storage refused it; another Azure ML client, which takes no lease, stalled as long), creates a version over
deleted files. With the default minimum age, nothing written in the last 24 h is deleted at all.

Workspaces only: an Azure ML registry keeps each version's files in storage Azure ML manages for it (a container per
version from ``tempdatarefs``, reached only through a short-lived SAS for that version: docs/research-registries.md,
Q3), so no client can list it; whether Azure ML removes a deleted version's files is not documented (Q7).
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Optional

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, TEMPORARILY_UNAVAILABLE, UNAUTHENTICATED

from . import session, settings
from .azure import blob_scan
from .azure.errors import AzureMLError, Unauthenticated
from .azure.leases import LEASE_PREFIX
from .errors import azure_errors
from .registration import MANIFEST_NAME, UPLOAD_DATASTORE
from .storage_survey import MARKER_KEY, Orphan, Plan, in_folder, make_plan, model_references, upload_dirs
from .uri import InvalidUri, parse_registry_uri, quote_input

_logger = logging.getLogger(__name__)

DEFAULT_MIN_AGE_HOURS = 24.0
RETIRE_GRACE_S = 60.0
"""Seconds between retiring the orphans and the final checks. After its last look at the folder a registration sends
one lease request (the blob client backs off 3, 5, 9, 17 s between retries of a failed one): 60 s covers that,
retries included, with room for a slow machine."""
QUIET_WAIT_S = 120.0
"""How long to wait for a moment with no model lease held (a writer of this plugin waits as long for a lease)."""
QUIET_POLL_S = 0.25


def _now() -> float:
    """This machine's clock, epoch seconds (a seam for tests)."""
    return time.time()


def _grace() -> None:
    """Step 3's pause after retiring the orphans (a seam for tests)."""
    time.sleep(RETIRE_GRACE_S)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mlflow-azureml-registry gc",
        description="List (with --apply, delete) upload folders on a workspace's datastore that no model version "
        "references. Only folders the plugin uploaded or registered (those with its manifest) are considered.",
    )
    p.add_argument("registry_uri", nargs="?", metavar="REGISTRY_URI",
                   help="a workspace's registry URI (default: $MLFLOW_REGISTRY_URI)")
    p.add_argument("--apply", action="store_true", help="delete the orphaned folders (default: only list them)")
    p.add_argument("--min-age", type=float, default=DEFAULT_MIN_AGE_HOURS, metavar="HOURS",
                   help="keep folders written less than HOURS ago (default %(default)g); 0 considers every folder")
    return p


def main(argv: Optional[list[str]] = None) -> int:
    """The command: 0 when done (also a dry run), 2 for bad input (arguments, URI, a registry), 1 for any other
    failure (Azure's answer, write leases held throughout, ...), with the reason on stderr."""
    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse has printed the usage and the error
        return int(exc.code or 0)
    try:
        if not (math.isfinite(args.min_age) and args.min_age >= 0):
            raise _invalid(f"--min-age must be a number of hours >= 0, got {args.min_age}")
        target = workspace_of(args.registry_uri or os.environ.get("MLFLOW_REGISTRY_URI"))
        with azure_errors():
            try:
                gateway = session.gateway(target)
                plan = survey(gateway, min_age_s=args.min_age * 3600.0, now=_now())
                print_plan(gateway, plan, args.min_age, apply=args.apply)
                if args.apply and plan.orphans:
                    print_outcome(apply(gateway, plan))
            except Unauthenticated as exc:  # the doctor's advice for the credential in use (doctor_advice.py)
                raise _refused_token(exc) from None
    except MlflowException as exc:
        print(f"mlflow-azureml-registry gc: {exc.message}", file=sys.stderr)
        return 2 if exc.error_code == "INVALID_PARAMETER_VALUE" else 1
    except KeyboardInterrupt:
        print("mlflow-azureml-registry gc: interrupted (folders not deleted yet keep their files)", file=sys.stderr)
        return 130
    return 0


def _refused_token(exc: Unauthenticated) -> MlflowException:
    from .credentials import redact, resolve
    from .doctor_advice import unauthenticated_fix

    fix = unauthenticated_fix(exc, resolve(settings.resource_manager_url()), "workspace")
    return MlflowException(redact(f"Azure ML: {str(exc).rstrip('.')}. To fix: {fix}."), error_code=UNAUTHENTICATED)


def _invalid(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def workspace_of(uri: Optional[str]) -> Any:
    """The workspace a registry URI names. Raises ``MlflowException`` (``INVALID_PARAMETER_VALUE``) with no URI, a
    malformed one, or one naming an Azure ML registry (see the module docstring for why)."""
    if not uri:
        raise _invalid("Give a workspace's registry URI (azureml-registry://subscriptions/<subscription-id>/"
                       "resourceGroups/<resource-group>/workspaces/<workspace>) or set MLFLOW_REGISTRY_URI")
    try:
        target = parse_registry_uri(uri)
    except InvalidUri as exc:
        raise _invalid(str(exc)) from None
    if target.kind != "workspace":
        raise _invalid(
            f"gc works on Azure ML workspaces only, and {quote_input(uri)} names the Azure ML registry "
            f"{target.name!r}. A registry keeps each version's files in storage Azure ML manages for it (a container "
            "per version, reached only through a short-lived SAS for that version), which no client can list; what "
            "becomes of a deleted version's files there is Azure ML's to decide (not documented). Run gc with a "
            "workspace's registry URI."
        )
    return target


def survey(gateway: Any, *, min_age_s: float, now: float) -> Plan:
    """List the upload folders, then every version's files (a version created in between references a folder
    already listed, so it is seen), and plan (:func:`.storage_survey.make_plan`). Raises the gateway's errors."""
    dirs = upload_dirs(gateway.container_client(UPLOAD_DATASTORE))
    references = model_references(gateway.models, gateway.workspace)
    return make_plan(dirs, references, now=now, min_age_s=min_age_s)


@dataclass
class Outcome:
    deleted: list[tuple[str, int, int, int]] = field(default_factory=list)
    """(path, the folder's own files, their bytes, bytes of the hash folder's manifest deleted with it or 0)."""
    kept: list[tuple[str, str]] = field(default_factory=list)  # (path, why)

    @property
    def reclaimed(self) -> int:
        return sum(size + manifest for _, _, size, manifest in self.deleted)


def apply(gateway: Any, plan: Plan) -> Outcome:
    """Delete ``plan``'s orphans by the protocol of the module docstring (retire, grace, quiet moment, re-check,
    conditional deletes). Raises ``MlflowException`` (``TEMPORARILY_UNAVAILABLE``) when write leases stay held, with
    nothing deleted; markers of folders left untouched are put back whatever happens."""
    container = gateway.container_client(UPLOAD_DATASTORE)
    outcome, live = Outcome(), []
    retired: dict[str, tuple[blob_scan.StoredBlob, str]] = {}  # marker blob -> (as listed, ETag once retired)
    touched: set[str] = set()  # folders gc deleted something from: their marker is never put back
    for orphan in plan.orphans:
        marker = orphan.marker
        if marker is not None:
            unmarked = {k: v for k, v in marker.metadata.items() if k != MARKER_KEY}
            etag = blob_scan.set_metadata_if_unchanged(container, marker, unmarked)
            if etag is None:
                outcome.kept.append((orphan.path, "written to since it was listed"))
                continue
            retired[marker.name] = (marker, etag)
        live.append(orphan)
    if not live:
        return outcome
    try:
        _grace()
        wait_for_quiet(container)
        references = model_references(gateway.models, gateway.workspace)
        with ThreadPoolExecutor(max_workers=settings.transfer_concurrency()) as pool:
            for hash_dir in sorted({o.hash_dir for o in live}):
                group = [o for o in live if o.hash_dir == hash_dir]
                _delete_hash_dir(container, pool, group, references, retired, touched, outcome)
    finally:
        for name, (listed, etag) in retired.items():
            if not any(in_folder(name, path) for path in touched):
                _put_back(container, replace(listed, etag=etag), listed.metadata)
    return outcome


def _put_back(container: Any, marker: blob_scan.StoredBlob, metadata: dict[str, str]) -> None:
    """The completion marker of a folder gc kept whole (if nobody wrote the blob since gc retired it). A failure
    only costs a re-upload: the next registration of those files finds no marker and uploads them again."""
    try:
        blob_scan.set_metadata_if_unchanged(container, marker, metadata)
    except AzureMLError as exc:
        _logger.warning("Could not put back the completion marker of %s (%s); the next registration of these "
                        "files uploads them again", marker.name, exc)


def _delete_hash_dir(
    container: Any, pool: ThreadPoolExecutor, group: list[Orphan], references: Any,
    retired: dict[str, tuple[blob_scan.StoredBlob, str]], touched: set[str], outcome: Outcome,
) -> None:
    """The orphans of one hash folder, checked against what it holds now; then its manifest, if it goes."""
    hash_dir = group[0].hash_dir
    current = {b.name: b.etag for b in blob_scan.list_blobs(container, hash_dir + "/")}
    gone: set[str] = set()
    whole = True  # every orphan of the hash folder deleted
    for orphan in (o for o in group if o.blobs):  # (an orphan without blobs is a manifest alone: below)
        expected = {b.name: retired[b.name][1] if b.name in retired else b.etag for b in orphan.blobs}
        if references.covers(orphan.path):
            outcome.kept.append((orphan.path, "a model version references it now"))
        elif {n: e for n, e in current.items() if in_folder(n, orphan.path)} != expected:
            outcome.kept.append((orphan.path, "written to since it was listed"))
        else:
            touched.add(orphan.path)
            results = list(pool.map(functools.partial(blob_scan.delete_if_unchanged, container), expected,
                                    expected.values()))
            changed = results.count(blob_scan.CHANGED)
            gone.update(n for n, r in zip(expected, results) if r != blob_scan.CHANGED)
            if not changed:
                outcome.deleted.append((orphan.path, orphan.files, orphan.size, 0))
                continue
            outcome.kept.append((orphan.path, f"written to while it was deleted ({changed} of {len(expected)} files "
                                              "kept; the registration writing it uploads every file again)"))
        whole = False
    carrier = next((o for o in group if o.manifest is not None), None)
    if carrier is None or carrier.manifest is None or not whole:
        return
    manifest, why = carrier.manifest, None
    if references.covers_dir(hash_dir):
        why = "a model version references it now"
    elif set(current) - gone != {manifest.name} or current.get(manifest.name) != manifest.etag:
        why = "written to since it was listed"  # something else arrived in the hash folder, or a new manifest
    elif blob_scan.delete_if_unchanged(container, manifest.name, manifest.etag) == blob_scan.CHANGED:
        why = "written to while it was deleted"
    if why is not None:  # the manifest stays (a folder deleted before it is reported as deleted)
        if not carrier.blobs:
            outcome.kept.append((hash_dir, why))
        return
    if not carrier.blobs:
        outcome.deleted.append((hash_dir, 0, 0, manifest.size))
        return
    for i, (path, files, size, _) in enumerate(outcome.deleted):
        if path == carrier.path:
            outcome.deleted[i] = (path, files, size, manifest.size)


def wait_for_quiet(container: Any) -> None:
    """Return at a moment when no model's write lease is held; after :data:`QUIET_WAIT_S` seconds without one,
    raise ``MlflowException`` (``TEMPORARILY_UNAVAILABLE``) naming the models."""
    deadline = time.monotonic() + QUIET_WAIT_S
    while True:
        held = blob_scan.held_leases(container, LEASE_PREFIX)
        if not held:
            return
        if time.monotonic() >= deadline:
            models = ", ".join(sorted(repr(n[len(LEASE_PREFIX):]) for n in held)[:10])
            raise MlflowException(
                f"Write leases of models were held throughout {QUIET_WAIT_S:.0f} s (now: {models}): registrations or "
                "other writes are running. Nothing was deleted; run gc again at a quieter moment.",
                error_code=TEMPORARILY_UNAVAILABLE,
            )
        time.sleep(QUIET_POLL_S)


def human(size: int) -> str:
    """``size`` bytes in binary units (``1.5 MiB``)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # not reached


def _when(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _counted(files: int, size: int, manifest: int) -> str:
    """A folder's own files and bytes, then the manifest deleted with it (the same folder reads the same in every
    list; the manifest is named apart)."""
    if not files:
        return f"only its manifest {MANIFEST_NAME} is left, {manifest} bytes"
    own = f"{_n(files, 'file')}  {size} bytes"
    return f"{own} (and the hash folder's manifest, {manifest} bytes)" if manifest else own


def _line(orphan: Orphan) -> str:
    counted = _counted(orphan.files, orphan.size, orphan.manifest_size)
    return f"  {orphan.path}  {counted}  last written {_when(orphan.newest)}"


def print_plan(gateway: Any, plan: Plan, min_age_h: float, *, apply: bool) -> None:
    """The survey, on stdout: what would be (or is about to be) deleted, with sizes, and what is kept and why."""
    refs = plan.references
    datastore = gateway.datastore(UPLOAD_DATASTORE)
    print(f"Workspace {gateway.workspace.name}, datastore {UPLOAD_DATASTORE} (container {datastore.container_name}): "
          f"{_n(plan.folders, 'upload folder')} under LocalUpload/; {_n(refs.versions, 'model version')}, which "
          f"reference {plan.referenced} of the plugin's folders.")
    total = sum(o.reclaimed for o in plan.orphans)
    print(f"Counted per folder: its own files and bytes; a hash folder's manifest ({MANIFEST_NAME}) is named apart, "
          "and goes with the last folder of its hash.")
    if plan.orphans:
        print(f"Orphaned upload folders written {min_age_h:g} h or more ago (no model version references them):")
        for orphan in plan.orphans:
            print(_line(orphan))
    verb = "to delete" if apply else "would be deleted; run with --apply to delete them"
    print(f"{_n(len(plan.orphans), 'folder')}, {total} bytes ({human(total)}, manifests included) {verb}.")
    if plan.young:
        print(f"Kept, orphaned but written less than {min_age_h:g} h ago (a registration may be about to use them):")
        for orphan in plan.young:
            print(_line(orphan))
    if plan.unmanaged:
        print(f"Not considered: {_n(plan.unmanaged, 'upload folder')} without the plugin's manifest (the Azure ML "
              "SDK's own uploads of models, data assets, job code, environments: gc cannot tell them apart).")
    if refs.unplaced:
        print(f"{_n(refs.unplaced, 'model version')} keep files outside any datastore path (not LocalUpload folders).")


def print_outcome(outcome: Outcome) -> None:
    for path, files, size, manifest in outcome.deleted:
        print(f"Deleted {path} ({_counted(files, size, manifest).replace('  ', ', ')})")
    for path, why in outcome.kept:
        print(f"Kept {path}: {why}")
    print(f"Reclaimed {_n(len(outcome.deleted), 'folder')}, {outcome.reclaimed} bytes ({human(outcome.reclaimed)}).")
