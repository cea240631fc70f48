"""Shape checks of a ``create_model_version`` source, before any request (:func:`check_source`), and what the
shape alone tells: the parts of this registry's ``models:/`` URIs, whether registering a source uploads files, a
registry version named by Azure ML's id. Resolving a source is :mod:`.sources` (local and MLflow sources) and
:mod:`.azureml_sources` (sources already in Azure ML).
"""

from __future__ import annotations

import re
from typing import Any, Optional
from urllib.parse import urlparse, urlsplit

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from .validation import short

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


# Azure ML's own source forms: a datastore path (short, or with its workspace), a job's output, a model asset.
DATASTORE_SOURCE = re.compile(
    r"^azureml://(?:subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/"
    r"(?:providers/Microsoft\.MachineLearningServices/)?workspaces/(?P<ws>[^/]+)/)?"
    r"datastores/(?P<ds>[^/]+)/paths/(?P<path>.*)$",
    re.IGNORECASE,
)
JOB_OUTPUT = re.compile(r"^azureml://jobs/(?P<job>[^/]+)/outputs/(?P<output>[^/]+)(?:/paths/(?P<path>.*))?$")
ASSET_SOURCE = re.compile(r"^azureml:(?P<name>[^:@/]+)(?::(?P<version>[^:@/]+)|@(?P<label>latest))$")

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


def invalid_source(message: str) -> MlflowException:
    """A refused source: ``INVALID_PARAMETER_VALUE`` with ``message``, which says what to do."""
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def check_source(source: Any, local_model_path: Any = None) -> str:
    """Refuse a ``create_model_version`` source that cannot name a model, before any request.

    Only the shape is checked here (what exists is the service's answer): a non-empty string; this
    registry's ``models:/`` URIs with a valid name and version, stage or alias; ``runs:/<run_id>/<path>``;
    Azure ML sources of a known form naming a folder (never a whole datastore, never ``..``).
    """
    from . import validation

    if not isinstance(source, str) or not source.strip():
        raise invalid_source(f"source must be a non-empty URI or path, got {short(source)}")
    if "\x00" in source:
        raise invalid_source(f"source {short(source)} contains a NUL character")
    if local_model_path is not None and (not isinstance(local_model_path, str) or "\x00" in local_model_path):
        raise invalid_source(f"local_model_path must be a path, got {short(local_model_path)}")
    try:  # every later step parses the source as a URI: one that cannot be parsed is refused here, once
        urlsplit(source)
        urlparse(source)
    except ValueError as exc:  # e.g. "runs://[x/1": Python's URL parser refuses an unclosed IPv6 host
        raise invalid_source(f"Invalid source {short(source)}: {exc}") from None
    if source.startswith(("azureml-registry:", "azureml://registries/")) and ("?" in source or "#" in source):
        from .uri import quote_input

        # A SAS or token pasted with it would otherwise be stored as the version's source, for everyone to read.
        raise invalid_source(
            f"Source {quote_input(source)} has a query or fragment; azureml-registry:// and azureml://registries/ "
            "sources take none (the plugin asks Azure ML for access itself): remove everything from '?' or '#'"
        )
    if source.startswith("azureml-registry:"):
        from .uri import DatastoreLocation, InvalidUri, parse_artifact_uri, parse_version_alias

        try:
            location = None if parse_version_alias(source) else parse_artifact_uri(source)
        except InvalidUri as exc:
            raise invalid_source(str(exc)) from None
        if isinstance(location, DatastoreLocation) and not location.path:
            raise invalid_source(f"Source {short(source)} names a whole datastore; name the model's folder")
    elif source.startswith("azureml:"):
        check_azureml(source)
    elif source.startswith("runs:") and not urlparse(source).netloc:
        _check_runs_uri(source)
    elif source.startswith("models:") and not urlparse(source).netloc:
        parsed = parse_models_uri(source)
        if parsed is None:
            # Logged models (models:/m-<id>) and paths inside a version are MLflow's to resolve.
            rest = source[len("models:"):].strip("/")
            if not rest.startswith("m-") and "/" not in rest:
                raise invalid_source(f"Invalid model source {short(source)}: expected {_MODELS_SHAPES}")
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
        raise invalid_source(f"Invalid source {short(source)}: {exc}") from None
    if len(scheme) <= 1:  # a local path (or a Windows drive letter)
        return
    try:
        from mlflow.store.artifact.artifact_repository_registry import _artifact_repository_registry

        known = _artifact_repository_registry.get_registered_artifact_repositories()
    except (ImportError, AttributeError):  # MLflow moved it: let the download say what is wrong
        return
    if scheme not in known:
        raise invalid_source(
            f"Unsupported source {short(source)}: no MLflow artifact repository handles {scheme}:// URIs "
            f"(installed: {', '.join(sorted(s for s in known if s))})"
        )


def _check_runs_uri(source: str) -> None:
    run_id, _, path = source[len("runs:"):].lstrip("/").partition("/")
    if not _RUN_ID.fullmatch(run_id) or ".." in path.split("/"):
        raise invalid_source(
            f"Invalid runs:/ source {short(source)}: expected runs:/<run_id>/<path to the model folder>, with the run "
            "id of an MLflow run"
        )


def check_azureml(source: str) -> None:
    """Known ``azureml:`` shapes only; datastore paths name a folder inside the datastore."""
    from .uri import InvalidUri, check_datastore_name, check_datastore_path, workspace_ref

    if registry_asset(source) is not None:
        return
    try:
        match = DATASTORE_SOURCE.match(source)
        if match:
            if match["sub"]:
                workspace_ref(match["sub"], match["rg"], match["ws"], uri=source)
            check_datastore_name(match["ds"], source)
            if not check_datastore_path(match["path"], source):
                raise invalid_source(f"Source {short(source)} names a whole datastore; name the model's folder")
            return
        match = JOB_OUTPUT.match(source)
        if match:
            check_datastore_path(match["path"] or "", source)
            return
    except InvalidUri as exc:
        raise invalid_source(str(exc)) from None
    match = ASSET_SOURCE.match(source)
    if match:
        from . import validation

        validation.model_name(match["name"])
        if match["version"] is not None and not _ASSET_VERSION.fullmatch(match["version"]):
            raise invalid_source(
                f"Invalid model version {match['version']!r} in source {short(source)}: Azure ML versions are letters, "
                "digits, '.', '_' and '-', starting with a letter or digit"
            )
        return
    raise invalid_source(f"Unrecognised Azure ML source {short(source)}. Supported: {_AZUREML_SHAPES}")


_REGISTRY_ASSET = re.compile(r"^azureml://registries/([^/]+)/models/([^/]+)/versions/([^/?#]+)/?$", re.IGNORECASE)


def registry_asset(source: Any) -> Any:
    """``azureml://registries/<r>/models/<n>/versions/<v>`` (Azure ML's id of a registry version) as a
    ``uri.VersionFiles``; None for other sources. Raises ``MlflowException`` for a malformed one."""
    if not isinstance(source, str) or not source.lower().startswith("azureml://registries/"):
        return None
    from .uri import InvalidUri, VersionFiles, quote_input, registry_ref

    match = _REGISTRY_ASSET.match(source)
    if not match:
        raise invalid_source(f"Invalid Azure ML registry asset {quote_input(source)}: expected "
                       "azureml://registries/<registry>/models/<name>/versions/<version>")
    try:
        return VersionFiles(registry_ref(match[1], None, None, uri=source), match[2], match[3])
    except InvalidUri as exc:
        raise invalid_source(str(exc)) from None
