"""Register a model logged on any MLflow tracking server (not Azure ML's) in an Azure ML workspace.

Tracking and registry are independent in MLflow: runs stay on the tracking server you use (``MLFLOW_TRACKING_URI``:
an ``mlflow server`` over HTTP, a SQLite file, Databricks, ...; here a temporary SQLite file, deleted at the end,
when it is unset), and registered models go to Azure ML. Registering the logged model makes the plugin download
its files through MLflow, with that tracking server's own credentials, and upload them to the workspace's
datastore; the version keeps the run id and its source.

What to register: the ``model_uri`` that ``log_model`` returns, as this script does. On MLflow 2.16 that is
``runs:/<run>/model`` (the model is in the run's artifacts). On MLflow 3 it is ``models:/m-<id>``: MLflow 3 keeps a
logged model's files beside the run, not in its artifacts. A ``runs:/<run>/<path>`` URI registers on both versions
too: on MLflow 2, and on MLflow 3 when the run's artifacts hold the model at ``<path>`` (logged by MLflow 2, or
with ``mlflow.log_artifacts``), it registers those files; on MLflow 3, for a model logged with ``log_model``,
MLflow finds the run's logged model of that name, registers its ``models:/m-<id>`` and logs a WARNING saying so
(same files, same run id).

    export MLFLOW_REGISTRY_URI=azureml-registry://subscriptions/<sub>/resourceGroups/<rg>/workspaces/<ws>
    export MLFLOW_TRACKING_URI=http://<your mlflow server>:5000      # optional
    python examples/register_from_any_tracking_server.py

``MODEL_NAME`` sets the registered model's name (default: ``tracked-<random suffix>``).
"""

from __future__ import annotations

import os
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
    name = os.environ.get("MODEL_NAME") or f"tracked-{uuid.uuid4().hex[:6]}"
    # A temporary folder for the loaded model's files, and the SQLite store when there is no tracking server.
    with tempfile.TemporaryDirectory(prefix="tracking-") as workdir:
        tracking_uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not tracking_uri:  # a throw-away SQLite store, its artifacts beside it (not in ./mlruns)
            tracking_uri = f"sqlite:///{workdir}/mlflow.db"
            mlflow.set_tracking_uri(tracking_uri)
            mlflow.set_experiment(experiment_id=mlflow.create_experiment("examples", f"{workdir}/artifacts"))
        mlflow.set_registry_uri(registry_uri)
        steps(name, tracking_uri, workdir)


def steps(name: str, tracking_uri: str, workdir: str) -> None:
    """The four steps; ``workdir`` receives the loaded model's files."""
    # 1. Train and log on the tracking server, as usual.
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    with mlflow.start_run() as run:
        mlflow.log_param("max_iter", 500)
        mlflow.log_metric("train_accuracy", model.score(X, y))
        if int(mlflow.__version__.split(".")[0]) >= 3:
            info = mlflow.sklearn.log_model(model, name="model", input_example=X.head(2))
        else:
            info = mlflow.sklearn.log_model(model, artifact_path="model", input_example=X.head(2))
    run_id = run.info.run_id
    print(f"1. tracking server {tracking_uri}: run {run_id}, artifacts at {run.info.artifact_uri}")

    # 2. Register the run's model in Azure ML: its files are copied from the tracking server's artifact store.
    #    MLflow 2: info.model_uri is runs:/<run>/model; MLflow 3: models:/m-<id>, the run's logged model (docstring).
    mv = mlflow.register_model(info.model_uri, name, tags={"tracked_on": "mlflow"})
    assert mv.run_id == run_id, (mv.run_id, run_id)
    print(f"2. Azure ML: {name} version {mv.version}, run {mv.run_id}, source {mv.source}")

    # 3. Load it from Azure ML and check it predicts as the trained model does.
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/{mv.version}", dst_path=workdir)  # else a new temp folder
    predictions = [int(p) for p in loaded.predict(X.head(5))]
    assert predictions == [int(p) for p in model.predict(X.head(5))], predictions
    print(f"3. loaded models:/{name}/{mv.version}: predictions {predictions}, as trained")

    # 4. The version points back at its run, which stays on the tracking server.
    tracked = MlflowClient().get_run(MlflowClient().get_model_version(name, mv.version).run_id)
    print(f"4. run {tracked.info.run_id} on the tracking server: metrics {tracked.data.metrics}")


if __name__ == "__main__":
    main()
