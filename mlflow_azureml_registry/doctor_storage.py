"""The doctor's storage check (6 of :mod:`.doctor`): blobs through the storage account's firewall and with the
credential the plugin would use. A workspace: a probe blob written to the upload datastore, read back and removed.
A registry: a version's files listed through a data reference (writing would need a pending upload, which Azure ML
reserves for one new version: not a dry run).
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any, Optional

from . import settings
from .azure import errors as az
from .azure.workspace import RegistryRef
from .doctor import FAIL, OK, SKIP, Context, Result
from .doctor_advice import is_timeout
from .doctor_checks import UPLOAD_DATASTORE, failure_text

PROBE_PREFIX = "mlflow-azureml-registry-doctor"
"""Folder of the probe blobs (outside ``LocalUpload/``: never taken for a model's files)."""
MODELS_LOOKED_AT = 200
VERSION_LISTS = 5
"""A registry's read probe looks for a version among at most this many models, listing versions of at most
:data:`VERSION_LISTS` of them (containers normally say their ``latestVersion``)."""
STORAGE_FIXES = {
    "AuthorizationFailure": "the storage account's network rules refuse this machine: in the account's Networking, "
    "allow this machine's public IP address or its virtual network, or reach the account through a private endpoint "
    "(with DNS resolving <account>.blob.<suffix> to it)",
    "AuthorizationPermissionMismatch": "the credential may not do this: an identity needs Storage Blob Data "
    "Contributor on the storage account (Reader to load models only); a SAS needs read, write, delete and list",
    "AuthorizationSourceIPMismatch": "the datastore's SAS is limited to other IP addresses: widen its IP range",
    "AuthenticationFailed": "storage refused the signature or token: check the clock (check 7), and that the "
    "account key was not rotated after the datastore was set up (update the datastore's credentials)",
    "KeyBasedAuthenticationNotPermitted": "the account refuses keys and SAS: make the datastore identity-based and "
    "give the identity Storage Blob Data Contributor on the account",
}


def check_storage(ctx: Context) -> Result:
    """A workspace: write a probe blob to the upload datastore, read it back, remove it. A registry: list a
    version's files through a data reference (a write would need a pending upload: not a dry run)."""
    if isinstance(ctx.values["target"], RegistryRef):
        return _registry_storage(ctx)
    try:
        settings.storage_account_url_template()
    except settings.SettingError:  # the plugin refuses it too; here, said with what the plugin does with it
        template = os.environ.get(settings.STORAGE_ACCOUNT_URL)
        return Result(FAIL, f"{settings.STORAGE_ACCOUNT_URL} is {template!r}, which has no {{account}}: the plugin "
                            "puts the datastore's storage account name there, so every blob request would go to that "
                            "one URL", f"write the account's place as {{account}} (e.g. https://{{account}}.blob.core."
                            f"windows.net), or unset {settings.STORAGE_ACCOUNT_URL} for the datastore's own")
    gateway = ctx.values["gateway"]
    try:
        folder = gateway.blob_folder(UPLOAD_DATASTORE)
    except az.AzureMLError as exc:
        return Result(FAIL, f"no blob client for {UPLOAD_DATASTORE}: {failure_text(exc)}", "see check 5")
    name = f"{PROBE_PREFIX}/{uuid.uuid4().hex}"
    data = f"mlflow-azureml-registry doctor probe {time.time():.0f}".encode()
    where = folder.url.split("?", 1)[0]
    try:
        folder.upload_bytes(name, data, overwrite=False)
    except az.AzureMLError as exc:
        if is_timeout(exc):  # no listing: it would wait as long again for the same endpoint
            return Result(FAIL, f"probe blob write at {where} timed out (no answer): {failure_text(exc)}",
                          _storage_fix(exc))
        return Result(FAIL, f"probe blob write at {where} refused{_try_listing(folder)}: {failure_text(exc)}",
                      _storage_fix(exc))
    problems: list[tuple[str, az.AzureMLError]] = []
    back = None
    try:
        back = folder.read(name, limit=len(data) + 1)
    except az.AzureMLError as exc:
        problems.append(("read back", exc))
    try:
        folder.delete(name)
    except az.AzureMLError as exc:
        problems.append((f"removal (the probe stays: delete {name!r})", exc))
    if problems:
        step, exc = problems[0]
        outcome = "timed out (no answer)" if is_timeout(exc) else "refused"
        return Result(FAIL, f"probe blob written at {where}; its {step} {outcome}: {failure_text(exc)}",
                      _storage_fix(exc))
    if back != data:
        return Result(FAIL, f"the probe blob read back from {where} differs from what was written",
                      "something between this machine and the storage account changes blobs: check proxies")
    return Result(OK, f"wrote, read back and removed a probe blob at {where}")


def _try_listing(folder: Any) -> str:
    try:
        next(iter(folder.list_names(PROBE_PREFIX)), None)
    except az.AzureMLError as exc:
        return f" (listing refused too{', ' + exc.code if exc.code else ''})"
    return " (reads work: listing the container did)"


def _storage_fix(exc: az.AzureMLError) -> str:
    if exc.code in STORAGE_FIXES:
        return STORAGE_FIXES[exc.code]
    if exc.status is None:
        if is_timeout(exc):
            return ("the storage endpoint accepts connections and does not answer: check the network path to it "
                    "(a proxy, a firewall that drops rather than refuses), and MLFLOW_AZUREML_STORAGE_ACCOUNT_URL if "
                    "you set it")
        return ("check the network path to the storage account: DNS (a private endpoint), HTTPS_PROXY/NO_PROXY, "
                "REQUESTS_CA_BUNDLE, and MLFLOW_AZUREML_STORAGE_ACCOUNT_URL if you set it")
    return "see the message; the storage account's Networking and the identity's Storage Blob Data roles decide"


def _registry_storage(ctx: Context) -> Result:
    gateway = ctx.values["gateway"]
    no_write = ("write not probed: a registry's upload storage is a pending upload reserved for one new version "
                "(PUT tempdatarefs), not a dry run")
    try:
        found = _a_registry_version(gateway.models)
        if found is None:
            return Result(SKIP, f"the registry holds no model version to read through a data reference; {no_write}")
        name, version, model_uri = found
        reference = gateway.data_reference(name, version, model_uri)
        ctx.secrets.append(reference.sas_uri.split("?", 1)[-1])
        folder = gateway.sas_folder(reference.sas_uri)
        next(iter(folder.list_names("")), None)
    except az.AzureMLError as exc:
        return Result(FAIL, f"reading a model version's files through a data reference: {failure_text(exc)}",
                      _storage_fix(exc))
    where = reference.blob_uri.split("?", 1)[0]
    return Result(OK, f"read: listed the files of model {name!r} version {version} through a data reference "
                      f"({where}); {no_write}")


def _a_registry_version(models: Any) -> Optional[tuple[str, str, Optional[str]]]:
    """(model, version, ``modelUri``) of a version in the registry: the ``latestVersion`` of the newest models
    that have one (a container without the field: its newest version listed, for at most :data:`VERSION_LISTS`
    models), among the first :data:`MODELS_LOOKED_AT` models listed; None when there is none."""
    lists = 0
    for count, container in enumerate(models.list_containers()):
        if count >= MODELS_LOOKED_AT:
            break
        name, props = str(container.get("name")), container.get("properties") or {}
        if "latestVersion" in props and not props["latestVersion"]:
            continue  # no versions
        if props.get("latestVersion"):
            try:
                resource = models.get_version(name, str(props["latestVersion"]))
            except az.NotFound:
                continue
        elif lists < VERSION_LISTS:
            lists += 1
            resource = next(iter(models.list_versions(name, order_by="createdtime desc", top=1)), None)
            if resource is None:
                continue
        else:
            continue
        version = str(resource.get("id", "")).rsplit("/versions/", 1)[-1]
        return name, version, (resource.get("properties") or {}).get("modelUri") or None
    return None
