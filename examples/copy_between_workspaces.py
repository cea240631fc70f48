"""Copy a model version from one Azure ML workspace to another, with its metadata.

Registering a source workspace's version URI in the target workspace copies the files into the target's datastore
and brings the description, tags, run id and source along; Azure ML's version gets the property
``mlflow.promotedFrom`` (the id of the version it came from). A version is named by number
(``.../models/<name>/versions/<v>``) or by alias (``.../models/<name>@<alias>``). Azure ML registries take the
same URIs (``examples/promote_to_registry.py``). MLflow's own ``copy_model_version`` copies only within one
workspace: it takes ``models:/`` URIs of its client's registry.

Against Azure (the identity needs to read models in the source and write them in the target):
    export SOURCE_WORKSPACE_URI=azureml-registry://subscriptions/<sub>/resourceGroups/<rg>/workspaces/<dev-ws>
    export TARGET_WORKSPACE_URI=azureml-registry://subscriptions/<sub>/resourceGroups/<rg>/workspaces/<test-ws>
    python examples/copy_between_workspaces.py
Against the local workspace, the source is ``MLFLOW_REGISTRY_URI`` (``local-ws``) and the target its second
workspace, ``local-ws-2``. ``MODEL_NAME`` sets the model's name (default: ``copied-<random suffix>``). Runs go to
a temporary SQLite store, deleted at the end; the versions stay in both workspaces.
"""

from __future__ import annotations

import os
import tempfile
import uuid

import mlflow
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

LOCAL_SOURCE = "/workspaces/local-ws"  # the local workspace's first workspace; its second is local-ws-2


def _uris() -> tuple[str, str]:
    source = os.environ.get("SOURCE_WORKSPACE_URI") or os.environ.get("MLFLOW_REGISTRY_URI", "")
    target = os.environ.get("TARGET_WORKSPACE_URI", "")
    if not target and source.endswith(LOCAL_SOURCE):
        target = source + "-2"
    if not (source.startswith("azureml-registry://") and target.startswith("azureml-registry://")):
        raise SystemExit("Set SOURCE_WORKSPACE_URI and TARGET_WORKSPACE_URI (or start the local workspace, see README)")
    return source, target


def main() -> None:
    source, target = _uris()
    name = os.environ.get("MODEL_NAME") or f"copied-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="copy-") as workdir:  # the runs' store and the loaded model's files
        mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
        mlflow.set_experiment(experiment_id=mlflow.create_experiment("examples", f"{workdir}/artifacts"))
        steps(name, source, target, workdir)


def steps(name: str, source: str, target: str, workdir: str) -> None:
    """The four steps: register in ``source``, copy to ``target`` by number, load the copy, copy by alias."""
    # 1. Train and register in the source workspace, with a description, tags and an alias.
    mlflow.set_registry_uri(source)
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    with mlflow.start_run() as run:
        if int(mlflow.__version__.split(".")[0]) >= 3:
            info = mlflow.sklearn.log_model(model, name="model", input_example=X.head(2))
        else:
            info = mlflow.sklearn.log_model(model, artifact_path="model", input_example=X.head(2))
    # MLflow 3: info.model_uri is models:/m-<id>, the logged model; MLflow 2: runs:/<run>/model.
    original = mlflow.register_model(info.model_uri, name, tags={"validated": "yes"})
    source_client = MlflowClient(registry_uri=source)
    source_client.update_model_version(name, original.version, "validated on the 2024 holdout")
    source_client.set_registered_model_alias(name, "candidate", original.version)
    print(f"1. source workspace: {name} version {original.version}, alias candidate")

    # 2. Copy it by version number: registering the source's version URI in the target workspace.
    mlflow.set_registry_uri(target)
    copy = mlflow.register_model(f"{source}/models/{name}/versions/{original.version}", name)
    assert (copy.description, copy.tags, copy.run_id) == (
        "validated on the 2024 holdout",
        {"validated": "yes"},
        run.info.run_id,
    ), copy
    print(f"2. target workspace: {name} version {copy.version}, description {copy.description!r}, tags {copy.tags}")

    # 3. Load the copy from the target workspace (models:/ resolves against the global registry URI).
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/{copy.version}", dst_path=workdir)  # else a new temp folder
    predictions = [int(p) for p in loaded.predict(X.head(3))]
    assert predictions == [int(p) for p in model.predict(X.head(3))], predictions
    print(f"3. loaded models:/{name}/{copy.version} from the target: predictions {predictions}")

    # 4. Or by alias, with a client bound to the target (the model must exist there: it does after step 2).
    target_client = MlflowClient(registry_uri=target)
    by_alias = target_client.create_model_version(name, f"{source}/models/{name}@candidate")
    target_client.set_registered_model_alias(name, "candidate", by_alias.version)
    print(f"4. target workspace: {name} version {by_alias.version} copied from alias candidate, run {by_alias.run_id}")


if __name__ == "__main__":
    main()
