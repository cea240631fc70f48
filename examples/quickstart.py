"""Quickstart: train a model, log it, register it in Azure ML, load it back with models:/, and check
what Azure ML's own SDK sees.

Run it against the local workspace (README, first command) or a real workspace:
    export MLFLOW_REGISTRY_URI=azureml-registry://subscriptions/<sub>/resourceGroups/<rg>/workspaces/<ws>
    python examples/quickstart.py
Tracking stays wherever you keep it (here a local SQLite file): the registry is independent of it.
"""

from __future__ import annotations

import os
import re
import tempfile

import mlflow
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

MODEL_NAME = "iris-classifier"


def main() -> None:
    registry_uri = os.environ.get("MLFLOW_REGISTRY_URI", "")
    if not registry_uri.startswith("azureml-registry://"):
        raise SystemExit("Set MLFLOW_REGISTRY_URI (see README: `mlflow-azureml-registry local` prints it)")
    workdir = tempfile.mkdtemp(prefix="quickstart-")
    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    mlflow.set_registry_uri(registry_uri)

    # 1. Train and log a model (any tracking server works; here a local SQLite file).
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    with mlflow.start_run() as run:
        if int(mlflow.__version__.split(".")[0]) >= 3:
            info = mlflow.sklearn.log_model(model, name="model", input_example=X.head(3))
        else:
            info = mlflow.sklearn.log_model(model, artifact_path="model", input_example=X.head(3))

    # 2. Register it in the Azure ML workspace.
    mv = mlflow.register_model(info.model_uri, MODEL_NAME, tags={"team": "quickstart"})
    print(f"Registered {MODEL_NAME} version {mv.version} (run {run.info.run_id})")

    # 3. Load it back by models:/ URI, as a notebook would, and predict.
    loaded = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{mv.version}")
    predictions = loaded.predict(X.head(5))
    assert list(predictions) == list(model.predict(X.head(5))), "loaded model predicts differently"
    print(f"Loaded models:/{MODEL_NAME}/{mv.version} and predicted {list(predictions)}")
    assert MlflowClient().get_model_version(MODEL_NAME, mv.version).tags == {"team": "quickstart"}

    # 4. What Azure ML users see, through Azure ML's own SDK.
    check_with_azure_ml_sdk(registry_uri, mv.version)
    print("Azure ML's MLClient sees the same model version: OK")


def check_with_azure_ml_sdk(registry_uri: str, version: str) -> None:
    from azure.storage.blob import ContainerClient

    ml_client = _ml_client(registry_uri)
    asset = ml_client.models.get(MODEL_NAME, version=version)
    assert asset.type == "mlflow_model", asset.type
    assert asset.tags.get("team") == "quickstart", asset.tags
    assert asset.stage == "Development", asset.stage  # Azure ML's default stage; MLflow reads it as "None"
    match = re.search(r"/datastores/([^/]+)/paths/(.+)$", asset.path)
    assert match, asset.path
    datastore = ml_client.datastores.get(match.group(1), include_secrets=True)
    account_url = os.environ.get("MLFLOW_AZUREML_STORAGE_ACCOUNT_URL", "https://{account}.blob.core.windows.net")
    container = ContainerClient(
        account_url.format(account=datastore.account_name),
        datastore.container_name,
        credential=datastore.credentials.sas_token or datastore.credentials.account_key,
    )
    files = {b.name.rsplit("/", 1)[-1] for b in container.list_blobs(name_starts_with=match.group(2) + "/")}
    model_file = asset.flavors["sklearn"]["pickled_model"]  # the file MLflow's sklearn flavor wrote
    assert {"MLmodel", model_file} <= files, files
    print(f"Azure ML model {asset.name}:{asset.version} type={asset.type} stage={asset.stage} files={sorted(files)}")


def _ml_client(registry_uri: str):
    """An MLClient for the workspace in the registry URI (the local workspace needs its endpoints)."""
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    from mlflow_azureml_registry.credentials import StaticTokenCredential
    from mlflow_azureml_registry.uri import parse_registry_uri

    ws = parse_registry_uri(registry_uri)
    common = dict(
        subscription_id=ws.subscription_id,
        resource_group_name=ws.resource_group,
        workspace_name=ws.workspace_name,
        enable_telemetry=False,
        show_progress=False,
    )
    token = os.environ.get("MLFLOW_AZUREML_LOCAL_TOKEN")
    if not token:
        return MLClient(DefaultAzureCredential(exclude_interactive_browser_credential=True), **common)
    arm = os.environ["MLFLOW_AZUREML_RESOURCE_MANAGER_URL"]
    cloud = "LocalWorkspace" + re.sub(r"\W", "", arm.rsplit(":", 1)[-1])
    metadata = {
        "azure_portal": arm + "/",
        "resource_manager": arm + "/",
        "active_directory": arm + "/",
        "aml_resource_id": arm + "/",
        "storage_endpoint": "core.localhost",
        "registry_discovery_endpoint": arm + "/",
    }
    return MLClient(StaticTokenCredential(token), cloud=cloud, cloud_metadata=metadata, **common)


if __name__ == "__main__":
    main()
