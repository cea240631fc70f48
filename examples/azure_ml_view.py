"""What Azure ML users see: an ``azure.ai.ml.MLClient`` on the workspace an ``azureml-registry://`` URI names.

The examples use it to show their models as Studio, the CLI and the Azure ML SDK show them (``pip install
azure-ai-ml``). Against Azure it uses ``DefaultAzureCredential`` (``az login``, a service principal's variables, a
managed identity). Against the local workspace (README, *The local workspace*) it uses the endpoints and token that
``mlflow-azureml-registry local`` prints (``MLFLOW_AZUREML_RESOURCE_MANAGER_URL``, ``MLFLOW_AZUREML_LOCAL_TOKEN``).
"""

from __future__ import annotations

import os
import re
from typing import Any


def ml_client(registry_uri: str) -> Any:
    """An ``MLClient`` bound to the workspace of ``registry_uri`` (``azureml-registry://.../workspaces/<ws>``)."""
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    from mlflow_azureml_registry.credentials import StaticTokenCredential
    from mlflow_azureml_registry.uri import parse_registry_uri

    ws = parse_registry_uri(registry_uri)
    if ws.kind != "workspace":
        raise SystemExit(f"The examples show a workspace's models; {registry_uri} names an Azure ML registry")
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
    # The local workspace: a "cloud" whose endpoints are its control plane (the SDK takes custom clouds this way).
    arm = os.environ["MLFLOW_AZUREML_RESOURCE_MANAGER_URL"] + "/"
    cloud = "LocalWorkspace" + re.sub(r"\W", "", arm.rsplit(":", 1)[-1])
    metadata = {
        "azure_portal": arm,
        "resource_manager": arm,
        "active_directory": arm,
        "aml_resource_id": arm,
        "storage_endpoint": "core.localhost",
        "registry_discovery_endpoint": arm,
    }
    return MLClient(StaticTokenCredential(token), cloud=cloud, cloud_metadata=metadata, **common)
