"""Per-process gateways: one HTTP pipeline per (endpoint, workspace), shared by store and artifact repo.

Only what cannot change under the user is cached here (credentials, datastore descriptions, SAS
until shortly before expiry); never model versions, stages or aliases.
"""

from __future__ import annotations

import threading

from . import credentials, settings
from .azure.gateway import AzureMLGateway
from .azure.workspace import WorkspaceRef

_lock = threading.Lock()
_gateways: dict[tuple[str, WorkspaceRef], AzureMLGateway] = {}


def gateway(workspace: WorkspaceRef) -> AzureMLGateway:
    endpoint = settings.resource_manager_url()
    key = (endpoint, workspace)
    with _lock:
        found = _gateways.get(key)
        if found is None:
            found = AzureMLGateway(
                endpoint,
                workspace,
                credentials.resolve(endpoint),
                settings.http_settings(),
                storage_account_url=settings.storage_account_url_template(),
                transfer_concurrency=settings.transfer_concurrency(),
            )
            _gateways[key] = found
        return found


def reset() -> None:
    """Forget cached gateways (after :func:`mlflow_azureml_registry.configure`)."""
    with _lock:
        old = list(_gateways.values())
        _gateways.clear()
    for g in old:
        g.close()
