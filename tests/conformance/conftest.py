"""The paths MLflow reaches a registry through, each for the plugin and for MLflow's own SQL registry.

- ``global``: ``mlflow.set_registry_uri(...)`` then ``MlflowClient()`` and the fluent API (``mlflow.register_model``).
- ``own-uris``: ``MlflowClient(tracking_uri=X, registry_uri=R)`` where neither is MLflow's global URI.
- ``rest``: ``MlflowClient("http://...")`` through a real ``mlflow server --registry-store-uri R`` with the
  artifact proxy (MLflow's default); the client has no Azure settings in use, the server has them.
- ``rest-no-proxy``: the same with ``--no-serve-artifacts``.

Every path's model source is a run of the tracking store that path's client reads, holding an MLflow
model folder at ``model`` (``runs:/<run>/model``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import mlflow
import pytest
from mlflow import MlflowClient

from tests.servers import MlflowServer

from .harness import Registry

PATHS = ("global", "own-uris", "rest", "rest-no-proxy", "registry", "registry-rest")
"""``registry`` and ``registry-rest``: ``global`` and ``rest`` with the plugin on an Azure ML registry of the local
workspace instead of a workspace."""


def log_model_run(tracking_uri: str, model_dir: Path) -> str:
    """A run on ``tracking_uri`` whose artifacts hold ``model_dir`` at ``model``; its id.

    MLflow 2.16 uploads to a server's artifact proxy with the *global* tracking URI, so it is set meanwhile.
    """
    with global_uris(tracking_uri, mlflow.get_registry_uri()):
        client = MlflowClient(tracking_uri=tracking_uri)
        experiment = client.get_experiment_by_name("conformance")
        experiment_id = experiment.experiment_id if experiment else client.create_experiment("conformance")
        run = client.create_run(experiment_id)
        client.log_artifacts(run.info.run_id, str(model_dir), "model")
        client.set_terminated(run.info.run_id)
        return run.info.run_id


@contextlib.contextmanager
def global_uris(tracking_uri: str, registry_uri: str) -> Iterator[None]:
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


@pytest.fixture(scope="session")
def conformance_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("conformance")


@pytest.fixture(scope="session")
def oracle_registry_uri(conformance_root) -> str:
    return f"sqlite:///{conformance_root / 'mlflow-registry.db'}"


def _available(uri_of) -> Optional[str]:
    """``uri_of()``, or None where live mode has no such target (it skips a test asking for it)."""
    try:
        return uri_of()
    except pytest.skip.Exception:
        return None


@pytest.fixture(scope="session")
def servers(workspace, conformance_root, sklearn_model_dir) -> Iterator[dict[str, tuple[MlflowServer, str]]]:
    """The four servers, each with a model run logged through it: plugin with and without the artifact
    proxy, plugin on the local registry, and MLflow's own SQL registry (the oracle). Stopped, with their
    workers, at the end. Live, only the plugin servers of the live target's kind (workspace or registry)."""
    specs = {
        "plugin-rest": dict(registry_uri=_available(workspace.registry_uri), serve_artifacts=True),
        "plugin-rest-no-proxy": dict(registry_uri=_available(workspace.registry_uri), serve_artifacts=False),
        "plugin-registry-rest": dict(registry_uri=_available(workspace.azureml_registry_uri), serve_artifacts=True),
        "mlflow-rest": dict(registry_uri=None, serve_artifacts=True),
    }
    specs = {key: spec for key, spec in specs.items() if key == "mlflow-rest" or spec["registry_uri"]}
    started: dict[str, tuple[MlflowServer, str]] = {}
    with contextlib.ExitStack() as stack:
        for key, spec in specs.items():
            server = stack.enter_context(MlflowServer(conformance_root / key, **spec))
            started[key] = (server, log_model_run(server.url, sklearn_model_dir))
        yield started


@pytest.fixture(scope="session")
def in_process_runs(workspace, conformance_root, sklearn_model_dir) -> dict[str, tuple[str, str]]:
    """Tracking URI and model run for the in-process paths: MLflow's global one, and one of a client's own."""
    own = f"sqlite:///{conformance_root / 'own-tracking.db'}"
    return {
        "global": (mlflow.get_tracking_uri(), log_model_run(mlflow.get_tracking_uri(), sklearn_model_dir)),
        "own-uris": (own, log_model_run(own, sklearn_model_dir)),
    }


@pytest.fixture
def path_pair(request, workspace, oracle_registry_uri, conformance_root, in_process_runs):
    """``{"plugin": open, "mlflow": open}`` for the path named by the test's parameter: each ``open()`` is a
    context giving a fresh :class:`Registry`, with whatever global URIs the path needs set and restored."""
    path = request.param
    plugin_uri = workspace.azureml_registry_uri() if path.startswith("registry") else workspace.registry_uri()
    registry_uris = {"plugin": plugin_uri, "mlflow": oracle_registry_uri}
    if path in ("global", "registry"):
        tracking_uri, run_id = in_process_runs["global"]

        def opener(kind):
            @contextlib.contextmanager
            def open_():
                with global_uris(tracking_uri, registry_uris[kind]):
                    yield Registry(kind, MlflowClient(), f"runs:/{run_id}/model", run_id, fluent=True)
            return open_
    elif path == "own-uris":
        tracking_uri, run_id = in_process_runs["own-uris"]
        decoy = f"sqlite:///{conformance_root / 'decoy-registry.db'}"

        def opener(kind):
            @contextlib.contextmanager
            def open_():
                # Neither global URI is the client's: the global registry is a decoy, the global tracking
                # store does not have the run.
                with global_uris(mlflow.get_tracking_uri(), decoy):
                    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uris[kind])
                    yield Registry(kind, client, f"runs:/{run_id}/model", run_id)
            return open_
    else:
        servers = request.getfixturevalue("servers")

        def opener(kind):
            server, run_id = servers[f"plugin-{path}" if kind == "plugin" else "mlflow-rest"]

            @contextlib.contextmanager
            def open_():
                client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
                yield Registry(kind, client, f"runs:/{run_id}/model", run_id)
            return open_
    return {"plugin": opener("plugin"), "mlflow": opener("mlflow")}


@pytest.fixture(autouse=True)
def _no_client_retries(monkeypatch):
    """MLflow's REST client retries a 5xx answer with backoff (minutes); both registries answer at once here."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
