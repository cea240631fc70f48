"""Train in a dev workspace, promote the chosen version to the organisation's Azure ML registry, and load
``models:/credit@champion`` from the registry in a fresh process (then bring it into a production workspace).

Against the local workspace (README, first command), everything has a default. Against Azure:
    export DEV_WORKSPACE_URI=azureml-registry://subscriptions/<sub>/resourceGroups/<rg>/workspaces/<dev-ws>
    export ORG_REGISTRY_URI=azureml-registry://registries/<registry>
    export PROD_WORKSPACE_URI=azureml-registry://subscriptions/<sub>/resourceGroups/<rg>/workspaces/<prod-ws>
    python examples/promote_to_registry.py
``MODEL_NAME`` sets the model's name (default: ``credit-<random suffix>``). Runs go to a temporary SQLite store,
deleted at the end; the versions stay in the dev workspace, the registry and the production workspace.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import uuid

import mlflow
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def _uris() -> tuple[str, str, str]:
    dev = os.environ.get("DEV_WORKSPACE_URI") or os.environ.get("MLFLOW_REGISTRY_URI", "")
    org = os.environ.get("ORG_REGISTRY_URI") or os.environ.get("MLFLOW_AZUREML_LOCAL_REGISTRY_URI", "")
    prod = os.environ.get("PROD_WORKSPACE_URI") or dev.replace("/workspaces/local-ws", "/workspaces/local-ws-2")
    if not (dev.startswith("azureml-registry://") and org.startswith("azureml-registry://")):
        raise SystemExit("Set DEV_WORKSPACE_URI and ORG_REGISTRY_URI (or start the local workspace, see README)")
    return dev, org, prod


def main() -> None:
    dev, org, prod = _uris()
    name = os.environ.get("MODEL_NAME") or f"credit-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="promote-") as workdir:  # the runs' store; the fresh process's files
        mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
        mlflow.set_experiment(experiment_id=mlflow.create_experiment("examples", f"{workdir}/artifacts"))
        steps(name, dev, org, prod, workdir)


def steps(name: str, dev: str, org: str, prod: str, workdir: str) -> None:
    """The four steps: register in ``dev``, promote to ``org``, load from it in a fresh process, copy to ``prod``."""
    # 1. Train and register in the dev workspace.
    mlflow.set_registry_uri(dev)
    X, y = load_iris(return_X_y=True, as_frame=True)
    with mlflow.start_run() as run:
        model = LogisticRegression(max_iter=500).fit(X, y)
        if int(mlflow.__version__.split(".")[0]) >= 3:
            info = mlflow.sklearn.log_model(model, name="model", input_example=X.head(2))
        else:
            info = mlflow.sklearn.log_model(model, artifact_path="model", input_example=X.head(2))
    # MLflow 3: info.model_uri is models:/m-<id>, the logged model; MLflow 2: runs:/<run>/model.
    dev_version = mlflow.register_model(info.model_uri, name, tags={"quality": "gold"})
    assert dev_version.run_id == run.info.run_id, dev_version
    MlflowClient().update_model_version(name, dev_version.version, "trained in dev")
    print(f"1. dev workspace: {name} version {dev_version.version}")

    # 2. Promote that version to the registry: files, description, tags, run and source come along.
    mlflow.set_registry_uri(org)
    promoted = mlflow.register_model(f"{dev}/models/{name}/versions/{dev_version.version}", name)
    MlflowClient().set_registered_model_alias(name, "champion", promoted.version)
    print(f"2. registry: {name} version {promoted.version}, run {promoted.run_id}, tags {promoted.tags}")

    # 3. Load it in a fresh process that knows only the registry URI.
    code = textwrap.dedent(
        f"""
        import mlflow
        from sklearn.datasets import load_iris
        model = mlflow.pyfunc.load_model("models:/{name}@champion", dst_path={workdir!r})
        print(list(model.predict(load_iris(as_frame=True).data.head(3))))
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI",)}
    env["MLFLOW_REGISTRY_URI"] = org
    loaded = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    print(f"3. fresh process, registry URI only: predictions {loaded.stdout.strip()}")

    # 4. And into the production workspace, by alias.
    prod_client = MlflowClient(registry_uri=prod)
    try:
        prod_client.create_registered_model(name)
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    copied = prod_client.create_model_version(name, f"{org}/models/{name}@champion")
    print(f"4. production workspace: {name} version {copied.version}, description {copied.description!r}")


if __name__ == "__main__":
    main()
