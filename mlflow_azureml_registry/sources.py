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
from .content import FOLDER_NAME_MAX
from .mapping import flavors_from_mlmodel, version_location
from .validation import clip, short

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


def uploads_files(source: Any, local_model_path: Any = None) -> bool:
    """Whether registering ``source`` certainly uploads files: a local folder, ``file://``, ``runs:/``, a logged
    model or any other MLflow artifact URI, never a source already in Azure ML (which may be referenced in place)."""
    if local_model_path is not None:
        return True
    if not isinstance(source, str) or source.startswith(("azureml:", "azureml-registry:")):
        return False
    return parse_models_uri(source) is None


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
            raise _invalid(
                f"Model source {short(source)} names a file on host {parsed.netloc!r}; a file:// URI is read on this "
                "machine only: use file:///<path> (or file://localhost/<path>), or the folder's local path (mount a "
                "remote share first)"
            )
        if "?" in source or "#" in source:
            raise _invalid(
                f"Model source {short(source)} has a query or fragment ('?' or '#' ends the path of a file:// URI); "
                "percent-encode those characters in the path (%3F, %23) or give the folder's local path"
            )
        path = unquote(parsed.path)
        if "\x00" in path:
            raise _invalid(f"Model source {short(source)} contains an encoded NUL character (%00)")
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


_REGISTRY_ASSET = re.compile(r"^azureml://registries/([^/]+)/models/([^/]+)/versions/([^/?#]+)/?$", re.IGNORECASE)


def registry_asset(source: Any) -> Any:
    """``azureml://registries/<r>/models/<n>/versions/<v>`` (Azure ML's id of a registry version) as a
    ``uri.VersionFiles``; None for other sources. Raises ``MlflowException`` for a malformed one."""
    if not isinstance(source, str) or not source.lower().startswith("azureml://registries/"):
        return None
    from .uri import InvalidUri, VersionFiles, quote_input, registry_ref

    match = _REGISTRY_ASSET.match(source)
    if not match:
        raise _invalid(f"Invalid Azure ML registry asset {quote_input(source)}: expected "
                       "azureml://registries/<registry>/models/<name>/versions/<version>")
    try:
        return VersionFiles(registry_ref(match[1], None, None, uri=source), match[2], match[3])
    except InvalidUri as exc:
        raise _invalid(str(exc)) from None


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
        raise _invalid(
            f"Model source {short(source)} ends in a name of {len(folder_name)} characters, which would name "
            f"its upload folder; at most {FOLDER_NAME_MAX} fit in a blob name: register it from a folder with a "
            "shorter name"
        )
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
    origin: Optional[dict[str, Any]] = None  # a version of another workspace or registry (promotion): as read


def azureml_source(source: str, gateway: Any) -> Optional[RemoteModel]:
    """Resolve ``azureml://datastores/...``, ``azureml://jobs/.../outputs/...`` and ``azureml:<name>:<version>``.

    ``gateway`` is the registry workspace's gateway (short forms are relative to it). None for other URIs.
    """
    from .azure import errors as az
    from .uri import DatastoreLocation, parse_asset_uri, workspace_ref

    _check_azureml(source)
    match = _DATASTORE_SOURCE.match(source)
    if match:
        workspace = gateway.workspace
        if match["sub"]:
            workspace = workspace_ref(match["sub"], match["rg"], match["ws"], uri=source)
        return RemoteModel(DatastoreLocation(workspace, match["ds"], match["path"].strip("/")), referenced=True)
    match = _JOB_OUTPUT.match(source)
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


# -- shape checks, before any request -----------------------------------------------------------------
_AZUREML_SHAPES = (
    "azureml://datastores/<datastore>/paths/<path>, azureml://jobs/<job>/outputs/<output>/paths/<path>, "
    "azureml:<model>:<version>, azureml:<model>@latest"
)
_MODELS_SHAPES = (
    "models:/<name>/<version>, models:/<name>/<stage>, models:/<name>/latest, models:/<name>@<alias> "
    "or models:/m-<logged model id>"
)
_RUN_ID = re.compile(r"[a-zA-Z0-9][\w\-]{0,255}")
_ASSET_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,254}")


