"""A registry call as ``mlflow server``'s very first request, for a run already in the server's backend store.

MLflow 2.16 builds the registry store before the server sets its tracking URI when a registry request comes
first, so the store must find the run through the server's backend store, not through MLflow's default.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow import MlflowClient

from tests.conftest import files_of
from tests.servers import MlflowServer, plugin_tracebacks

from .conftest import log_model_run


def test_register_a_run_of_the_servers_own_store_as_its_first_request(
    workspace, tmp_path, sklearn_model_dir, model_name
):
    server = MlflowServer(tmp_path / "first", registry_uri=workspace.registry_uri())
    # The run is written straight into the server's database and artifact folder, before the server starts.
    run_id = log_model_run(server.backend_uri, sklearn_model_dir)
    with server:
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        client.create_registered_model(model_name)  # the server's first request
        mv = client.create_model_version(model_name, f"runs:/{run_id}/model", run_id)
        assert (mv.version, mv.run_id) == ("1", run_id)
        uri = client.get_model_version_download_uri(model_name, "1")
        log = server.log()
    downloaded = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path / "back"))
    assert files_of(Path(downloaded)) == files_of(sklearn_model_dir)
    assert plugin_tracebacks(log) == []
