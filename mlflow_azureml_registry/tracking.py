"""Where a source on a tracking server keeps its files: ``runs:/`` and ``models:/m-<id>`` to a plain artifact URI.

MLflow's own download helpers do not do this reliably for a store:

- ``download_artifacts(artifact_uri="runs:/...", tracking_uri=X)`` drops ``X`` (MLflow 2.16 ignores it; 3.17's
  ``RunsArtifactRepository`` finds a run's logged model through the *global* registry and tracking URIs), so
  ``MlflowClient(tracking_uri=X, registry_uri=...)`` could not register a run of ``X``.
- Inside ``mlflow server``, the store may be built before the server sets its tracking URI (MLflow 2.16, when a
  registry call is the server's first request), and a run logged through the server's artifact proxy has an
  ``mlflow-artifacts:`` URI, which MLflow resolves only against an ``http(s)`` tracking URI, while the server's
  own is its backend store (``sqlite:///...``).

So the store resolves the source itself, with MLflow's public client on the right tracking URI, and hands
MLflow's downloader a URI that needs no tracking server: the run's (or logged model's) artifact location, with
``mlflow-artifacts:`` turned into the server's artifact destination (inside a server) or the tracking server's
proxy address (a client).
"""

from __future__ import annotations

import os
import posixpath
from typing import Optional
from urllib.parse import urlparse

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

# What ``mlflow server`` sets for its workers (``mlflow.server.BACKEND_STORE_URI_ENV_VAR`` and
# ``ARTIFACTS_DESTINATION_ENV_VAR`` in MLflow 2.16 through 3.17; a test compares them). Read as strings:
# importing ``mlflow.server`` would load Flask into every client.
SERVER_BACKEND_STORE_ENV = "_MLFLOW_SERVER_FILE_STORE"
SERVER_ARTIFACTS_DESTINATION_ENV = "_MLFLOW_SERVER_ARTIFACT_DESTINATION"


def source_tracking_uri(store_tracking_uri: Optional[str]) -> Optional[str]:
    """The tracking URI that ``runs:/`` and ``models:/m-`` sources are read from.

    Inside ``mlflow server`` it is the server's backend store: the runs a client logged to that server are
    there, whatever tracking URI MLflow resolved when it built the store. Elsewhere it is the store's own
    (the client's ``tracking_uri``, else MLflow's global one, as MLflow resolved it for this store).
    """
    return os.environ.get(SERVER_BACKEND_STORE_ENV) or store_tracking_uri


def artifact_location(source: str, tracking_uri: Optional[str]) -> str:
    """The artifact URI holding ``source``'s files, downloadable without a tracking server.

    ``runs:/<run_id>/<path>``: the run's logged model named ``<path>``'s first part (MLflow 3 keeps a model
    logged with ``name=`` outside the run's artifacts, as its ``RunsArtifactRepository`` does), else
    ``<path>`` under the run's artifact URI. ``models:/m-<id>[/<path>]``: the logged model's artifact location.
    Any other source is returned unchanged, but for ``mlflow-artifacts:``, which is then made concrete (see
    :func:`concrete_artifact_uri`), as is a ``runs:/`` or ``models:/m-`` location: MLflow 2's fluent
    ``register_model("runs:/...")`` sends the run's ``mlflow-artifacts:`` URI itself through ``mlflow server``.

    Raises ``MlflowException``: MLflow's own for an unknown run or logged model (``RESOURCE_DOES_NOT_EXIST``);
    ``INVALID_PARAMETER_VALUE`` for an ``mlflow-artifacts:`` location outside a server with no http(s) tracking URI.
    """
    scheme = urlparse(source).scheme
    if scheme == "runs":
        location = _run_location(source, tracking_uri)
    elif scheme == "models" and source[len("models:/"):].startswith("m-") and _logged_models_exist():
        location = _logged_model_location(source, tracking_uri)
    else:
        location = source
    return concrete_artifact_uri(location, tracking_uri)


def concrete_artifact_uri(uri: str, tracking_uri: Optional[str]) -> str:
    """``mlflow-artifacts:[//host]/<path>`` as a URI that names its storage; any other URI unchanged.

    Inside ``mlflow server`` with artifact serving: ``<path>`` under the server's artifact destination (what
    the server's own proxy reads). Elsewhere, with an ``http(s)`` tracking URI: that server's proxy endpoint
    (MLflow's ``MlflowArtifactsRepository.resolve_uri``). Raises ``INVALID_PARAMETER_VALUE`` otherwise.
    """
    if urlparse(uri).scheme != "mlflow-artifacts":
        return uri
    destination = os.environ.get(SERVER_ARTIFACTS_DESTINATION_ENV)
    if os.environ.get(SERVER_BACKEND_STORE_ENV) and destination:
        relative = urlparse(uri).path.lstrip("/")
        return posixpath.join(destination.rstrip("/"), relative) if relative else destination
    if tracking_uri and urlparse(tracking_uri).scheme in ("http", "https"):
        from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository

        return MlflowArtifactsRepository.resolve_uri(uri, tracking_uri)
    raise MlflowException(
        f"The source's files are at {uri!r}, behind an MLflow server's artifact proxy, but the tracking URI "
        f"{tracking_uri!r} is not that server's http(s) address. Pass the server's address as the client's "
        "tracking URI (MlflowClient(tracking_uri='http://...')) or mlflow.set_tracking_uri('http://...').",
        error_code=INVALID_PARAMETER_VALUE,
    )


def _logged_models_exist() -> bool:
    """MLflow 3 has logged models (``models:/m-<id>``); in MLflow 2 that URI names a registered model."""
    from mlflow.tracking import MlflowClient

    return hasattr(MlflowClient, "get_logged_model")


def _client(tracking_uri: Optional[str]):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def _run_location(source: str, tracking_uri: Optional[str]) -> str:
    from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository
    from mlflow.utils.uri import append_to_uri_path

    run_id, path = RunsArtifactRepository.parse_runs_uri(source)
    client = _client(tracking_uri)
    run = client.get_run(run_id)
    if path:
        name, _, rest = path.partition("/")
        model = _logged_model_of_run(client, run, name)
        if model is not None:
            return append_to_uri_path(model.artifact_location, rest) if rest else model.artifact_location
        return append_to_uri_path(run.info.artifact_uri, path)
    return run.info.artifact_uri


def _logged_model_of_run(client, run, name: str):
    """MLflow 3: the run's logged model called ``name`` (MLflow 2 has none)."""
    search = getattr(client, "search_logged_models", None)
    if search is None:
        return None
    quoted = name.replace("'", "\\'")
    token = None
    while True:
        page = search(
            experiment_ids=[run.info.experiment_id], filter_string=f"name = '{quoted}'", page_token=token
        )
        for model in page:
            if model.source_run_id == run.info.run_id:
                return model
        token = page.token
        if not token:
            return None


def _logged_model_location(source: str, tracking_uri: Optional[str]) -> str:
    from mlflow.utils.uri import append_to_uri_path

    model_id, _, rest = source[len("models:/"):].partition("/")
    location = _client(tracking_uri).get_logged_model(model_id).artifact_location
    return append_to_uri_path(location, rest) if rest else location
