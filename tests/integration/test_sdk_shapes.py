"""Versions made by the Azure ML SDK (or CLI, or Studio), in the shapes they make, read through MLflow.

`az ml model create --path model.pkl` and ``MLClient.models.create_or_update(Model(path="model.pkl"))`` make a
version whose path is one *file* (``.../paths/LocalUpload/<hash>/model.pkl``), not a folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest

from mlflow_azureml_registry.local.testing import resolve_localhost

pytestmark = pytest.mark.emulator_only("the Azure ML SDK uploads to the emulator's storage through resolve_localhost")


@pytest.fixture
def ml_client(workspace):
    from azure.ai.ml import MLClient

    return MLClient(**workspace.ml_client_kwargs())


@pytest.mark.parametrize("size", [100, 5 * 1024 * 1024 + 7])  # one GET; parallel ranges
def test_a_version_whose_path_is_one_file_downloads_and_loads(workspace, ml_client, model_name, tmp_path, size):
    from azure.ai.ml.entities import Model

    data = os.urandom(size)
    (tmp_path / "model.pkl").write_bytes(data)
    with resolve_localhost():
        made = ml_client.models.create_or_update(
            Model(name=model_name, path=str(tmp_path / "model.pkl"), type="custom_model")
        )
    assert made.path.endswith("/model.pkl")  # the SDK's shape: the version's path is the file itself
    dst = tmp_path / "out"
    dst.mkdir()
    local = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{made.version}", dst_path=str(dst))
    assert Path(local).read_bytes() == data
    assert [p.name for p in dst.rglob("*") if p.is_file()] == ["model.pkl"]
    client = mlflow.MlflowClient()
    uri = client.get_model_version_download_uri(model_name, made.version)
    assert uri.endswith("/model.pkl")
    # the artifact repository answers for the file as MLflow's own repositories do for a file URI
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    again = tmp_path / "again"
    again.mkdir()
    assert Path(get_artifact_repository(uri).download_artifacts("", str(again))).read_bytes() == data
