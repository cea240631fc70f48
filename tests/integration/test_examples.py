"""The examples run as a user runs them: a fresh process, with only the local workspace's printed environment.

Each example prints numbered lines; the tests check them and then what Azure ML holds (the local workspace's
state), so an example that prints the right words over the wrong result still fails. Each runs with ``TMPDIR`` a
fresh empty folder, which must be empty again when it ends (an example cleans up what it made), and its stderr
must not hold MLflow 3's warning for a ``runs:/`` URI that is not in the run's artifacts (the examples register
``log_model``'s ``model_uri``). The notebook runs in a Jupyter kernel of this venv, through nbclient, with a
kernel spec, connection file and IPython folder in the test's temporary folder (nothing is written to the home
folder).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from tests import processes
from tests.servers import MlflowServer

pytestmark = pytest.mark.emulator_only(
    "checks what the examples did on the emulator's state and its second workspace (run the examples themselves "
    "against a real workspace: README, Examples)"
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WORKSPACE, SECOND_WORKSPACE = "local-ws", "local-ws-2"


# MLflow 3's warning when register_model gets runs:/<run>/<path> and the run's artifacts hold no model there.
RUNS_URI_WARNING = "has no artifacts at artifact path"


def _env(workspace, tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment without MLflow's settings, plus the local workspace's printed variables.

    ``TMPDIR`` is ``tmp_path/tmp``, created empty (:func:`_assert_cleaned_up` checks it). The plugin's write locks
    (``MLFLOW_AZUREML_LOCK_DIR``) go to ``tmp_path/locks``: that per-user folder is meant to outlive a process.
    """
    # AZUREML_*: what an in-process MLClient of an earlier test left (AZUREML_CURRENT_CLOUD) is not the user's
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AZUREML_"))}
    env.update(workspace.env)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # examples import examples/azure_ml_view.py: no __pycache__ in the repo
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp_path / "tmp")
    env["MLFLOW_AZUREML_LOCK_DIR"] = str(tmp_path / "locks")
    env.update(extra)
    return env


def _assert_cleaned_up(tmp_path: Path) -> None:
    """Nothing is left in the example's ``TMPDIR`` (its temporary folders, MLflow's downloads, a server's files)."""
    left = sorted(p.name for p in (tmp_path / "tmp").iterdir())
    assert left == [], f"left in TMPDIR: {left}"


