"""Downloads are checked against the per-file SHA-256 manifest recorded when the version was registered."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from ..conftest import files_of

pytestmark = pytest.mark.emulator_only(
    "tampers with uploaded blobs through the emulator's account key and reads its state"
)


@pytest.fixture
def registered(workspace, client, model_name, sklearn_model_dir, tmp_path):
    """A version with files of its own (a nonce file makes its content address unique to this test)."""
    folder = tmp_path / "model"
    shutil.copytree(sklearn_model_dir, folder)
    (folder / "nonce.txt").write_text(uuid.uuid4().hex)
    (folder / "data").mkdir()
    (folder / "data" / "big.bin").write_bytes(os.urandom(6 * 1024 * 1024))  # block-parallel download path
    client.create_registered_model(model_name)
    mv = client.create_model_version(model_name, str(folder))
    stored = workspace.state.get_version("local-ws", model_name, str(mv.version))["properties"]
    prefix = stored["modelUri"].split("/paths/", 1)[1]
    datastore = workspace.datastore("local-ws")
    container = workspace.blob_service(datastore["accountName"]).get_container_client(datastore["containerName"])
    return model_name, mv.version, folder, prefix, container, stored


def test_manifest_is_recorded_and_downloads_verify(registered, tmp_path):
    name, version, folder, prefix, container, stored = registered
    assert len(stored["properties"]["mlflow.manifestSha256"]) == 64
    out = mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(tmp_path / "dl"))
    got = files_of(Path(out))
    got.pop("registered_model_meta", None)
    assert got == files_of(folder)
    # Single files and sub-folders are verified too.
    single = mlflow.artifacts.download_artifacts(f"models:/{name}/{version}/MLmodel", dst_path=str(tmp_path / "one"))
    assert Path(single).read_bytes() == (folder / "MLmodel").read_bytes()
    sub = mlflow.artifacts.download_artifacts(f"models:/{name}/{version}/data", dst_path=str(tmp_path / "sub"))
    assert (Path(sub) / "big.bin").read_bytes() == (folder / "data" / "big.bin").read_bytes()


@pytest.mark.parametrize("blob", ["MLmodel", "data/big.bin"])
def test_a_changed_file_is_an_error_not_a_silent_bad_model(registered, tmp_path, blob):
    name, version, folder, prefix, container, _ = registered
    original = (folder / blob).read_bytes()
    container.upload_blob(f"{prefix}/{blob}", original[:-1] + bytes([original[-1] ^ 1]), overwrite=True)
    with pytest.raises(MlflowException) as info:
        mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(tmp_path))
    assert info.value.error_code == "INVALID_STATE"
    assert "Integrity check failed" in info.value.message and blob in info.value.message
    assert not (tmp_path / blob).exists()  # the bad file is not left behind


@pytest.mark.parametrize("blob", ["MLmodel", "data/big.bin"])
def test_a_failed_download_removes_what_it_wrote_and_only_that(registered, tmp_path, blob):
    """Issue #15: only the bad file used to go; the rest of the model stayed in dst_path."""
    name, version, folder, prefix, container, _ = registered
    original = (folder / blob).read_bytes()
    container.upload_blob(f"{prefix}/{blob}", original[:-1] + bytes([original[-1] ^ 1]), overwrite=True)
    dst = tmp_path / "dst"
    (dst / "data").mkdir(parents=True)
    (dst / "mine.txt").write_text("the caller's")  # what was there before stays as it was
    (dst / "data" / "keep.bin").write_bytes(b"keep")
    with pytest.raises(MlflowException) as info:
        mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(dst))
    assert info.value.error_code == "INVALID_STATE"
    left = {p.relative_to(dst).as_posix() for p in dst.rglob("*")}
    assert left <= {"mine.txt", "data", "data/keep.bin", "registered_model_meta"}, left
    assert (dst / "mine.txt").read_text() == "the caller's" and (dst / "data" / "keep.bin").read_bytes() == b"keep"


