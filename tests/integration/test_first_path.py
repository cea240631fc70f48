"""The first real path: register from a notebook, load back, and see it as Azure ML users do."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from tests import processes

from ..conftest import files_of


def assert_same_model_files(downloaded: Path, source: dict[str, bytes]) -> None:
    """Byte-identical files; MLflow itself may add ``registered_model_meta`` when loading models:/ URIs."""
    got = files_of(downloaded)
    got.pop("registered_model_meta", None)
    assert got == source


def _arm_requests(workspace, since=0):
    return [(r["method"], r["path"].split("/workspaces/", 1)[-1].split("/", 1)[-1]) for r in workspace.requests[since:]]


def test_register_local_folder_load_and_predict(workspace, model_name, sklearn_model_dir, iris):
    mv = mlflow.register_model(str(sklearn_model_dir), model_name)
    assert mv.version == 1 and mv.current_stage == "None" and mv.status == "READY"
    assert mv.source == str(sklearn_model_dir)
    loaded = mlflow.pyfunc.load_model(f"models:/{model_name}/1")
    expected = mlflow.pyfunc.load_model(str(sklearn_model_dir)).predict(iris.head(10))
    assert list(loaded.predict(iris.head(10))) == list(expected)


def test_create_protocol_request_sequence(workspace, client, model_name, sklearn_model_dir):
    client.create_registered_model(model_name)
    mark = len(workspace.requests)
    client.create_model_version(model_name, str(sklearn_model_dir))
    calls = _arm_requests(workspace, mark)
    # Datastore and secret are cached per process, so they may be absent here.
    calls = [c for c in calls if not c[1].startswith("datastores/")]
    assert calls == [
        ("GET", f"models/{model_name}"),  # the model exists, before any upload
        ("GET", f"models/{model_name}"),  # under the write lease: nextVersion
        ("PUT", f"models/{model_name}/versions/1"),
        ("GET", f"models/{model_name}/versions/1"),  # verify the registration id
        ("PUT", f"models/{model_name}"),  # the model's last update is the version's creation, as in MLflow
    ]
    version = client.get_model_version(model_name, "1")
    assert client.get_registered_model(model_name).last_updated_timestamp == version.creation_timestamp


def test_version_exists_only_after_its_files(workspace, client, model_name, sklearn_model_dir):
    client.create_registered_model(model_name)
    mv = client.create_model_version(model_name, f"file://{sklearn_model_dir}")
    version = workspace.state.get_version("local-ws", model_name, str(mv.version))
    uri = version["properties"]["modelUri"]
    assert "/datastores/workspaceblobstore/paths/LocalUpload/" in uri and uri.endswith("/iris_model")
    prefix = uri.split("/paths/", 1)[1]
    datastore = workspace.datastore("local-ws")
    container = workspace.blob_service(datastore["accountName"]).get_container_client(datastore["containerName"])
    blobs = {
        b.name[len(prefix) + 1 :]: b for b in container.list_blobs(name_starts_with=prefix + "/", include=["metadata"])
    }
    assert set(blobs) == set(files_of(sklearn_model_dir))
    # The Azure ML SDK's completion marker sits on the first file in sorted order.
    assert blobs["MLmodel"].metadata.get("upload_status") == "completed"


def test_model_type_flavors_and_facts_as_azure_ml_stores_them(workspace, client, model_name, sklearn_model_dir):
    client.create_registered_model(model_name)
    mv = client.create_model_version(
        model_name, str(sklearn_model_dir), run_id="run-123", description="d1", tags={"team": "fraud"}
    )
    stored = workspace.state.get_version("local-ws", model_name, str(mv.version))["properties"]
    assert stored["modelType"] == "mlflow_model"
    import yaml

    mlmodel = yaml.safe_load((sklearn_model_dir / "MLmodel").read_text())
    assert stored["flavors"]["sklearn"]["data"]["pickled_model"] == mlmodel["flavors"]["sklearn"]["pickled_model"]
    assert all(isinstance(v, str) for f in stored["flavors"].values() for v in f["data"].values())
    assert stored["tags"] == {"team": "fraud"} and stored["description"] == "d1"
    assert stored["properties"]["mlflow.runId"] == "run-123"
    assert stored["properties"]["mlflow.source"] == str(sklearn_model_dir)
    assert stored["stage"] == "Development"
    got = client.get_model_version(model_name, mv.version)
    assert (got.run_id, got.description, got.tags, got.current_stage) == ("run-123", "d1", {"team": "fraud"}, "None")


def test_non_mlflow_folder_registers_as_custom_model(workspace, client, model_name, tmp_path):
    (tmp_path / "weights.bin").write_bytes(os.urandom(2048))
    (tmp_path / "config.json").write_text("{}")
    client.create_registered_model(model_name)
    mv = client.create_model_version(model_name, str(tmp_path))
    stored = workspace.state.get_version("local-ws", model_name, str(mv.version))["properties"]
    assert stored["modelType"] == "custom_model"
    source = files_of(tmp_path)
    (tmp_path / "dl").mkdir()
    out = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{mv.version}", dst_path=str(tmp_path / "dl"))
    assert_same_model_files(Path(out), source)


def test_register_from_runs_uri_mlflow3_logged_model(workspace, model_name, iris):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=300).fit(iris, [i % 3 for i in range(len(iris))])
    with mlflow.start_run() as run:
        if int(mlflow.__version__.split(".")[0]) >= 3:
            info = mlflow.sklearn.log_model(model, name="model")
        else:
            info = mlflow.sklearn.log_model(model, artifact_path="model")
    mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", model_name)
    assert mv.run_id == run.info.run_id
    logged = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    logged_files = files_of(logged)
    logged_files.pop("registered_model_meta", None)  # MLflow adds it when downloading models:/ URIs
    registered = Path(mlflow.artifacts.download_artifacts(f"models:/{model_name}/{mv.version}"))
    assert_same_model_files(registered, logged_files)  # exactly the logged files, nothing added
    if int(mlflow.__version__.split(".")[0]) >= 3:
        assert mv.source == info.model_uri and mv.model_id == info.model_id
    loaded = mlflow.pyfunc.load_model(f"models:/{model_name}/{mv.version}")
    assert list(loaded.predict(iris.head(5))) == list(model.predict(iris.head(5)))


@pytest.mark.skipif(int(mlflow.__version__.split(".")[0]) < 3, reason="logged models arrived in MLflow 3")
def test_register_logged_model_uri_fills_run_id(workspace, model_name, iris):
    from sklearn.linear_model import LogisticRegression

    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(LogisticRegression().fit(iris, [i % 2 for i in range(len(iris))]), name="m")
    mv = mlflow.register_model(f"models:/{info.model_id}", model_name)
    assert mv.run_id == run.info.run_id  # from the logged model's source run, as MLflow's SQL registry does
    assert mv.model_id == info.model_id


def test_register_from_mlflow2_style_run_artifacts(workspace, model_name, sklearn_model_dir, iris):
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(sklearn_model_dir), artifact_path="legacy")
    mv = mlflow.register_model(f"runs:/{run.info.run_id}/legacy", model_name)
    loaded = mlflow.pyfunc.load_model(f"models:/{model_name}/{mv.version}")
    assert len(loaded.predict(iris.head(3))) == 3


def test_reregistering_identical_files_uploads_nothing(workspace, client, model_name, sklearn_model_dir):
    client.create_registered_model(model_name)
    first = client.create_model_version(model_name, str(sklearn_model_dir))
    uri = workspace.state.get_version("local-ws", model_name, str(first.version))["properties"]["modelUri"]
    prefix = uri.split("/paths/", 1)[1]
    datastore = workspace.datastore("local-ws")
    container = workspace.blob_service(datastore["accountName"]).get_container_client(datastore["containerName"])
    before = {b.name: b.etag for b in container.list_blobs(name_starts_with=prefix)}
    second = client.create_model_version(model_name, str(sklearn_model_dir))
    assert second.version == 2
    assert workspace.state.get_version("local-ws", model_name, "2")["properties"]["modelUri"] == uri
    assert {b.name: b.etag for b in container.list_blobs(name_starts_with=prefix)} == before


def test_half_finished_upload_is_not_reused(workspace, client, model_name, sklearn_model_dir):
    """Files at the content address without the completion marker are uploaded again."""
    from mlflow_azureml_registry.content import snapshot

    snap = snapshot(sklearn_model_dir)
    prefix = f"LocalUpload/{snap.content_hash}/iris_model"
    datastore = workspace.datastore("local-ws")
    container = workspace.blob_service(datastore["accountName"]).get_container_client(datastore["containerName"])
    for blob in container.list_blobs(name_starts_with=prefix):
        container.delete_blob(blob.name)
    container.upload_blob(f"{prefix}/MLmodel", b"truncated", overwrite=True)  # no marker
    client.create_registered_model(model_name)
    mv = client.create_model_version(model_name, str(sklearn_model_dir))
    downloaded = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{mv.version}")
    assert_same_model_files(Path(downloaded), files_of(sklearn_model_dir))
    assert container.download_blob(f"{prefix}/MLmodel").readall() == (sklearn_model_dir / "MLmodel").read_bytes()


def test_unknown_model_and_version_errors(workspace, client, model_name, sklearn_model_dir):
    with pytest.raises(MlflowException) as info:
        client.get_registered_model(model_name)
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as info:
        client.create_model_version(model_name, str(sklearn_model_dir))
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.create_registered_model(model_name)
    with pytest.raises(MlflowException) as info:
        client.get_model_version(model_name, "7")
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert f"name={model_name}, version=7" in info.value.message


def test_duplicate_registered_model(workspace, client, model_name):
    client.create_registered_model(model_name)
    with pytest.raises(MlflowException) as info:
        client.create_registered_model(model_name)
    assert info.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_missing_source_is_clear_and_registers_nothing(workspace, client, model_name, tmp_path):
    client.create_registered_model(model_name)
    with pytest.raises(MlflowException) as info:
        client.create_model_version(model_name, str(tmp_path / "nope"))
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST" and "does not exist" in info.value.message
    assert client.search_model_versions(f"name = '{model_name}'") == []


def test_download_uri_and_artifact_listing(workspace, client, model_name, sklearn_model_dir):
    client.create_registered_model(model_name)
    mv = client.create_model_version(model_name, str(sklearn_model_dir))
    uri = client.get_model_version_download_uri(model_name, mv.version)
    assert uri.startswith(workspace.registry_uri() + "/datastores/workspaceblobstore/sha256/")
    assert "/paths/LocalUpload/" in uri  # the manifest digest rides in the URI, so downloads are verified
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(uri)
    listed = {f.path: (f.is_dir, f.file_size) for f in repo.list_artifacts()}
    expected = {p: len(b) for p, b in files_of(sklearn_model_dir).items() if "/" not in p}
    assert {p: s for p, (d, s) in listed.items() if not d} == expected


def test_load_in_fresh_process_with_only_printed_environment(
    workspace, client, model_name, sklearn_model_dir, iris, tmp_path
):
    """Every models:/ form loads in a fresh process that has only what `local` prints (no tracking URI)."""
    mv = mlflow.register_model(str(sklearn_model_dir), model_name)
    client.transition_model_version_stage(model_name, mv.version, "Production")
    client.set_registered_model_alias(model_name, "champion", mv.version)
    iris.head(4).to_csv(tmp_path / "rows.csv", index=False)
    uris = [f"models:/{model_name}/{mv.version}", f"models:/{model_name}/latest",
            f"models:/{model_name}/Production", f"models:/{model_name}@champion"]
    code = textwrap.dedent(f"""
        import json, mlflow, pandas
        rows = pandas.read_csv("rows.csv")
        print(json.dumps([[int(x) for x in mlflow.pyfunc.load_model(uri).predict(rows)] for uri in {uris!r}]))
        local = mlflow.artifacts.download_artifacts({uris[0]!r}, dst_path="dl")
        print(sorted(__import__("os").listdir(local)))
    """)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **workspace.env,
           "IDENTITY_ENDPOINT": "http://127.0.0.1:9/token", "IDENTITY_HEADER": "x"}
    out = processes.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                        timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    expected = [int(x) for x in mlflow.pyfunc.load_model(str(sklearn_model_dir)).predict(iris.head(4))]
    predictions, listing = out.stdout.strip().splitlines()[-2:]
    assert json.loads(predictions) == [expected] * 4
    assert "MLmodel" in listing


def test_azure_ml_sdk_downloads_what_was_registered(workspace, client, model_name, sklearn_model_dir, tmp_path):
    """Azure ML's own MLClient downloads the registered version byte for byte."""
    from azure.ai.ml import MLClient

    from mlflow_azureml_registry.local.testing import resolve_localhost

    client.create_registered_model(model_name)
    mv = client.create_model_version(model_name, str(sklearn_model_dir), tags={"k": "v"})
    ml_client = MLClient(**workspace.ml_client_kwargs())
    asset = ml_client.models.get(model_name, version=mv.version)
    assert (asset.type, asset.tags, asset.stage) == ("mlflow_model", {"k": "v"}, "Development")
    with resolve_localhost():  # the SDK always builds https://<account>.blob.<suffix> URLs
        ml_client.models.download(model_name, version=mv.version, download_path=str(tmp_path))
    downloaded = tmp_path / model_name / "iris_model"
    assert files_of(downloaded) == files_of(sklearn_model_dir)


