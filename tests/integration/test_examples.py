"""The examples run as a user runs them: a fresh process, with only the local workspace's printed environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(workspace, script: str, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(workspace.env)
    env.update(extra)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


def test_promotion_example_runs_the_three_step_flow(workspace, tmp_path, model_name):
    done = _run(workspace, "promote_to_registry.py", tmp_path, MODEL_NAME=model_name)
    lines = [line for line in done.stdout.splitlines() if line[:2] in ("1.", "2.", "3.", "4.")]
    assert [line[:2] for line in lines] == ["1.", "2.", "3.", "4."], done.stdout
    assert "tags {'quality': 'gold'}" in lines[1]
    assert "predictions [" in lines[2]
    assert "'trained in dev'" in lines[3]
    # Azure ML's side: the version is in the registry and in the production workspace, with the run it came from.
    registry_version = workspace.registry_state.get_version("local-registry", model_name, "1")
    production_version = workspace.state.get_version("local-ws-2", model_name, "1")
    for version in (registry_version, production_version):
        facts = version["properties"]["properties"]
        assert facts["mlflow.runId"] and facts["mlflow.promotedFrom"].endswith("/versions/1")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("script", ["quickstart.py"])
def test_other_examples_run(workspace, tmp_path, script):
    _run(workspace, script, tmp_path)
