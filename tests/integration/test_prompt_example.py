"""examples/genai_prompt.py runs as a user runs it (a fresh process, only the local workspace's printed environment),
on the newest MLflow: register a prompt, set ``production``, load and format it in another fresh process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_azureml_registry import prompts

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WORKSPACE = "local-ws"

pytestmark = pytest.mark.skipif(not prompts.supported(), reason="MLflow without the prompt API (MLflow 3)")


def test_genai_prompt_example(workspace, tmp_path, model_name):
    # Not MLflow's settings, nor the cloud an in-process MLClient of an earlier test named (AZUREML_CURRENT_CLOUD).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AZUREML_"))}
    env.update(workspace.env)
    scratch = tmp_path / "tmp"  # the example's temporary files: it deletes them when it ends
    scratch.mkdir()
    env.update(PROMPT_NAME=model_name, PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(scratch),
               MLFLOW_AZUREML_LOCK_DIR=str(tmp_path / "locks"))
    command = [sys.executable, str(EXAMPLES / "genai_prompt.py")]
    with subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 15)
            process.communicate(timeout=30)
            raise
    assert process.returncode == 0, f"{stdout[-2000:]}\n{stderr[-4000:]}"
    assert "Traceback" not in stderr, stderr[-4000:]
    assert not list(scratch.iterdir()), f"left in TMPDIR: {[p.name for p in scratch.iterdir()]}"
    lines = [line.split(". ", 1)[1] for line in stdout.splitlines() if re.match(r"\d\. ", line)]
    assert lines == [
        f"registered {model_name} version 2 with variables ['name', 'topic']",
        "alias production -> version 2",
        f"Azure ML sees {model_name}:2 type=custom_model is_prompt=true",
        f"a fresh process loaded prompts:/{model_name}@production, "
        "version 2: Hello Ada! Ask me anything about Azure ML.",
    ], stdout
    # What Azure ML holds: the container tagged as a prompt with the alias, the version's template inline.
    container = workspace.state.get_model(WORKSPACE, model_name)["properties"]
    assert container["tags"]["mlflow.prompt.is_prompt"] == "true"
    assert container["tags"]["mlflow.alias.production"] == "2"
    version = workspace.state.get_version(WORKSPACE, model_name, "2")["properties"]
    assert version["modelType"] == "custom_model"
    assert version["tags"]["mlflow.prompt.text"] == "Hello {{name}}! Ask me anything about {{topic}}."
    assert version["properties"]["mlflow.source"] == "dummy-source"
