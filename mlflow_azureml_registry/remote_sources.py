"""Sources already in Azure ML: a version of this workspace or registry (``models:/``, its download URI, Azure ML's
id), files on a workspace datastore, and a version of *another* workspace or registry, which is a promotion: its
files are copied and what MLflow knows about it comes along (docs/design.md, *Promotion*)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, ErrorCode

from . import mapping, sources, targets
from .azure.workspace import Target, WorkspaceRef
from .errors import azure_errors
from .uri import DatastoreLocation, InvalidUri, VersionFiles, parse_artifact_uri, parse_version_alias

Json = dict[str, Any]


def resolve(source: Any, assets: Any, target: Target, newest: Callable[[str, str], Json]) -> Optional[
    sources.RemoteModel
]:
    """Where the files of ``source`` are, when they are in Azure ML already: this registry's ``models:/`` URIs,
    ``azureml-registry://`` artifact URIs (a datastore path, or a version of this or another workspace or registry,
    by number or ``@alias``), ``azureml://registries/...`` ids, datastore and job-output paths and
    ``azureml:<name>:<version>`` (through ``assets``, the store's own workspace or registry, named ``target``).
    ``newest(name, stage)`` answers ``models:/<name>/<stage>``. None for other sources. Raises MLflow's errors."""
    if not isinstance(source, str):
        return None
    files = None
    if source.startswith("azureml-registry:"):
        with azure_errors():
            alias = parse_version_alias(source)
            if alias is not None:
                other, model, name = alias
                try:
                    files = VersionFiles(other, model, targets.assets_for(other).alias_version(model, name))
                except MlflowException as exc:
                    raise MlflowException(
                        f"{exc.message} (source {source}: model {model!r} of {other.kind} {other.name!r})",
                        error_code=ErrorCode.Value(exc.error_code),
                    ) from None
            else:
                files = parse_artifact_uri(source)
        if isinstance(files, DatastoreLocation):
            return sources.RemoteModel(files)
    elif sources.registry_asset(source) is not None:
        files = sources.registry_asset(source)
    elif source.startswith("azureml:"):
        return assets.azureml_source(source)
    if files is not None:
        return _version_files(files, source, assets, target)
    parsed = sources.parse_models_uri(source)
    if parsed is None:
        return None
    name, version, stage, alias = parsed
    if alias is not None:
        resource = assets.version(name, assets.alias_version(name, alias))
    elif version is not None:
        resource = assets.version(name, version)
    else:
        resource = newest(name, stage)
    return remote_of(assets, name, resource)


def _version_files(files: VersionFiles, source: str, assets: Any, target: Target) -> sources.RemoteModel:
    """A version named by its workspace or registry: here, its files; elsewhere, a promotion (its files, read
    through the version's own artifact URI, and the version as read, for :func:`promoted`)."""
    if files.path or not files.version:
        raise MlflowException(
            f"Source {source!r} does not name a model version; name the version itself "
            "(.../models/<name>/versions/<version> or .../models/<name>@<alias>)",
            error_code=INVALID_PARAMETER_VALUE,
        )
    if files.target == target:
        return remote_of(assets, files.model_name, assets.version(files.model_name, files.version))
    other = targets.assets_for(files.target)
    resource = other.version(files.model_name, files.version)
    origin = VersionFiles(files.target, files.model_name, str(resource.get("name")))
    return dataclasses.replace(remote_of(other, files.model_name, resource), location=origin, origin=resource)


def remote_of(owner: Any, name: str, resource: Json) -> sources.RemoteModel:
    """A version's files (``owner``: its workspace's or registry's asset layer) with its model type and flavors."""
    props = resource.get("properties") or {}
    try:
        location = owner.files(name, resource)
    except InvalidUri as exc:
        raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
    model_type = props.get("modelType") or mapping.MODEL_TYPE_CUSTOM
    return sources.RemoteModel(location, model_type, props.get("flavors") or None)


def promoted(
    remote: sources.RemoteModel, description: Optional[str], tags: dict[str, str], facts: Json
) -> tuple[Optional[str], dict[str, str], Json]:
    """What a version promoted from another workspace or registry keeps: its description, tags, run, source and
    logged model (each unless the call gives its own), and where it came from (``mlflow.promotedFrom``)."""
    props = remote.origin.get("properties") or {}
    known = props.get("properties") or {}
    kept_tags = {**mapping.user_tags(dict(props.get("tags") or {})), **tags}
    kept = dict(facts)
    # An empty value is "not given": MLflow's server passes "" for every field a REST call leaves out.
    for key in (mapping.PROP_RUN_ID, mapping.PROP_RUN_LINK, mapping.PROP_MODEL_ID):
        if not kept.get(key) and known.get(key):
            kept[key] = known[key]
    if known.get(mapping.PROP_SOURCE):
        kept[mapping.PROP_SOURCE] = _qualified(known[mapping.PROP_SOURCE], remote.location.target)
    kept[mapping.PROP_PROMOTED_FROM] = remote.location.asset_id
    return (description or props.get("description")), kept_tags, kept


def _qualified(source: str, origin: Any) -> str:
    """A source relative to the origin's workspace (``azureml://datastores/...``) with that workspace named, so it
    still says where the files came from in another workspace or registry."""
    prefix = "azureml://datastores/"
    if isinstance(origin, WorkspaceRef) and source.startswith(prefix):
        return f"{origin.asset_prefix}/datastores/{source[len(prefix):]}"
    return source
