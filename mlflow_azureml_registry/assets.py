"""The model-asset layer: Azure ML model containers and versions, as the store reads and writes them.

Between the store (MLflow semantics) and the gateway (HTTP). Reads raise MLflow's not-found errors, in MLflow's
words; writes send back the whole resource as read (Azure ML has no PATCH) with MLflow's last-update time kept
right (``mapping.LAST_UPDATED_TAG``), under the model's write lease (``azure/leases.py``): the REST API has no
conditional writes, so a read-modify-write must not interleave with another client's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable, Optional

from mlflow.exceptions import MlflowException

from . import mapping, validation
from . import stages as _stages
from .azure import errors as az
from .azure.gateway import AzureMLGateway
from .errors import azure_errors, not_found, to_mlflow

_logger = logging.getLogger(__name__)

Json = dict[str, Any]


def about_the_model(exc: az.AzureMLError) -> bool:
    """A 404 about the model or version itself, not ARM's about the subscription, resource group or workspace
    (a mistyped registry URI must say so, not that the model is missing)."""
    if exc.detail_code is not None:
        return exc.detail_code in ("ModelNotFound", "ModelVersionNotFound")
    return exc.code in (None, "UserError")


def model_not_found(name: str, exc: Optional[az.AzureMLError] = None) -> MlflowException:
    if exc is not None and not about_the_model(exc):
        return to_mlflow(exc)
    return not_found(f"Registered Model with name={name} not found", exc)


def version_not_found(name: str, version: str, exc: Optional[az.AzureMLError] = None) -> MlflowException:
    if exc is not None and not about_the_model(exc):
        return to_mlflow(exc)
    return not_found(f"Model Version (name={name}, version={version}) not found", exc)


class ModelAssets:
    """The containers and versions of one workspace. ``gateway`` is called on each use (the store builds
    no HTTP pipeline until its first request)."""

    def __init__(self, gateway: Callable[[], AzureMLGateway]) -> None:
        self._gateway = gateway

    # -- reads ---------------------------------------------------------------------------------------
    def container(self, name: str) -> Json:
        """The model container; ``RESOURCE_DOES_NOT_EXIST`` ("Registered Model with name=... not found")."""
        validation.model_name(name)
        with azure_errors():
            try:
                return self._gateway().models.get_container(name)
            except az.NotFound as exc:
                raise model_not_found(name, exc) from None

    def find_container(self, name: str) -> Optional[Json]:
        """The model container, or None when there is no such model."""
        with azure_errors():
            return self._absent_is_none(lambda: self._gateway().models.get_container(name))

    def version(self, name: str, version: Any) -> Json:
        """One version; ``RESOURCE_DOES_NOT_EXIST`` ("Model Version (name=..., version=...) not found")."""
        validation.model_name(name)
        version = validation.version(version)
        with azure_errors():
            try:
                return self._gateway().models.get_version(name, version)
            except az.NotFound as exc:
                raise version_not_found(name, version, exc) from None

    def find_version(self, name: str, version: str) -> Optional[Json]:
        with azure_errors():
            return self._absent_is_none(lambda: self._gateway().models.get_version(name, version))

    def versions(self, name: str, *, stage: Optional[str] = None) -> Iterator[Json]:
        """Every version with an integer number (others, made with the Azure ML CLI, are skipped with a
        warning), archived ones included; ``stage``: Azure ML's server-side filter."""
        with azure_errors():
            try:
                listed = self._gateway().models.list_versions(name, list_view_type=_stages.LIST_VIEW, stage=stage)
                for resource in listed:
                    if mapping.version_number(resource) is None:
                        _logger.warning(
                            "Skipping version %r of model %r: MLflow versions are integers", resource.get("name"), name
                        )
                        continue
                    yield resource
            except az.NotFound as exc:
                raise model_not_found(name, exc) from None

    def containers(self) -> Iterator[Json]:
        """Every model container of the workspace, archived ones included (Azure ML's paging)."""
        with azure_errors():
            yield from self._gateway().models.list_containers(list_view_type=_stages.LIST_VIEW)

    def matching_versions(
        self, name: str, *, tags: Optional[str] = None, properties: Optional[str] = None
    ) -> Iterator[Json]:
        """A model's versions narrowed by Azure ML's ``tags``/``properties`` list filters; nothing for a model
        that is gone (it may go between a listing and this read)."""
        with azure_errors():
            try:
                yield from self._gateway().models.list_versions(
                    name, list_view_type=_stages.LIST_VIEW, tags=tags, properties=properties
                )
            except az.NotFound as exc:
                if not about_the_model(exc):
                    raise
                return

    @staticmethod
    def _absent_is_none(get: Callable[[], Json]) -> Optional[Json]:
        try:
            return get()
        except az.NotFound as exc:
            if not about_the_model(exc):
                raise
            return None

    # -- writes --------------------------------------------------------------------------------------
    @contextmanager
    def writing(self, name: str) -> Iterator[None]:
        """Hold the model's write lease around a read-modify-write (no conditional writes in the API)."""
        validation.model_name(name)  # before the lease blob is named after it
        with azure_errors():
            lease = self._gateway().model_lease(name)
            lease.acquire()
        missing = False
        try:
            yield
        except MlflowException as exc:
            missing = exc.error_code == "RESOURCE_DOES_NOT_EXIST"
            raise
        finally:
            lease.release(model_missing=missing)

    def put_container(self, name: str, container: Json, last_updated: Any) -> Json:
        """PUT the container as read, with ``last_updated`` (``mapping.TOUCH``, ``KEEP`` or epoch ms)."""
        mapping.set_last_updated(container, last_updated)
        with azure_errors():
            return self._gateway().models.put_container(name, container)

    def put_version(self, name: str, resource: Json, last_updated: Any) -> Json:
        """PUT the version as read, with ``last_updated`` (``mapping.TOUCH``, ``KEEP`` or epoch ms)."""
        mapping.set_last_updated(resource, last_updated)
        with azure_errors():
            return self._gateway().models.put_version(name, str(resource.get("name")), resource)

    def delete_version(self, name: str, version: str) -> None:
        """DELETE the version; one already gone (a retried DELETE whose answer was lost, or another client's
        delete) is what was asked."""
        with azure_errors():
            try:
                self._gateway().models.delete_version(name, version)
            except az.NotFound:
                _logger.info("Model version %s/%s was already deleted", name, version)
