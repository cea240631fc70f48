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


# -- MLflow's registry-store registry, built under a lock ------------------------------------------------------
# MLflow (2.16 through 3.17 at least) builds its model-registry store registry on first use without a lock: it
# publishes the registry object, *then* registers the entry-point schemes. Threads making their first registry
# call at once (a serving app loading several models:/ URIs in a pool) see it half built and fail with
# "Model registry functionality is unavailable; got unsupported URI 'azureml-registry://...'" (7 of 8 threads,
# issue #15). This module is what MLflow imports at ``import mlflow``, before any registry call, so it makes the
# first build wait for itself: a wrapper takes a lock until one build has finished. Nothing else changes, and
# when MLflow's module does not have the shape this expects, it is left alone.
import sys  # noqa: E402  (stdlib only: this module must stay import-light)
import threading  # noqa: E402

_REGISTRY_MODULE = "mlflow.tracking._model_registry.utils"


def _build_registry_under_a_lock(module) -> None:
    original = getattr(module, "_get_store_registry", None)
    if original is None or not hasattr(module, "_model_registry_store_registry"):
        return
    if getattr(original, "__wrapped_by_azureml_registry__", False):
        return
    lock = threading.Lock()
    built = threading.Event()

    def _get_store_registry():
        if built.is_set():
            return original()
        with lock:
            registry = original()
            built.set()
            return registry

    _get_store_registry.__wrapped_by_azureml_registry__ = True
    _get_store_registry.__wrapped__ = original
    _get_store_registry.__doc__ = original.__doc__
    module._get_store_registry = _get_store_registry


class _WrapWhenImported:
    """A ``sys.meta_path`` finder that wraps MLflow's module right after it is executed, then steps aside."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _REGISTRY_MODULE:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            _build_registry_under_a_lock(module)

        spec.loader.exec_module = exec_module
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        return spec


def _install() -> None:
    module = sys.modules.get(_REGISTRY_MODULE)
    if module is not None:
        _build_registry_under_a_lock(module)
    elif not any(isinstance(f, _WrapWhenImported) for f in sys.meta_path):
        sys.meta_path.insert(0, _WrapWhenImported())


_install()