def _invalid(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def check_source(source: Any, local_model_path: Any = None) -> str:
    """Refuse a ``create_model_version`` source that cannot name a model, before any request.

    Only the shape is checked here (what exists is the service's answer): a non-empty string; this
    registry's ``models:/`` URIs with a valid name and version, stage or alias; ``runs:/<run_id>/<path>``;
    Azure ML sources of a known form naming a folder (never a whole datastore, never ``..``).
    """
    from . import validation

    if not isinstance(source, str) or not source.strip():
        raise _invalid(f"source must be a non-empty URI or path, got {short(source)}")
    if "\x00" in source:
        raise _invalid(f"source {short(source)} contains a NUL character")
    if local_model_path is not None and (not isinstance(local_model_path, str) or "\x00" in local_model_path):
        raise _invalid(f"local_model_path must be a path, got {short(local_model_path)}")
    try:  # every later step parses the source as a URI: one that cannot be parsed is refused here, once
        urlsplit(source)
        urlparse(source)
    except ValueError as exc:  # e.g. "runs://[x/1": Python's URL parser refuses an unclosed IPv6 host
        raise _invalid(f"Invalid source {short(source)}: {exc}") from None
    if source.startswith(("azureml-registry:", "azureml://registries/")) and ("?" in source or "#" in source):
        from .uri import quote_input

        # A SAS or token pasted with it would otherwise be stored as the version's source, for everyone to read.
        raise _invalid(
            f"Source {quote_input(source)} has a query or fragment; azureml-registry:// and azureml://registries/ "
            "sources take none (the plugin asks Azure ML for access itself): remove everything from '?' or '#'"
        )
    if source.startswith("azureml-registry:"):
        from .uri import DatastoreLocation, InvalidUri, parse_artifact_uri, parse_version_alias

        try:
            location = None if parse_version_alias(source) else parse_artifact_uri(source)
        except InvalidUri as exc:
            raise _invalid(str(exc)) from None
        if isinstance(location, DatastoreLocation) and not location.path:
            raise _invalid(f"Source {short(source)} names a whole datastore; name the model's folder")
    elif source.startswith("azureml:"):
        _check_azureml(source)
    elif source.startswith("runs:") and not urlparse(source).netloc:
        _check_runs_uri(source)
    elif source.startswith("models:") and not urlparse(source).netloc:
        parsed = parse_models_uri(source)
        if parsed is None:
            # Logged models (models:/m-<id>) and paths inside a version are MLflow's to resolve.
            rest = source[len("models:"):].strip("/")
            if not rest.startswith("m-") and "/" not in rest:
                raise _invalid(f"Invalid model source {short(source)}: expected {_MODELS_SHAPES}")
            return source
        name, version, stage, alias = parsed
        validation.model_name(name)
        if version is not None:
            validation.version(version)
        elif alias is not None:
            validation.alias(alias)
        elif stage != "latest":
            from .stages import canonical

            canonical(stage)
    else:
        _check_scheme(source)
    return source


def _check_scheme(source: str) -> None:
    """A URI source needs an MLflow artifact repository for its scheme (MLflow's own refusal has no code)."""
    try:
        scheme = urlparse(source).scheme
    except ValueError as exc:
        raise _invalid(f"Invalid source {short(source)}: {exc}") from None
    if len(scheme) <= 1:  # a local path (or a Windows drive letter)
        return
    try:
        from mlflow.store.artifact.artifact_repository_registry import _artifact_repository_registry

        known = _artifact_repository_registry.get_registered_artifact_repositories()
    except (ImportError, AttributeError):  # MLflow moved it: let the download say what is wrong
        return
    if scheme not in known:
        raise _invalid(
            f"Unsupported source {short(source)}: no MLflow artifact repository handles {scheme}:// URIs "
            f"(installed: {', '.join(sorted(s for s in known if s))})"
        )


def _check_runs_uri(source: str) -> None:
    run_id, _, path = source[len("runs:"):].lstrip("/").partition("/")
    if not _RUN_ID.fullmatch(run_id) or ".." in path.split("/"):
        raise _invalid(
            f"Invalid runs:/ source {short(source)}: expected runs:/<run_id>/<path to the model folder>, with the run "
            "id of an MLflow run"
        )


def _check_azureml(source: str) -> None:
    """Known ``azureml:`` shapes only; datastore paths name a folder inside the datastore."""
    from .uri import InvalidUri, check_datastore_name, check_datastore_path, workspace_ref

    if registry_asset(source) is not None:
        return
    try:
        match = _DATASTORE_SOURCE.match(source)
        if match:
            if match["sub"]:
                workspace_ref(match["sub"], match["rg"], match["ws"], uri=source)
            check_datastore_name(match["ds"], source)
            if not check_datastore_path(match["path"], source):
                raise _invalid(f"Source {short(source)} names a whole datastore; name the model's folder")
            return
        match = _JOB_OUTPUT.match(source)
        if match:
            check_datastore_path(match["path"] or "", source)
            return
    except InvalidUri as exc:
        raise _invalid(str(exc)) from None
    match = _ASSET.match(source)
    if match:
        from . import validation

        validation.model_name(match["name"])
        if match["version"] is not None and not _ASSET_VERSION.fullmatch(match["version"]):
            raise _invalid(
                f"Invalid model version {match['version']!r} in source {short(source)}: Azure ML versions are letters, "
                "digits, '.', '_' and '-', starting with a letter or digit"
            )
        return
    raise _invalid(f"Unrecognised Azure ML source {short(source)}. Supported: {_AZUREML_SHAPES}")
