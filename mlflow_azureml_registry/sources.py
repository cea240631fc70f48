"""Resolve the ``source`` of ``create_model_version`` to a folder on local disk.

Local paths and ``file://`` are used in place; every other MLflow URI (``runs:/``, ``models:/m-...``,
any artifact URI) is downloaded through MLflow itself, against the store's tracking URI, so a source
on any tracking server works.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote, urlparse

import yaml
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, NOT_IMPLEMENTED, RESOURCE_DOES_NOT_EXIST

from .mapping import flavors_from_mlmodel, version_location

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
REGISTERED_MODEL_META = "registered_model_meta"


@dataclass(frozen=True)
class LocalModel:
    path: Path
    folder_name: str  # the last segment of the upload path, as the Azure ML SDK names it

    @property
    def is_mlflow_model(self) -> bool:
        return (self.path / "MLmodel").is_file()

    @property
    def model_type(self) -> str:
        """Azure ML's ``modelType``: MLflow folders are ``mlflow_model``, anything else ``custom_model``."""
        return "mlflow_model" if self.is_mlflow_model else "custom_model"

    @property
    def flavors(self) -> Optional[dict[str, Any]]:
        """The ``MLmodel`` flavors in the REST shape, or None for custom models."""
        if not self.is_mlflow_model:
            return None
        mlmodel = self.path / "MLmodel"
        try:
            with open(mlmodel, encoding="utf-8") as handle:
                data = yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise MlflowException(f"Could not read {mlmodel}: {exc}", error_code=INVALID_PARAMETER_VALUE) from None
        return flavors_from_mlmodel(data) if isinstance(data, dict) else None


_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<suffix>[^/]+)|@(?P<alias>[^/]+))/?$")


def parse_models_uri(source: str) -> Optional[tuple[str, Optional[str], Optional[str], Optional[str]]]:
    """``models:/<name>/<version|stage|latest>`` or ``models:/<name>@<alias>`` as
    (name, version, stage, alias); None for other URIs, including logged models ``models:/m-<id>``."""
    match = _MODELS_URI.match(source)
    if not match:
        return None
    name, suffix, alias = match["name"], match["suffix"], match["alias"]
    if alias is not None:
        return name, None, None, alias
    if suffix.isdigit():
        return name, suffix, None, None
    if suffix.lower() == "latest":
        return name, None, "latest", None
    return name, None, suffix, None


def _folder_name(candidate: str) -> str:
    name = _SAFE_NAME.sub("_", candidate.strip("/").rsplit("/", 1)[-1]) if candidate else ""
    return name.strip("._") or "model"


def _local_path(source: str) -> Optional[Path]:
    parsed = urlparse(source)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        return Path(source)
    return None


