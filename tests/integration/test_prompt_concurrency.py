"""Two processes registering one new prompt name at the same moment (MLflow 3's ``mlflow.genai.register_prompt``),
on the plugin and on MLflow's own SQL registry.

MLflow's client does get-then-create: ``get_registered_model`` (not found), then ``create_registered_model`` with
the prompt tag, then the version (``MlflowClient.register_prompt``, OSS branch). When both processes find the name
missing before either creates it, one create must lose. MLflow's SQL registry answers the loser's create from its
unique constraint: ``RESOURCE_ALREADY_EXISTS`` "Prompt (name=...) already exists." (``SqlAlchemyStore
.create_registered_model`` → ``handle_resource_already_exist_error``); the winner gets version 1. The plugin answers
the same, for the same reason: under the model's write lease, ``create_registered_model`` finds the container the
winner created (docs/design.md, *Prompts*).

The race is made certain, not left to timing: each worker, once MLflow's client has found the name missing, waits
until the other has too (files in a meeting folder), then goes on. Everything else is the real client, real
processes, the real registry.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mlflow_azureml_registry import prompts

pytestmark = pytest.mark.skipif(not prompts.supported(), reason="MLflow without the prompt API (MLflow 3)")

WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking._model_registry.client import ModelRegistryClient

    name, meeting, me, other = sys.argv[1:5]
    lookup = ModelRegistryClient.get_registered_model
    armed = [True]

    def get_registered_model(self, model_name):
        # register_prompt's first call: once the name is found missing, wait until the other process found it too.
        first, armed[0] = armed[0], False
        try:
            return lookup(self, model_name)
        except MlflowException:
            if first:
                open(os.path.join(meeting, me), "w").close()
                deadline = time.monotonic() + 120
                while not os.path.exists(os.path.join(meeting, other)):
                    if time.monotonic() > deadline:
                        sys.exit("the other process never looked the name up")
                    time.sleep(0.005)
            raise

    ModelRegistryClient.get_registered_model = get_registered_model
    try:
        made = mlflow.genai.register_prompt(name, "Hello {{x}}, from " + me, commit_message=me)
        print(json.dumps({"version": int(made.version), "template": made.template}))
    except MlflowException as exc:
        print(json.dumps({"error_code": exc.error_code, "message": exc.message}))
    """
)


def _race(tmp_path: Path, kind: str, registry_uri: str, name: str, env: dict[str, str]) -> dict[str, Any]:
    """Both workers' answers (``{"a": ..., "b": ...}``) when they register ``name`` at once on ``registry_uri``."""
    meeting = tmp_path / f"meeting-{kind}"
    meeting.mkdir()
    workers = {}
    try:
        for me, other in (("a", "b"), ("b", "a")):
            workers[me] = subprocess.Popen(
                [sys.executable, "-c", WORKER, name, str(meeting), me, other],
                env={**env, "MLFLOW_REGISTRY_URI": registry_uri,
                     "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/tracking-{kind}-{me}.db"},
                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
            )
        answers = {}
        for me, worker in workers.items():
            out, err = worker.communicate(timeout=300)
            assert worker.returncode == 0, f"{kind} worker {me}: {err[-3000:]}"
            assert "Traceback" not in err, f"{kind} worker {me}: {err[-3000:]}"
            answers[me] = json.loads(out.strip().splitlines()[-1])
        assert sorted(p.name for p in meeting.iterdir()) == ["a", "b"]  # both found the name missing
        return answers
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.communicate()


def _outcome(answers: dict[str, Any], name: str) -> list[Any]:
    """The two answers without who gave which: the winner's version and template, the loser's error."""
    shown = []
    for me, answer in answers.items():
        if "version" in answer:
            assert answer["template"] == f"Hello {{{{x}}}}, from {me}", answer
            shown.append({"version": answer["version"]})
        else:
            shown.append({"error_code": answer["error_code"], "message": answer["message"].replace(name, "<name>")})
    return sorted(shown, key=json.dumps)


@pytest.mark.parametrize("target", ["workspace", "registry"])
def test_two_processes_registering_one_new_prompt_answer_as_mlflows_registry(workspace, tmp_path, model_name,
                                                                              target):
    from mlflow import MlflowClient

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AZUREML_"))}
    env.update(workspace.env)
    sql = f"sqlite:///{tmp_path}/registry.db"
    MlflowClient(registry_uri=sql).search_registered_models()  # the schema, made once before the workers start
    ours = workspace.registry_uri() if target == "workspace" else workspace.azureml_registry_uri()
    outcomes = {kind: _race(tmp_path, kind, uri, model_name, env) for kind, uri in (("mlflow", sql), ("plugin", ours))}

    expected = [
        {"error_code": "RESOURCE_ALREADY_EXISTS", "message": "Prompt (name=<name>) already exists."},
        {"version": 1},
    ]
    assert _outcome(outcomes["mlflow"], model_name) == expected  # MLflow's SQL registry in the same race
    assert _outcome(outcomes["plugin"], model_name) == expected
    for kind, uri in (("mlflow", sql), ("plugin", ours)):
        client = MlflowClient(registry_uri=uri)
        (winner,) = [me for me, answer in outcomes[kind].items() if "version" in answer]
        stored = client.search_prompt_versions(model_name)
        assert [(v.version, v.template, v.commit_message) for v in stored] == [
            (1, f"Hello {{{{x}}}}, from {winner}", winner)
        ], kind
        # What the loser does next, as on MLflow's registry: register again, and get the next version.
        again = client.register_prompt(model_name, "Hello {{x}}, again")
        assert again.version == 2, kind
