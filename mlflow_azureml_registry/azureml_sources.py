"""Sources already in Azure ML that the gateway of the store's own workspace resolves: datastore paths, job
outputs and ``azureml:<name>:<version>`` assets (:func:`azureml_source`), and what their files are
(:func:`describe_remote`). Their shapes are checked by :mod:`.source_checks`; the sources that name a version of a
workspace or registry are :mod:`.remote_sources`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import yaml
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST

from .mapping import flavors_from_mlmodel, version_location
from .source_checks import ASSET_SOURCE, DATASTORE_SOURCE, JOB_OUTPUT, check_azureml
from .validation import short


@dataclass(frozen=True)
class RemoteModel:
    """Model files already on a workspace datastore, and what Azure ML knows about them."""

    location: Any  # uri.DatastoreLocation
    model_type: Optional[str] = None  # None: decide from the files (MLmodel present or not)
    flavors: Optional[dict[str, Any]] = None
    referenced: bool = False  # a datastore or job path: not content-addressed, may change under the version
    origin: Optional[dict[str, Any]] = None  # a version of another workspace or registry (promotion): as read


def azureml_source(source: str, gateway: Any) -> Optional[RemoteModel]:
    """Resolve ``azureml://datastores/...``, ``azureml://jobs/.../outputs/...`` and ``azureml:<name>:<version>``.

    ``gateway`` is the registry workspace's gateway (short forms are relative to it). None for other URIs.
    """
    from .azure import errors as az
    from .uri import DatastoreLocation, parse_asset_uri, workspace_ref

    check_azureml(source)
    match = DATASTORE_SOURCE.match(source)
    if match:
        workspace = gateway.workspace
        if match["sub"]:
            workspace = workspace_ref(match["sub"], match["rg"], match["ws"], uri=source)
        return RemoteModel(DatastoreLocation(workspace, match["ds"], match["path"].strip("/")), referenced=True)
    match = JOB_OUTPUT.match(source)
    if match:
        try:
            job = gateway.jobs.get(match["job"])
        except az.NotFound:
            raise MlflowException(f"Job {match['job']!r} of source {short(source)} does not exist in this workspace",
                                  error_code=RESOURCE_DOES_NOT_EXIST) from None
        outputs = (job.get("properties") or {}).get("outputs") or {}
        output = outputs.get(match["output"])
        if output is None:
            raise MlflowException(
                f"Job {match['job']!r} has no output {match['output']!r} "
                f"(it has: {', '.join(sorted(outputs)) or 'none'})",
                error_code=RESOURCE_DOES_NOT_EXIST,
            )
        # An output without an explicit uri lands at the SDK's default place on the default datastore.
        base = output.get("uri") or f"azureml://datastores/workspaceblobstore/paths/azureml/{match['job']}/{match['output']}/"
        location = parse_asset_uri(base, gateway.workspace)
        return RemoteModel(location.child(match["path"] or ""), referenced=True)
    match = ASSET_SOURCE.match(source)
    if match:
        name = match["name"]
        try:
            if match["label"]:
                newest = next(iter(gateway.models.list_versions(name, list_view_type="ActiveOnly",
                                                                  order_by="createdtime desc", top=1)), None)
                if newest is None:
                    raise az.NotFound(f"Model {name!r} has no versions")
                resource = newest
            else:
                resource = gateway.models.get_version(name, match["version"])
        except az.NotFound:
            raise MlflowException(
                f"Model asset of source {short(source)} does not exist", error_code=RESOURCE_DOES_NOT_EXIST
            ) from None
        props = resource.get("properties") or {}
        return RemoteModel(version_location(resource, gateway.workspace), props.get("modelType"),
                           props.get("flavors") or None)
    return None


def describe_remote(remote: RemoteModel, folder: Any) -> RemoteModel:
    """Fill model type and flavors from the files when unknown: ``MLmodel`` present means an MLflow model."""
    if remote.model_type is not None:
        return remote
    blobs = list(folder.list(remote.location.path))
    if not blobs:
        raise MlflowException(f"No files at {remote.location.asset_uri}", error_code=RESOURCE_DOES_NOT_EXIST)
    raw = folder.read(f"{remote.location.path}/MLmodel")
    if raw is None:
        return RemoteModel(remote.location, "custom_model", None, remote.referenced)
    try:
        data = yaml.safe_load(raw) or {}
    except yaml.YAMLError as exc:
        raise MlflowException(f"Could not read MLmodel at {remote.location.asset_uri}: {exc}",
                              error_code=INVALID_PARAMETER_VALUE) from None
    return RemoteModel(remote.location, "mlflow_model", flavors_from_mlmodel(data), remote.referenced)