@pytest.mark.parametrize(
    "path",
    ["", "LocalUpload", "LocalUpload/", "mlflow-azureml-registry/leases", "mlflow-azureml-registry"],
)
def test_a_download_outside_one_model_folder_is_refused(workspace, registered, tmp_path, path):
    """Issue #15: an empty path downloaded the whole datastore container (other models, the lease blobs)."""
    from mlflow_azureml_registry.uri import parse_registry_uri

    base = workspace.registry_uri() + "/datastores/workspaceblobstore/paths/" + path
    assert parse_registry_uri(workspace.registry_uri())  # a real workspace: only the scope refuses
    dst = tmp_path / "dst"
    dst.mkdir()
    mark = len(workspace.requests)
    with pytest.raises(MlflowException) as info:
        mlflow.artifacts.download_artifacts(base, dst_path=str(dst))
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "not inside one model version's folder" in info.value.message
    assert workspace.requests[mark:] == [] and list(dst.iterdir()) == []


def test_an_added_file_is_an_error(registered, tmp_path):
    name, version, _, prefix, container, _ = registered
    container.upload_blob(f"{prefix}/injected.py", b"print('hi')")
    with pytest.raises(MlflowException, match="not part of the registered version") as info:
        mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(tmp_path))
    assert info.value.error_code == "INVALID_STATE"


def test_a_missing_file_is_an_error(registered, tmp_path):
    name, version, _, prefix, container, _ = registered
    container.delete_blob(f"{prefix}/nonce.txt")
    with pytest.raises(MlflowException, match="missing from storage"):
        mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(tmp_path))


def test_a_changed_manifest_is_an_error(registered, tmp_path):
    name, version, _, prefix, container, _ = registered
    manifest = prefix.rsplit("/", 1)[0] + "/.mlflow-manifest.json"
    container.upload_blob(manifest, b'{"version":1,"files":{}}', overwrite=True)
    with pytest.raises(MlflowException, match="manifest .* does not match"):
        mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(tmp_path))


def test_manifest_is_invisible_to_listings_and_the_azure_ml_sdk(workspace, registered, client):
    name, version, *_ = registered
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(client.get_model_version_download_uri(name, version))
    assert ".mlflow-manifest.json" not in {f.path for f in repo.list_artifacts()}


def test_upload_killed_midway_leaves_no_version_and_retry_succeeds(
    workspace, client, model_name, sklearn_model_dir, tmp_path, monkeypatch
):
    from azure.core.exceptions import ServiceRequestError
    from azure.core.pipeline.transport import RequestsTransport

    folder = tmp_path / "model"
    shutil.copytree(sklearn_model_dir, folder)
    (folder / "weights.bin").write_bytes(os.urandom(9 * 1024 * 1024))  # several blocks
    client.create_registered_model(model_name)
    monkeypatch.setenv("MLFLOW_AZUREML_RETRY_TOTAL", "0")  # fail fast: no 15 s storage backoff
    from mlflow_azureml_registry import session

    session.reset()
    original = RequestsTransport.send
    blob_requests = []

    def failing_send(self, request, **kwargs):
        if f":{workspace.blob_port}/" in request.url and request.method == "PUT":
            blob_requests.append(request.url)
            if len(blob_requests) > 3:  # the storage account goes away mid-upload
                raise ServiceRequestError("connection refused (test)")
        return original(self, request, **kwargs)

    monkeypatch.setattr(RequestsTransport, "send", failing_send)
    with pytest.raises(MlflowException) as info:
        client.create_model_version(model_name, str(folder))
    assert "upload of" in info.value.message and "Traceback" not in info.value.message
    assert client.search_model_versions(f"name = '{model_name}'") == []  # no version without its files

    monkeypatch.setattr(RequestsTransport, "send", original)
    mv = client.create_model_version(model_name, str(folder))
    out = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{mv.version}", dst_path=str(tmp_path / "dl"))
    got = files_of(Path(out))
    got.pop("registered_model_meta", None)
    assert got == files_of(folder)
    session.reset()
