"""MLflow model registry on the Azure Machine Learning model registry.

Set ``mlflow.set_registry_uri("azureml-registry://subscriptions/<sub>/resourceGroups/<rg>/workspaces/<ws>")``
and use MLflow as usual. This module stays import-light: MLflow imports the package at
``import mlflow`` through its entry points, so public helpers load their modules on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0.dev0"

__all__ = [
    "__version__",
    "configure",
    "registry_uri_from_ml_client",
    "registry_uri_from_tracking_uri",
]


def configure(credential: Any = None, *, ml_client: Any = None) -> None:
    """Use this ``TokenCredential`` (or ``MLClient``'s credential) for every registry call in this process."""
    from .credentials import configure as _configure

    _configure(credential, ml_client=ml_client)


def registry_uri_from_ml_client(ml_client: Any) -> str:
    """``azureml-registry://...`` for the workspace an ``azure.ai.ml.MLClient`` is bound to."""
    from .uri import registry_uri_from_ml_client as _build

    return _build(ml_client)


def registry_uri_from_tracking_uri(tracking_uri: str) -> str:
    """``azureml-registry://...`` for an Azure ML MLflow tracking URI (``azureml://...``)."""
    from .uri import registry_uri_from_tracking_uri as _build

    return _build(tracking_uri)
