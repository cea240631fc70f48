"""One ``mlflow server`` whose model registry is an Azure ML workspace, used by clients over HTTP.

The server holds the plugin and the Azure credential; clients talk MLflow's REST API to it, so registering, tags,
aliases and search need neither on the client. Loading a model does: a version's files are read from Azure ML
directly (its download URI is ``azureml-registry://...``), so the client that loads needs the plugin and a
credential too. In a shell, the server is:

    export MLFLOW_REGISTRY_URI=azureml-registry://subscriptions/<sub>/resourceGroups/<rg>/workspaces/<ws>
    mlflow server --backend-store-uri sqlite:///mlflow.db --registry-store-uri "$MLFLOW_REGISTRY_URI" --port 5000
    # clients: MlflowClient(tracking_uri="http://<host>:5000", registry_uri="http://<host>:5000")

This script starts such a server on a free loopback port (its own process group, stopped with all its workers at
the end; POSIX only), uses it as a client would, and stops it. ``MLFLOW_REGISTRY_URI`` and an Azure credential are
what it needs (the server inherits them); ``MODEL_NAME`` sets the model's name (default: ``shared-<random suffix>``).
The server's SQLite store, artifacts and log are in a temporary folder, deleted at the end (the log's tail is
printed if the server fails to start).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import requests
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


@contextlib.contextmanager
def mlflow_server(registry_uri: str, workdir: Path, timeout: float = 120.0) -> Iterator[str]:
    """``mlflow server`` with Azure ML as its registry, on 127.0.0.1; yields its URL. Stopped with its workers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{workdir / 'server.db'}",
        "--artifacts-destination", str(workdir / "artifacts"),
        "--registry-store-uri", registry_uri,
    ]  # fmt: skip
    env = dict(os.environ, PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    (workdir / "tmp").mkdir(exist_ok=True)  # the server's temporary files (MLflow 3's db_init_lock-*), removed with it
    env["TMPDIR"] = str(workdir / "tmp")
    log_path = workdir / "server.log"
    with open(log_path, "ab") as log:  # a session of its own: its workers (gunicorn, uvicorn) are in its group
        server = subprocess.Popen(command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise SystemExit(f"mlflow server exited ({server.returncode}):\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"mlflow server did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.2)
        yield url
    finally:
        _stop_group(server)


def _stop_group(server: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM to the server's process group, then SIGKILL to whatever of it is left after ``timeout`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout)  # the CLI process, reaped: a zombie would count as a live member of its group
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(server.pid, 0)  # are its workers gone too?
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout)


def main() -> None:
    registry_uri = os.environ.get("MLFLOW_REGISTRY_URI", "")
    if not registry_uri.startswith("azureml-registry://"):
        raise SystemExit("Set MLFLOW_REGISTRY_URI (see README: `mlflow-azureml-registry local` prints it)")
    name = os.environ.get("MODEL_NAME") or f"shared-{uuid.uuid4().hex[:6]}"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # SIGTERM stops the server too (through finally)
    # The server's files, in a folder deleted after the server stops (the with statement exits right to left).
    with tempfile.TemporaryDirectory(prefix="shared-server-") as tmp, mlflow_server(registry_uri, Path(tmp)) as url:
        print(f"1. mlflow server at {url}, registry {registry_uri}")
        steps(name, url, tmp)
    print("5. server stopped")


def steps(name: str, url: str, workdir: str) -> None:
    """Steps 2 to 4, as a client of the server at ``url``; ``workdir`` receives the loaded model's files."""
    # From here on, the client knows only the server: tracking and registry both go to it.
    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)
    client = MlflowClient(tracking_uri=url, registry_uri=url)

    # 2. Log a run through the server (its artifact proxy) and register it: the server copies the files to Azure ML.
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    with mlflow.start_run() as run:
        if int(mlflow.__version__.split(".")[0]) >= 3:
            info = mlflow.sklearn.log_model(model, name="model", input_example=X.head(2))
        else:
            info = mlflow.sklearn.log_model(model, artifact_path="model", input_example=X.head(2))
    # MLflow 3: info.model_uri is models:/m-<id>, the logged model; MLflow 2: runs:/<run>/model.
    mv = mlflow.register_model(info.model_uri, name, tags={"served_by": "mlflow-server"})
    assert mv.run_id == run.info.run_id, mv
    print(f"2. registered {name} version {mv.version} through the server, run {mv.run_id}")

    # 3. Aliases, descriptions and search, all over HTTP.
    client.set_registered_model_alias(name, "champion", mv.version)
    client.update_registered_model(name, "scored nightly")
    champion = client.get_model_version_by_alias(name, "champion")
    found = [v.version for v in client.search_model_versions(f"name = '{name}'")]
    print(f"3. {name}@champion is version {champion.version}; versions {found}; download URI scheme "
          f"{client.get_model_version_download_uri(name, mv.version).split(':', 1)[0]}")

    # 4. Load by alias: the server resolves the alias, the files come from Azure ML (plugin and credential here).
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion", dst_path=workdir)  # else a new temp folder
    predictions = [int(p) for p in loaded.predict(X.head(3))]
    assert predictions == [int(p) for p in model.predict(X.head(3))], predictions
    print(f"4. loaded models:/{name}@champion through the server: predictions {predictions}")


if __name__ == "__main__":
    main()
