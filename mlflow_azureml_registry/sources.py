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

from .mapping import flavors_from_mlmodel

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
    if source.startswith("azureml://registries/"):
        raise MlflowException(
            f"Registering from an Azure ML registry ({source}) is not supported yet; download the model with "
            "MLClient(registry_name=...).models.download(...) and register the local folder instead.",
            error_code=NOT_IMPLEMENTED,
        )
    if local_model_path:
        yield _checked(Path(local_model_path), source, _folder_name(_source_leaf(source)))
        return
    path = _local_path(source)
    if path is not None:
        yield _checked(path, source, _folder_name(path.resolve().name))
        return
    if source.startswith("azureml:"):
        raise MlflowException(
            f"Registering from Azure ML paths ({source}) is not supported yet; download the files and register "
            "the local folder instead.",
            error_code=NOT_IMPLEMENTED,
        )
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
