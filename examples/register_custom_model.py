"""Register a folder that is not an MLflow model (no ``MLmodel`` file) and download it back.

Any folder can be registered: one with an ``MLmodel`` file becomes an Azure ML ``mlflow_model`` asset, any other a
``custom_model`` asset (a pickle, ONNX or TorchScript file, a tokenizer, ...), with its files as they are. MLflow
reads and downloads it like any version; ``mlflow.pyfunc.load_model`` needs an MLflow model, so such a folder is
fetched with ``mlflow.artifacts.download_artifacts("models:/...")`` and loaded by your own code.

    export MLFLOW_REGISTRY_URI=azureml-registry://subscriptions/<sub>/resourceGroups/<rg>/workspaces/<ws>
    python examples/register_custom_model.py         # pip install azure-ai-ml: step 2 shows Azure ML's view

``MODEL_NAME`` sets the registered model's name (default: ``custom-<random suffix>``). The folder, its download
and the tracking store (a SQLite file, when ``MLFLOW_TRACKING_URI`` is unset) are in a temporary folder, deleted
at the end.
"""

from __future__ import annotations

import filecmp
import json
import os
import pickle
import tempfile
import uuid
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier


def main() -> None:
    registry_uri = os.environ.get("MLFLOW_REGISTRY_URI", "")
    if not registry_uri.startswith("azureml-registry://"):
        raise SystemExit("Set MLFLOW_REGISTRY_URI (see README: `mlflow-azureml-registry local` prints it)")
    name = os.environ.get("MODEL_NAME") or f"custom-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="custom-model-") as workdir:
        if not os.environ.get("MLFLOW_TRACKING_URI"):  # MLflow 3 opens the tracking store too: keep it out of ./
            mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
        mlflow.set_registry_uri(registry_uri)
        steps(name, registry_uri, Path(workdir))


def steps(name: str, registry_uri: str, workdir: Path) -> None:
    """The four steps; ``workdir`` holds the model folder and its download."""
    # 1. A model folder of your own: a pickle, its settings, a README. No MLmodel file.
    X, y = load_iris(return_X_y=True)
    folder = workdir / "iris_tree"
    (folder / "config").mkdir(parents=True)
    with open(folder / "model.pkl", "wb") as f:
        pickle.dump(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y), f)
    (folder / "config" / "labels.json").write_text(json.dumps(["setosa", "versicolor", "virginica"]))
    (folder / "README.md").write_text("Iris decision tree. Load model.pkl with pickle; labels in config/.\n")
    mv = mlflow.register_model(str(folder), name, tags={"format": "pickle"})
    print(f"1. registered {folder.name}/ as {name} version {mv.version}")

    # 2. Azure ML's view, through its own SDK: a custom_model asset (no flavors), with MLflow's tags.
    from azure_ml_view import ml_client  # examples/azure_ml_view.py: an MLClient on the same workspace

    asset = ml_client(registry_uri).models.get(name, version=mv.version)
    assert asset.type == "custom_model", asset.type
    assert asset.tags.get("format") == "pickle", asset.tags
    print(f"2. Azure ML sees {asset.name}:{asset.version} type={asset.type} tags={asset.tags}")

    # 3. Download it back through MLflow and use it.
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{mv.version}", dst_path=str(workdir / "out")))
    files = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    assert files == ["README.md", "config/labels.json", "model.pkl"], files
    same = filecmp.cmpfiles(folder, local, files, shallow=False)[0]
    assert sorted(same) == files, same  # byte for byte what was registered
    with open(local / "model.pkl", "rb") as f:
        labels = json.loads((local / "config" / "labels.json").read_text())
        predicted = [labels[i] for i in pickle.load(f).predict(X[[0, 50, 100]])]
    print(f"3. downloaded models:/{name}/{mv.version}: files {files}, predictions {predicted}")

    # 4. MLflow lists it like any other version; it points at the same files in the workspace's datastore.
    listed = MlflowClient().get_model_version_download_uri(name, mv.version)
    print(f"4. download URI {listed}")


if __name__ == "__main__":
    main()