def test_plugin_reuses_an_upload_made_by_the_azure_ml_sdk(workspace, client, model_name, sklearn_model_dir):
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import Model

    from mlflow_azureml_registry.local.testing import resolve_localhost

    ml_client = MLClient(**workspace.ml_client_kwargs())
    sdk_name = model_name + "-sdk"
    with resolve_localhost():
        sdk_model = ml_client.models.create_or_update(
            Model(name=sdk_name, path=str(sklearn_model_dir), type="mlflow_model")
        )
    client.create_registered_model(model_name)
    mv = client.create_model_version(model_name, str(sklearn_model_dir))
    ours = workspace.state.get_version("local-ws", model_name, str(mv.version))["properties"]["modelUri"]
    assert ours.split("/paths/")[1] == sdk_model.path.split("/paths/")[1]


def test_mlflow_models_serve_from_the_registry(workspace, model_name, sklearn_model_dir, iris, tmp_path):
    """`mlflow models serve -m models:/...` in a fresh process with only the printed environment."""
    import socket

    import requests

    mv = mlflow.register_model(str(sklearn_model_dir), model_name)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])  # the venv's uvicorn/gunicorn
    env = {"PATH": path, "HOME": str(tmp_path), **workspace.env,
           "IDENTITY_ENDPOINT": "http://127.0.0.1:9/token", "IDENTITY_HEADER": "x"}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{model_name}/{mv.version}",
         "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        body = {"dataframe_split": json.loads(iris.head(3).to_json(orient="split"))}
        for _ in range(600):
            try:
                answer = requests.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=5)
                break
            except requests.ConnectionError:
                assert server.poll() is None, server.stderr.read().decode()[-3000:]
                time.sleep(0.2)
        assert answer.status_code == 200, answer.text
        expected = mlflow.pyfunc.load_model(str(sklearn_model_dir)).predict(iris.head(3))
        assert [int(x) for x in answer.json()["predictions"]] == [int(x) for x in expected]
    finally:  # the whole process group: `mlflow models serve` runs its server in worker processes
        import signal

        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
