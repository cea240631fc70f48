"""Re-registering files already uploaded reuses them only if the stored upload still holds exactly those files.

Issue #15: with the datastore's SAS, anyone can overwrite a file or the manifest under ``LocalUpload/<hash>/``
and keep the completion marker. Reusing that folder created a version that could never load, and, the path being
content-addressed, so did every later registration of the same files.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import mlflow
import pytest

from mlflow_azureml_registry import registration

from ..conftest import files_of

pytestmark = pytest.mark.emulator_only("tampers with uploads through the emulator's account key and reads its state")


@pytest.fixture
def uploaded(workspace, client, model_name, sklearn_model_dir, tmp_path):
    """A folder registered once (version 1), with its blob container and upload prefix."""
    folder = tmp_path / "model"
    shutil.copytree(sklearn_model_dir, folder)
    (folder / "nonce.txt").write_text(uuid.uuid4().hex)  # a content address of this test's own
    client.create_registered_model(model_name)
    mv = client.create_model_version(model_name, str(folder))
    stored = workspace.state.get_version("local-ws", model_name, str(mv.version))["properties"]
    prefix = stored["modelUri"].split("/paths/", 1)[1]
    datastore = workspace.datastore("local-ws")
    container = workspace.blob_service(datastore["accountName"]).get_container_client(datastore["containerName"])
    return folder, prefix, container


def _keep_marker_and(container, blob, write):
    """Change a blob the way a SAS holder can, then put the completion marker back as it was."""
    client = container.get_blob_client(blob)
    metadata = client.get_blob_properties().metadata
    write(client)
    client.set_blob_metadata(metadata)


TAMPERING = {
    "file-changed-same-name": lambda c, p, f: _keep_marker_and(c, f"{p}/MLmodel", lambda b: b.upload_blob(
        b"tampered", overwrite=True)),
    "manifest-changed": lambda c, p, f: c.get_blob_client(registration.manifest_blob(p)).upload_blob(
        b'{"files": {}}', overwrite=True),
    "file-deleted": lambda c, p, f: c.get_blob_client(f"{p}/nonce.txt").delete_blob(),
    "file-added": lambda c, p, f: c.get_blob_client(f"{p}/extra.bin").upload_blob(b"x", overwrite=True),
}


@pytest.mark.parametrize("tamper", list(TAMPERING))
def test_a_tampered_upload_is_uploaded_again_and_the_new_version_loads(
    tamper, workspace, client, model_name, uploaded, tmp_path
):
    folder, prefix, container = uploaded
    TAMPERING[tamper](container, prefix, folder)
    mv = client.create_model_version(model_name, str(folder))  # the same files: the same content address
    out = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{mv.version}", dst_path=str(tmp_path / "dl"))
    got = files_of(Path(out))
    got.pop("registered_model_meta", None)
    assert got == files_of(folder)
    # The stored upload is whole again, so version 1 (same files) loads too.
    out1 = mlflow.artifacts.download_artifacts(f"models:/{model_name}/1", dst_path=str(tmp_path / "dl1"))
    got1 = files_of(Path(out1))
    got1.pop("registered_model_meta", None)
    assert got1 == files_of(folder)


def test_an_intact_upload_is_reused_without_uploading(workspace, client, model_name, uploaded):
    folder, prefix, container = uploaded
    before = {b.name: b.etag for b in container.list_blobs(name_starts_with=prefix + "/")}
    client.create_model_version(model_name, str(folder))
    after = {b.name: b.etag for b in container.list_blobs(name_starts_with=prefix + "/")}
    assert after == before  # nothing written again
