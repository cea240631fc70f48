"""Register from every source a user has: Azure ML datastore paths, job outputs, assets, other tracking servers."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from ..conftest import files_of


def _container(workspace, ws="local-ws"):
    datastore = workspace.datastore(ws)
    return workspace.blob_service(datastore["accountName"]).get_container_client(datastore["containerName"])


def _put_folder(workspace, folder: Path, prefix: str, ws="local-ws"):
    container = _container(workspace, ws)
    for relative, data in files_of(folder).items():
        container.upload_blob(f"{prefix}/{relative}", data, overwrite=True)


def _stored(workspace, name, version, ws="local-ws"):
    return workspace.state.get_version(ws, name, str(version))["properties"]


def test_datastore_path_is_referenced_in_place(workspace, client, model_name, sklearn_model_dir, iris):
    prefix = f"shared-models/{model_name}"
    _put_folder(workspace, sklearn_model_dir, prefix)
    client.create_registered_model(model_name)
    mv = client.create_model_version(model_name, f"azureml://datastores/workspaceblobstore/paths/{prefix}/")
    stored = _stored(workspace, model_name, mv.version)
    assert stored["modelUri"].endswith(f"/datastores/workspaceblobstore/paths/{prefix}")
    assert stored["properties"]["mlflow.referencedInPlace"] == "true"  # said on the version
    assert stored["modelType"] == "mlflow_model" and "sklearn" in stored["flavors"]
    assert len(mlflow.pyfunc.load_model(f"models:/{model_name}/{mv.version}").predict(iris.head(2))) == 2


def test_datastore_path_copied_on_request(workspace, client, model_name, sklearn_model_dir, monkeypatch):
    prefix = f"shared-models/{model_name}"
    _put_folder(workspace, sklearn_model_dir, prefix)
    monkeypatch.setenv("MLFLOW_AZUREML_COPY_DATASTORE_SOURCES", "true")
    client.create_registered_model(model_name)
    mv = client.create_model_version(model_name, f"azureml://datastores/workspaceblobstore/paths/{prefix}")
    stored = _stored(workspace, model_name, mv.version)
    assert "/paths/LocalUpload/" in stored["modelUri"] and "mlflow.referencedInPlace" not in stored["properties"]


def test_custom_files_on_a_datastore_register_as_custom_model(workspace, client, model_name, tmp_path):
    (tmp_path / "weights.onnx").write_bytes(os.urandom(1000))
    _put_folder(workspace, tmp_path, f"raw/{model_name}")
    client.create_registered_model(model_name)
    mv = client.create_model_version(model_name, f"azureml://datastores/workspaceblobstore/paths/raw/{model_name}")
    stored = _stored(workspace, model_name, mv.version)
    assert stored["modelType"] == "custom_model" and not stored["flavors"]


def test_other_workspace_datastore_path_is_copied(workspace, client, model_name, sklearn_model_dir, iris):
    prefix = f"exported/{model_name}"
    _put_folder(workspace, sklearn_model_dir, prefix, ws="local-ws-2")
    source = (f"azureml://subscriptions/{workspace.subscription_id}/resourcegroups/{workspace.resource_group}"
              f"/workspaces/local-ws-2/datastores/workspaceblobstore/paths/{prefix}")
    client.create_registered_model(model_name)
    mv = client.create_model_version(model_name, source)
    stored = _stored(workspace, model_name, mv.version)
    assert "/workspaces/local-ws/datastores/workspaceblobstore/paths/LocalUpload/" in stored["modelUri"]
    assert mv.source == source
    assert len(mlflow.pyfunc.load_model(f"models:/{model_name}/{mv.version}").predict(iris.head(2))) == 2


def test_existing_asset_by_version_and_latest(workspace, client, model_name, sklearn_model_dir):
    client.create_registered_model(model_name)
    first = client.create_model_version(model_name, str(sklearn_model_dir))
    uri = _stored(workspace, model_name, first.version)["modelUri"]
    copy_name = model_name + "-c"
    client.create_registered_model(copy_name)
    by_version = client.create_model_version(copy_name, f"azureml:{model_name}:{first.version}")
    latest = client.create_model_version(copy_name, f"azureml:{model_name}@latest")
    assert _stored(workspace, copy_name, by_version.version)["modelUri"] == uri
    assert _stored(workspace, copy_name, latest.version)["modelUri"] == uri
    assert _stored(workspace, copy_name, latest.version)["modelType"] == "mlflow_model"
    with pytest.raises(MlflowException) as info:
        client.create_model_version(copy_name, f"azureml:{model_name}:99")
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_job_output_resolved_through_the_jobs_api(workspace, client, model_name, sklearn_model_dir, iris):
    job = f"job-{model_name}"
    _put_folder(workspace, sklearn_model_dir, f"azureml/{job}/model_output/model")
    workspace.state.put_job("local-ws", job, {"outputs": {
        "model_output": {"jobOutputType": "uri_folder", "mode": "ReadWriteMount",
                         "uri": f"azureml://datastores/workspaceblobstore/paths/azureml/{job}/model_output/"},
        "metrics": {"jobOutputType": "uri_folder", "uri": None}}})
    client.create_registered_model(model_name)
    mv = client.create_model_version(model_name, f"azureml://jobs/{job}/outputs/model_output/paths/model")
    stored = _stored(workspace, model_name, mv.version)
    assert stored["modelUri"].endswith(f"/paths/azureml/{job}/model_output/model")
    assert stored["properties"]["mlflow.referencedInPlace"] == "true"
    assert len(mlflow.pyfunc.load_model(f"models:/{model_name}/{mv.version}").predict(iris.head(2))) == 2
    # An output without an explicit uri is at the default place on the default datastore.
    _put_folder(workspace, sklearn_model_dir, f"azureml/{job}/metrics/model")
    mv2 = client.create_model_version(model_name, f"azureml://jobs/{job}/outputs/metrics/paths/model")
    assert _stored(workspace, model_name, mv2.version)["modelUri"].endswith(f"/paths/azureml/{job}/metrics/model")


def test_job_errors_are_clear(workspace, client, model_name):
    client.create_registered_model(model_name)
    with pytest.raises(MlflowException) as info:
        client.create_model_version(model_name, "azureml://jobs/no-such-job/outputs/out/paths/model")
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST" and "no-such-job" in info.value.message
    workspace.state.put_job("local-ws", f"j-{model_name}", {"outputs": {"a": {"uri": None}, "b": {"uri": None}}})
    with pytest.raises(MlflowException) as info:
        client.create_model_version(model_name, f"azureml://jobs/j-{model_name}/outputs/c/paths/model")
    assert "it has: a, b" in info.value.message


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("azureml://registries/shared/models/m/versions/1", "RESOURCE_DOES_NOT_EXIST"),  # no such registry
        ("azureml:only-a-name", "INVALID_PARAMETER_VALUE"),
        ("azureml://datastores/workspaceblobstore/paths/nothing-here/", "RESOURCE_DOES_NOT_EXIST"),
    ],
)
def test_bad_azure_ml_sources(workspace, client, model_name, source, code):
    client.create_registered_model(model_name)
    with pytest.raises(MlflowException) as info:
        client.create_model_version(model_name, source)
    assert info.value.error_code == code
    assert client.search_model_versions(f"name = '{model_name}'") == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    """A running ``mlflow server`` (its own SQLite backend and artifact store), on loopback; stopped with every
    process it started (gunicorn or uvicorn workers included)."""
    from tests.servers import MlflowServer

    with MlflowServer(tmp_path_factory.mktemp("server")) as server:
        yield server.url


def test_register_from_a_running_tracking_server(workspace, model_name, tracking_server, iris):
    from sklearn.linear_model import LogisticRegression

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_server)
    try:
        model = LogisticRegression(max_iter=300).fit(iris, [i % 3 for i in range(len(iris))])
        with mlflow.start_run() as run:
            if int(mlflow.__version__.split(".")[0]) >= 3:
                mlflow.sklearn.log_model(model, name="model")
            else:
                mlflow.sklearn.log_model(model, artifact_path="model")
        mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", model_name)
        assert mv.run_id == run.info.run_id
    finally:
        mlflow.set_tracking_uri(previous)
    loaded = mlflow.pyfunc.load_model(f"models:/{model_name}/{mv.version}")
    assert list(loaded.predict(iris.head(4))) == list(model.predict(iris.head(4)))


def test_identity_based_datastore_uses_the_callers_token(workspace, client, model_name, sklearn_model_dir, iris):
    """Datastores without credentials: blobs are reached with the identity's own token (storage scope)."""
    prefix = f"identity/{model_name}"
    _put_folder(workspace, sklearn_model_dir, prefix)  # same container as workspaceblobstore here
    client.create_registered_model(model_name)
    mv = client.create_model_version(model_name, f"azureml://datastores/workspaceblobstore_identity/paths/{prefix}")
    assert "/datastores/workspaceblobstore_identity/" in _stored(workspace, model_name, mv.version)["modelUri"]
    listed = [r for r in workspace.requests if r["path"].endswith("workspaceblobstore_identity/listSecrets")]
    assert listed == []  # never asked for secrets
    assert len(mlflow.pyfunc.load_model(f"models:/{model_name}/{mv.version}").predict(iris.head(2))) == 2


def test_users_without_list_secrets_permission_use_their_token(workspace, client, model_name, sklearn_model_dir):
    from mlflow_azureml_registry import session
    from mlflow_azureml_registry.local.handlers import Response

    class DenyListSecrets:
        def before(self, request):
            if request.path.endswith("/listSecrets"):
                return Response(403, {"error": {"code": "AuthorizationFailed", "message": "no listSecrets"}})
            return None

        def after(self, request, response):
            return True

    session.reset()  # no cached SAS
    workspace.set_interceptor(DenyListSecrets())
    try:
        client.create_registered_model(model_name)
        mv = client.create_model_version(model_name, str(sklearn_model_dir))
        out = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{mv.version}")
        assert (Path(out) / "MLmodel").read_bytes() == (sklearn_model_dir / "MLmodel").read_bytes()
    finally:
        workspace.set_interceptor(None)
        session.reset()
