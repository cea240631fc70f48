"""Entry points MLflow loads. ``import mlflow`` imports this module (artifact repositories are
registered eagerly), so it imports nothing: the store and repository load on first use."""

from __future__ import annotations


def registry_store(store_uri, tracking_uri=None):
    """Builder for the ``mlflow.model_registry_store`` entry point (MLflow passes both keywords)."""
    from .store import AzureMLRegistryStore

    return AzureMLRegistryStore(store_uri=store_uri, tracking_uri=tracking_uri)


def artifact_repository(artifact_uri, tracking_uri=None, registry_uri=None):
    """Builder for the ``mlflow.artifact_repository`` entry point."""
    from .artifacts import AzureMLArtifactRepository

    return AzureMLArtifactRepository(artifact_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)