@contextmanager
def local_model(source: str, *, local_model_path: Optional[str], tracking_uri: Optional[str]) -> Iterator[LocalModel]:
    """Yield the model folder for ``source`` (temporary downloads are removed afterwards)."""
    if not isinstance(source, str) or not source.strip():
        raise MlflowException("source must be a non-empty URI or path", error_code=INVALID_PARAMETER_VALUE)
    _refuse_registry(source)
    if local_model_path:
        yield _checked(Path(local_model_path), source, _folder_name(_source_leaf(source)))
        return
    path = _local_path(source)
    if path is not None:
        yield _checked(path, source, _folder_name(path.resolve().name))
        return
    from mlflow.artifacts import download_artifacts

    scratch = tempfile.mkdtemp(prefix="mlflow-azureml-registry-")
    try:
        try:
            downloaded = download_artifacts(artifact_uri=source, dst_path=scratch, tracking_uri=tracking_uri)
        except MlflowException as exc:
            raise MlflowException(
                f"Could not download the model from source {source!r} to register it: {exc.message}",
                error_code=exc.error_code if exc.error_code != "INTERNAL_ERROR" else RESOURCE_DOES_NOT_EXIST,
            ) from None
        if source.startswith("models:/"):
            # MLflow's models:/ downloader adds this marker on the caller's side; it is not a model file.
            (Path(downloaded) / REGISTERED_MODEL_META).unlink(missing_ok=True)
        yield _checked(Path(downloaded), source, _folder_name(_source_leaf(source)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _refuse_registry(source: str) -> None:
    if source.startswith("azureml://registries/"):
        raise MlflowException(
            f"Registering from an Azure ML registry ({source}) is not supported yet; download the model with "
            "MLClient(registry_name=...).models.download(...) and register the local folder instead.",
            error_code=NOT_IMPLEMENTED,
        )


def _source_leaf(source: str) -> str:
    parsed = urlparse(source)
    path = parsed.path if parsed.scheme else source
    if parsed.scheme == "models" and path.strip("/").startswith("m-"):
        return "model"
    return path.rstrip("/").rsplit("/", 1)[-1] if path else ""


def _checked(path: Path, source: str, folder_name: str) -> LocalModel:
    if not path.exists():
        raise MlflowException(f"Model source {source!r} does not exist", error_code=RESOURCE_DOES_NOT_EXIST)
    if not path.is_dir():
        raise MlflowException(
            f"Model source {source!r} is a file; register the folder that contains it",
            error_code=INVALID_PARAMETER_VALUE,
        )
    if not any(p.is_file() for p in path.rglob("*")):
        raise MlflowException(f"Model source {source!r} is an empty folder", error_code=INVALID_PARAMETER_VALUE)
    return LocalModel(path, folder_name)


# -- sources that already live in Azure ML ---------------------------------------------------------
_DATASTORE_SOURCE = re.compile(
    r"^azureml://(?:subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/"
    r"(?:providers/Microsoft\.MachineLearningServices/)?workspaces/(?P<ws>[^/]+)/)?"
    r"datastores/(?P<ds>[^/]+)/paths/(?P<path>.*)$",
    re.IGNORECASE,
)
_JOB_OUTPUT = re.compile(r"^azureml://jobs/(?P<job>[^/]+)/outputs/(?P<output>[^/]+)(?:/paths/(?P<path>.*))?$")
_ASSET = re.compile(r"^azureml:(?P<name>[^:@/]+)(?::(?P<version>[^:@/]+)|@(?P<label>latest))$")


@dataclass(frozen=True)
class RemoteModel:
    """Model files already on a workspace datastore, and what Azure ML knows about them."""

    location: Any  # uri.DatastoreLocation
    model_type: Optional[str] = None  # None: decide from the files (MLmodel present or not)
    flavors: Optional[dict[str, Any]] = None
    referenced: bool = False  # a datastore or job path: not content-addressed, may change under the version


def azureml_source(source: str, gateway: Any) -> Optional[RemoteModel]:
    """Resolve ``azureml://datastores/...``, ``azureml://jobs/.../outputs/...`` and ``azureml:<name>:<version>``.

    ``gateway`` is the registry workspace's gateway (short forms are relative to it). None for other URIs.
    """
    from .azure import errors as az
    from .azure.workspace import WorkspaceRef
    from .uri import DatastoreLocation, parse_asset_uri

    _refuse_registry(source)
    match = _DATASTORE_SOURCE.match(source)
    if match:
        workspace = gateway.workspace
        if match["sub"]:
            workspace = WorkspaceRef(match["sub"], match["rg"], match["ws"])
        return RemoteModel(DatastoreLocation(workspace, match["ds"], match["path"].strip("/")), referenced=True)
    match = _JOB_OUTPUT.match(source)
    if match:
        try:
            job = gateway.jobs.get(match["job"])
        except az.NotFound:
            raise MlflowException(f"Job {match['job']!r} of source {source!r} does not exist in this workspace",
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
    match = _ASSET.match(source)
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
                f"Model asset of source {source!r} does not exist", error_code=RESOURCE_DOES_NOT_EXIST
            ) from None
        props = resource.get("properties") or {}
        return RemoteModel(version_location(resource, gateway.workspace), props.get("modelType"),
                           props.get("flavors") or None)
    if source.startswith("azureml:"):
        raise MlflowException(
            f"Unrecognised Azure ML source {source!r}. Supported: azureml://datastores/<datastore>/paths/<path>, "
            "azureml://jobs/<job>/outputs/<output>/paths/<path>, azureml:<model>:<version>, azureml:<model>@latest",
            error_code=INVALID_PARAMETER_VALUE,
        )
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
