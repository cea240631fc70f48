"""Resolve the ``source`` of ``create_model_version`` to a folder on local disk.

Local paths and ``file://`` are used in place; every other MLflow URI (``runs:/``, ``models:/m-...``,
any artifact URI) is downloaded through MLflow itself, against the store's tracking URI, so a source
on any tracking server works.

A source's shape is checked first (:mod:`.source_checks`); sources already in Azure ML are resolved by
:mod:`.azureml_sources` and :mod:`.remote_sources`. The names callers import from this module stay importable here.
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
from urllib.parse import unquote, urlparse, urlsplit

import yaml
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    FEATURE_DISABLED,
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    IO_ERROR,
    PERMISSION_DENIED,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)

from . import tracking
from .azureml_sources import RemoteModel, azureml_source, describe_remote
from .content import FOLDER_NAME_MAX
from .mapping import flavors_from_mlmodel
from .source_checks import check_source, invalid_source, parse_models_uri, registry_asset, uploads_files
from .validation import clip, short

__all__ = [
    "REGISTERED_MODEL_META",
    "LocalModel",
    "RemoteModel",
    "azureml_source",
    "check_source",
    "describe_remote",
    "local_model",
    "parse_models_uri",
    "registry_asset",
    "uploads_files",
]

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


def _folder_name(candidate: str) -> str:
    name = _SAFE_NAME.sub("_", candidate.strip("/").rsplit("/", 1)[-1]) if candidate else ""
    return name.strip("._") or "model"


def _local_path(source: str) -> Optional[Path]:
    """The local folder a source names, or None when it is a URI of another kind.

    ``file://`` URIs name files on this machine: a host other than ``localhost`` is refused (it was read as the
    local path), and so is a ``?`` or ``#`` (they end a URI's path, so what follows was silently dropped).
    """
    parsed = urlsplit(source)  # not urlparse: it would cut ";..." off the last segment as URI parameters
    if parsed.scheme == "file":
        if parsed.netloc and parsed.netloc.lower() != "localhost":
            raise invalid_source(
                f"Model source {short(source)} names a file on host {parsed.netloc!r}; a file:// URI is read on this "
                "machine only: use file:///<path> (or file://localhost/<path>), or the folder's local path (mount a "
                "remote share first)"
            )
        if "?" in source or "#" in source:
            raise invalid_source(
                f"Model source {short(source)} has a query or fragment ('?' or '#' ends the path of a file:// URI); "
                "percent-encode those characters in the path (%3F, %23) or give the folder's local path"
            )
        path = unquote(parsed.path)
        if "\x00" in path:
            raise invalid_source(f"Model source {short(source)} contains an encoded NUL character (%00)")
        return Path(path)
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        return Path(source)
    return None


@contextmanager
def local_model(source: str, *, local_model_path: Optional[str], tracking_uri: Optional[str]) -> Iterator[LocalModel]:
    """Yield the model folder for ``source`` (temporary downloads are removed afterwards)."""
    check_source(source, local_model_path)
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
            location = tracking.artifact_location(source, tracking_uri)
            if location != source:  # resolved here: nothing left for MLflow to look up on a tracking server
                downloaded = download_artifacts(artifact_uri=location, dst_path=scratch)
            else:
                downloaded = download_artifacts(artifact_uri=source, dst_path=scratch, tracking_uri=tracking_uri)
        except Exception as exc:  # MLflow's artifact repositories raise whatever their libraries raise
            raise MlflowException(
                f"Could not download the model from source {short(source)} to register it: {_describe(exc)}",
                error_code=_download_error_code(exc),
            ) from None
        if source.startswith("models:/"):
            # MLflow's models:/ downloader adds this marker on the caller's side; it is not a model file.
            (Path(downloaded) / REGISTERED_MODEL_META).unlink(missing_ok=True)
        yield _checked(Path(downloaded), source, _folder_name(_source_leaf(source)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _describe(exc: BaseException) -> str:
    """Another library's error, as text of a readable length (MLflow's quote their whole input)."""
    return clip(exc.message if isinstance(exc, MlflowException) else f"{type(exc).__name__}: {exc}", 1000)


def _download_error_code(exc: BaseException) -> int:
    """MLflow's code for a failed download of a source. ``MlflowException.error_code`` is the code's *name*
    (passing it back as ``error_code`` would silently become ``INTERNAL_ERROR``); MLflow raises many of its
    not-found errors without a code, so an uncoded failure reads as a source that does not exist."""
    if isinstance(exc, MlflowException):
        known = exc.error_code in ErrorCode.DESCRIPTOR.values_by_name
        code = ErrorCode.Value(exc.error_code) if known else INTERNAL_ERROR
        return RESOURCE_DOES_NOT_EXIST if code == INTERNAL_ERROR else code
    for kind, code in (
        (ImportError, FEATURE_DISABLED),  # e.g. s3:// without boto3
        (FileNotFoundError, RESOURCE_DOES_NOT_EXIST),
        (PermissionError, PERMISSION_DENIED),
        (OSError, IO_ERROR),
        (ValueError, INVALID_PARAMETER_VALUE),  # a URI the repository cannot parse
        (TypeError, INVALID_PARAMETER_VALUE),
    ):
        if isinstance(exc, kind):
            return code
    return INTERNAL_ERROR


def _source_leaf(source: str) -> str:
    parsed = urlparse(source)
    path = parsed.path if parsed.scheme else source
    if parsed.scheme == "models" and path.strip("/").startswith("m-"):
        return "model"
    return path.rstrip("/").rsplit("/", 1)[-1] if path else ""


def _checked(path: Path, source: str, folder_name: str) -> LocalModel:
    try:
        return _checked_folder(path, source, folder_name)
    except OSError as exc:  # e.g. a name too long for the file system: Path.exists() raises rather than answers
        code = PERMISSION_DENIED if isinstance(exc, PermissionError) else INVALID_PARAMETER_VALUE
        message = f"Model source {short(source)} cannot be read: {exc.strerror or exc}"
        raise MlflowException(message, error_code=code) from None


def _checked_folder(path: Path, source: str, folder_name: str) -> LocalModel:
    if not path.exists():
        raise MlflowException(f"Model source {short(source)} does not exist", error_code=RESOURCE_DOES_NOT_EXIST)
    if not path.is_dir():
        raise MlflowException(
            f"Model source {short(source)} is a file; register the folder that contains it",
            error_code=INVALID_PARAMETER_VALUE,
        )
    if not any(p.is_file() for p in path.rglob("*")):  # rglob does not follow links to folders
        raise MlflowException(f"Model source {short(source)} is an empty folder", error_code=INVALID_PARAMETER_VALUE)
    # What the folder holds is checked as it is hashed, before any upload (content.snapshot, one walk): links that
    # leave it or loop, FIFOs, devices, sockets, names a blob cannot keep. Paths inside it are allowed the length a
    # blob name has left under an upload folder name of up to content.FOLDER_NAME_MAX characters.
    if len(folder_name) > FOLDER_NAME_MAX:
        raise invalid_source(
            f"Model source {short(source)} ends in a name of {len(folder_name)} characters, which would name "
            f"its upload folder; at most {FOLDER_NAME_MAX} fit in a blob name: register it from a folder with a "
            "shorter name"
        )
    return LocalModel(path, folder_name)


