"""Per-process gateways: one HTTP pipeline per (endpoint, workspace or registry), shared by store and artifact repo.

Only what cannot change under the user is cached here (credentials, datastore descriptions, SAS
until shortly before expiry); never model versions, stages or aliases.
"""

from __future__ import annotations

import threading
from typing import Any

from . import credentials, settings
from .azure.gateway import AzureMLGateway
from .azure.workspace import RegistryRef, Target

_lock = threading.Lock()
_gateways: dict[tuple[Any, ...], Any] = {}


def gateway(workspace: Target) -> Any:
    """The ``AzureMLGateway`` of a workspace, or the ``RegistryGateway`` of a registry (same model-asset surface)."""
    endpoint = settings.resource_manager_url()
    # A registry named with another subscription or group is one whose discovery fails: not the same gateway.
    key = (endpoint, workspace, getattr(workspace, "subscription_id", None), getattr(workspace, "resource_group", None))
    with _lock:
        found = _gateways.get(key)
        if found is None and isinstance(workspace, RegistryRef):
            from .azure.registry import RegistryGateway

            found = RegistryGateway(
                settings.registry_discovery_url(),
                workspace,
                credentials.resolve(endpoint),
                settings.http_settings(),
                scope=f"{endpoint}/.default",
                transfer_concurrency=settings.transfer_concurrency(),
            )
            _gateways[key] = found
        elif found is None:
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
