"""Quickstart: train a model, log it, register it in Azure ML, load it back with models:/, and check
what Azure ML's own SDK sees.

Run it against the local workspace (README, first command) or a real workspace:
    export MLFLOW_REGISTRY_URI=azureml-registry://subscriptions/<sub>/resourceGroups/<rg>/workspaces/<ws>
    python examples/quickstart.py            # pip install azure-ai-ml scikit-learn: step 4 uses Azure ML's SDK
Tracking stays wherever you keep it (here a temporary SQLite file, deleted at the end): the registry is independent
of it. ``MODEL_NAME`` sets the registered model's name (default: ``iris-classifier-<random suffix>``).
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid

import mlflow
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def main() -> None:
    registry_uri = os.environ.get("MLFLOW_REGISTRY_URI", "")
    if not registry_uri.startswith("azureml-registry://"):
        raise SystemExit("Set MLFLOW_REGISTRY_URI (see README: `mlflow-azureml-registry local` prints it)")
    name = os.environ.get("MODEL_NAME") or f"iris-classifier-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="quickstart-") as workdir:  # the runs' store; deleted at the end
        mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
        mlflow.set_experiment(experiment_id=mlflow.create_experiment("quickstart", f"{workdir}/artifacts"))
        mlflow.set_registry_uri(registry_uri)
        steps(name, registry_uri, workdir)


def steps(name: str, registry_uri: str, workdir: str) -> None:
    """The four steps; ``workdir`` holds the tracking store and the loaded model's files."""
    # 1. Train and log a model (any tracking server works; here a local SQLite file).
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    with mlflow.start_run() as run:
        if int(mlflow.__version__.split(".")[0]) >= 3:
            info = mlflow.sklearn.log_model(model, name="model", input_example=X.head(3))
        else:
            info = mlflow.sklearn.log_model(model, artifact_path="model", input_example=X.head(3))
    print(f"1. logged run {run.info.run_id}: {info.model_uri}")

    # 2. Register it in the Azure ML workspace (MLflow 3: models:/m-<id>; MLflow 2: runs:/<run>/model).
    mv = mlflow.register_model(info.model_uri, name, tags={"team": "quickstart"})
    assert MlflowClient().get_model_version(name, mv.version).tags == {"team": "quickstart"}
    print(f"2. registered {name} version {mv.version} (run {mv.run_id})")

    # 3. Load it back by models:/ URI, as a notebook would, and predict.
    #    (its files go to workdir: without dst_path, MLflow leaves them in a new temporary folder)
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/{mv.version}", dst_path=workdir)
    predictions = [int(p) for p in loaded.predict(X.head(5))]
    assert predictions == [int(p) for p in model.predict(X.head(5))], "loaded model predicts differently"
    print(f"3. loaded models:/{name}/{mv.version}: predictions {predictions}")

    # 4. What Azure ML users see, through Azure ML's own SDK.
    print(f"4. {check_with_azure_ml_sdk(registry_uri, name, mv.version)}")


def check_with_azure_ml_sdk(registry_uri: str, name: str, version: str) -> str:
    """Azure ML's view of the version (type, stage, files in its datastore), checked; returns it as one line."""
    from azure.storage.blob import ContainerClient
    from azure_ml_view import ml_client  # examples/azure_ml_view.py: an MLClient on the same workspace

    client = ml_client(registry_uri)
    asset = client.models.get(name, version=version)
    assert asset.type == "mlflow_model", asset.type
    assert asset.tags.get("team") == "quickstart", asset.tags
    assert asset.stage == "Development", asset.stage  # Azure ML's default stage; MLflow reads it as "None"
    match = re.search(r"/datastores/([^/]+)/paths/(.+)$", asset.path)
    assert match, asset.path
    datastore = client.datastores.get(match.group(1), include_secrets=True)
    account_url = os.environ.get("MLFLOW_AZUREML_STORAGE_ACCOUNT_URL", "https://{account}.blob.core.windows.net")
    container = ContainerClient(
        account_url.format(account=datastore.account_name),
        datastore.container_name,
        credential=datastore.credentials.sas_token or datastore.credentials.account_key,
    )
    files = {b.name.rsplit("/", 1)[-1] for b in container.list_blobs(name_starts_with=match.group(2) + "/")}
    model_file = asset.flavors["sklearn"]["pickled_model"]  # the file MLflow's sklearn flavor wrote
    assert {"MLmodel", model_file} <= files, files
    return f"Azure ML's SDK sees {asset.name}:{asset.version} type={asset.type} stage={asset.stage} " \
        f"files={sorted(files)}"


if __name__ == "__main__":
    main()
