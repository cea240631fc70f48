"""MLflow 3's prompt registry on Azure ML: register a prompt, point the ``production`` alias at it, and load it in a
fresh process, as an application would.

    export MLFLOW_REGISTRY_URI=azureml-registry://subscriptions/<sub>/resourceGroups/<rg>/workspaces/<ws>
    python examples/genai_prompt.py           # MLflow 3 (mlflow.genai); pip install azure-ai-ml: step 3

Each prompt version is an Azure ML ``custom_model`` asset tagged ``mlflow.prompt.is_prompt=true``; its template is in
the version's files (``prompt/template.txt``) and, when short, in its tags too. ``PROMPT_NAME`` sets the prompt's
name (default: ``greeting-<random suffix>``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

import mlflow

LOAD_AND_FORMAT = textwrap.dedent(
    """
    import sys

    import mlflow

    mlflow.set_registry_uri(sys.argv[1])
    prompt = mlflow.genai.load_prompt(f"prompts:/{sys.argv[2]}@production")
    print(f"version {prompt.version}: {prompt.format(name='Ada', topic='Azure ML')}")
    """
)


def main() -> None:
    registry_uri = os.environ.get("MLFLOW_REGISTRY_URI", "")
    if not registry_uri.startswith("azureml-registry://"):
        raise SystemExit("Set MLFLOW_REGISTRY_URI (see README: `mlflow-azureml-registry local` prints it)")
    if not hasattr(mlflow, "genai") or not hasattr(mlflow.genai, "register_prompt"):
        raise SystemExit(f"MLflow {mlflow.__version__} has no prompt registry: install MLflow 3")
    name = os.environ.get("PROMPT_NAME") or f"greeting-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="genai-prompt-") as workdir:  # deleted at the end; the prompt stays
        if not os.environ.get("MLFLOW_TRACKING_URI"):  # MLflow records which experiments use a prompt: not in ./
            os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(workdir)}/mlflow.db"
        mlflow.set_registry_uri(registry_uri)
        _run(registry_uri, name)


def _run(registry_uri: str, name: str) -> None:

    # 1. Two versions of a prompt: the second is the one to ship.
    mlflow.genai.register_prompt(name, "Hi {{name}}.", commit_message="first draft")
    prompt = mlflow.genai.register_prompt(
        name,
        "Hello {{name}}! Ask me anything about {{topic}}.",
        commit_message="friendlier",
        tags={"team": "assistants"},
    )
    print(f"1. registered {name} version {prompt.version} with variables {sorted(prompt.variables)}")

    # 2. The application loads prompts:/<name>@production: moving the alias changes what it gets.
    mlflow.genai.set_prompt_alias(name, alias="production", version=prompt.version)
    print(f"2. alias production -> version {prompt.version}")

    # 3. Azure ML's view, through its own SDK (optional): a custom_model asset with MLflow's prompt tags.
    try:
        from azure_ml_view import ml_client  # examples/azure_ml_view.py: an MLClient on the same workspace

        asset = ml_client(registry_uri).models.get(name, version=str(prompt.version))
        print(f"3. Azure ML sees {asset.name}:{asset.version} type={asset.type} "
              f"is_prompt={asset.tags.get('mlflow.prompt.is_prompt')}")
    except (ImportError, SystemExit) as exc:  # no azure-ai-ml, or an Azure ML registry rather than a workspace
        print(f"3. Azure ML's view skipped ({exc})")

    # 4. A fresh process, as a deployed application: only the registry URI and the prompt's name.
    done = subprocess.run([sys.executable, "-c", LOAD_AND_FORMAT, registry_uri, name], capture_output=True,
                          text=True, env=dict(os.environ), timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"loading the prompt failed:\n{done.stderr[-3000:]}")
    print(f"4. a fresh process loaded prompts:/{name}@production, {done.stdout.strip()}")


if __name__ == "__main__":
    main()
