"""The local Azure ML workspace: an emulated model-asset control plane plus Azurite, for tests and demos.

Nothing in the plugin imports this package; it sits beside the product code. Start it with
``mlflow-azureml-registry local`` (or ``python -m mlflow_azureml_registry.local``) or, in Python::

    from mlflow_azureml_registry.local import LocalWorkspace
    with LocalWorkspace() as ws:
        ...

Which behaviours are published spec, recorded from the real service, or assumed: ``FIDELITY.md``.
"""

from .workspace import LocalTokenCredential, LocalWorkspace

__all__ = ["LocalWorkspace", "LocalTokenCredential"]