def _run(workspace, script: str, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    """Run ``examples/<script>``; on timeout it gets SIGTERM first, so an example stops the servers it started.

    Checks it exits 0 with no traceback and no :data:`RUNS_URI_WARNING` on stderr, and cleans up its ``TMPDIR``.
    """
    command = [sys.executable, str(EXAMPLES / script)]
    # Its own process group: once it is done (or killed), nothing it started is left running.
    with processes.group(command, env=_env(workspace, tmp_path, **extra), cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.communicate(timeout=30)
            finally:
                process.kill()
            raise
    done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-4000:]
    assert RUNS_URI_WARNING not in done.stderr, [line for line in done.stderr.splitlines() if RUNS_URI_WARNING in line]
    _assert_cleaned_up(tmp_path)
    return done


def _steps(stdout: str, count: int) -> list[str]:
    """The example's numbered lines ``1. ...`` to ``<count>. ...``, in order, without their numbers."""
    lines = [line for line in stdout.splitlines() if re.match(r"\d+\. ", line)]
    assert [line.split(".", 1)[0] for line in lines] == [str(n) for n in range(1, count + 1)], stdout
    return [line.split(". ", 1)[1] for line in lines]


def _version(workspace, name: str, version: str, ws: str = WORKSPACE) -> dict:
    """A model version's ``properties`` as Azure ML holds them."""
    return workspace.state.get_version(ws, name, version)["properties"]


def _container(workspace, name: str, ws: str = WORKSPACE) -> dict:
    return workspace.state.get_model(ws, name)["properties"]


def test_promotion_example_runs_the_three_step_flow(workspace, tmp_path, model_name):
    done = _run(workspace, "promote_to_registry.py", tmp_path, MODEL_NAME=model_name)
    lines = _steps(done.stdout, 4)
    assert "tags {'quality': 'gold'}" in lines[1]
    assert "predictions [" in lines[2]
    assert "'trained in dev'" in lines[3]
    # Azure ML's side: the version is in the registry and in the production workspace, with the run it came from.
    registry_version = workspace.registry_state.get_version("local-registry", model_name, "1")
    production_version = workspace.state.get_version(SECOND_WORKSPACE, model_name, "1")
    for version in (registry_version, production_version):
        facts = version["properties"]["properties"]
        assert facts["mlflow.runId"] and facts["mlflow.promotedFrom"].endswith("/versions/1")


def test_quickstart(workspace, tmp_path, model_name):
    done = _run(workspace, "quickstart.py", tmp_path, MODEL_NAME=model_name)
    lines = _steps(done.stdout, 4)
    run_id = re.match(r"logged run (\w+): (models:/m-|runs:/)", lines[0]).group(1)
    assert lines[1] == f"registered {model_name} version 1 (run {run_id})"
    assert lines[2].startswith(f"loaded models:/{model_name}/1: predictions [")
    assert lines[3].startswith(f"Azure ML's SDK sees {model_name}:1 type=mlflow_model stage=Development files=[")
    # Azure ML's side: an MLflow model of the run, with the example's tag.
    version = _version(workspace, model_name, "1")
    assert version["modelType"] == "mlflow_model" and "sklearn" in version["flavors"]
    assert version["properties"]["mlflow.runId"] == run_id
    assert version["tags"] == {"team": "quickstart"}


def test_register_from_a_tracking_server_that_is_not_azure_ml(workspace, tmp_path, model_name):
    with MlflowServer(tmp_path / "tracking-server") as server:  # MLflow's own server, its own SQL store
        done = _run(workspace, "register_from_any_tracking_server.py", tmp_path, MLFLOW_TRACKING_URI=server.url,
                    MODEL_NAME=model_name)
        lines = _steps(done.stdout, 4)
        pattern = rf"tracking server {re.escape(server.url)}: run (\w+), artifacts at mlflow-artifacts:"
        first = re.match(pattern, lines[0])
        assert first, lines[0]  # the run went to the server, its files through the server's artifact proxy
        run_id = first.group(1)
        tracked = mlflow.MlflowClient(tracking_uri=server.url).get_run(run_id)  # the run is on that server
        assert set(tracked.data.metrics) == {"train_accuracy"}
    assert f"{model_name} version 1, run {run_id}" in lines[1]
    assert "as trained" in lines[2]
    assert f"run {run_id} on the tracking server: metrics {{'train_accuracy'" in lines[3]
    version = _version(workspace, model_name, "1")
    assert version["modelType"] == "mlflow_model" and "sklearn" in version["flavors"]
    assert version["properties"]["mlflow.runId"] == run_id
    assert version["tags"] == {"tracked_on": "mlflow"}


def test_register_a_custom_model_folder(workspace, tmp_path, model_name):
    done = _run(workspace, "register_custom_model.py", tmp_path, MODEL_NAME=model_name)
    lines = _steps(done.stdout, 4)
    assert lines[0] == f"registered iris_tree/ as {model_name} version 1"
    assert "type=custom_model" in lines[1]
    assert "files ['README.md', 'config/labels.json', 'model.pkl'], predictions ['setosa', 'versicolor', " in lines[2]
    assert lines[3].startswith("download URI azureml-registry://") and lines[3].endswith("/iris_tree")
    version = _version(workspace, model_name, "1")
    assert version["modelType"] == "custom_model" and not version.get("flavors")
    assert version["tags"] == {"format": "pickle"}


def test_copy_a_version_between_workspaces(workspace, tmp_path, model_name):
    done = _run(workspace, "copy_between_workspaces.py", tmp_path, MODEL_NAME=model_name)
    lines = _steps(done.stdout, 4)
    assert lines[1] == (
        f"target workspace: {model_name} version 1, description 'validated on the 2024 holdout', "
        "tags {'validated': 'yes'}"
    )
    assert "predictions [" in lines[2] and "copied from alias candidate" in lines[3]
    source = _version(workspace, model_name, "1")
    source_id = (  # Azure ML's id of the source version, as the plugin writes it
        f"azureml://subscriptions/{workspace.subscription_id}/resourceGroups/{workspace.resource_group}"
        f"/workspaces/{WORKSPACE}/models/{model_name}/versions/1"
    )
    for number in ("1", "2"):  # by version number, then by alias: both from the source's version 1
        copy = _version(workspace, model_name, number, ws=SECOND_WORKSPACE)
        assert copy["properties"]["mlflow.promotedFrom"] == source_id
        assert copy["properties"]["mlflow.runId"] == source["properties"]["mlflow.runId"]
        assert (copy["description"], copy["tags"]) == ("validated on the 2024 holdout", {"validated": "yes"})
        assert f"/workspaces/{SECOND_WORKSPACE}/" in copy["modelUri"], copy["modelUri"]  # its own datastore
    assert _container(workspace, model_name, ws=SECOND_WORKSPACE)["tags"]["mlflow.alias.candidate"] == "2"


def test_shared_mlflow_server_in_front_of_azure_ml(workspace, tmp_path, model_name):
    done = _run(workspace, "shared_server.py", tmp_path, MODEL_NAME=model_name)
    lines = _steps(done.stdout, 5)
    port = int(re.match(r"mlflow server at http://127\.0\.0\.1:(\d+), ", lines[0]).group(1))
    run_id = re.search(r"through the server, run (\w+)$", lines[1]).group(1)
    assert f"{model_name}@champion is version 1; versions ['1']; download URI scheme azureml-registry" in lines[2]
    assert "predictions [" in lines[3] and lines[4] == "server stopped"
    with socket.socket() as probe:  # the server and its workers are gone: nothing listens on its port
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    # Azure ML's side: the server wrote the version, its description and the alias to the workspace.
    version = _version(workspace, model_name, "1")
    assert version["properties"]["mlflow.runId"] == run_id and version["modelType"] == "mlflow_model"
    assert version["tags"] == {"served_by": "mlflow-server"}
    container = _container(workspace, model_name)
    assert container["description"] == "scored nightly" and container["tags"]["mlflow.alias.champion"] == "1"


def test_stages_and_aliases_notebook(workspace, tmp_path, model_name, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    # A kernel spec for this venv's Python, found only here: the notebook's "python3" runs sys.executable.
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "test venv", "language": "python"}))
    for name in ("JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "jupyter" / name.lower()))
    kernels = KernelSpecManager(kernel_dirs=[str(spec.parent)])
    manager = KernelManager(kernel_name="python3", kernel_spec_manager=kernels,
                            connection_file=str(tmp_path / "jupyter" / "connection.json"))
    env = _env(workspace, tmp_path, MODEL_NAME=model_name, PYTHONPATH=str(EXAMPLES),
               IPYTHONDIR=str(tmp_path / "ipython"))
    committed = nbformat.read(EXAMPLES / "stages_and_aliases.ipynb", as_version=4)
    assert all(not cell.get("outputs") and not cell.get("execution_count") for cell in committed.cells if
               cell.cell_type == "code"), "commit the notebook with its outputs cleared"
    notebook = nbformat.from_dict(committed)
    try:
        NotebookClient(notebook, km=manager, timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute(
            env=env
        )
    finally:  # NotebookClient stops only a kernel it started; this one is the test's to stop
        if manager.has_kernel:
            manager.shutdown_kernel()

    streams = [out for cell in notebook.cells for out in cell.get("outputs", []) if out.get("output_type") == "stream"]
    stdout = "".join(out["text"] for out in streams if out.get("name") == "stdout")
    stderr = "".join(out["text"] for out in streams if out.get("name") == "stderr")
    assert RUNS_URI_WARNING not in stderr, stderr[-4000:]
    _assert_cleaned_up(tmp_path)
    lines = _steps(stdout, 6)
    assert f"model {model_name} in {workspace.registry_uri()}" in lines[0]
    assert lines[2].startswith(f"models:/{model_name}@champion is version 1: predictions")
    assert lines[3].startswith(f"champion moved: models:/{model_name}@champion is version 2: predictions")
    assert lines[4].startswith(f"models:/{model_name}/Production is version 2: predictions")
    # int versions, as MLflow's SQL registry hands them over in process
    assert lines[5] == "Azure ML stages {1: 'Archived', 2: 'Production'}; MLflow aliases {'champion': 2}"
    # Azure ML's side: the stage is each version's own field, the alias the model's tag.
    assert [_version(workspace, model_name, v)["stage"] for v in ("1", "2")] == ["Archived", "Production"]
    assert _container(workspace, model_name)["tags"]["mlflow.alias.champion"] == "2"
