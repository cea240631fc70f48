"""The model-asset layer: Azure ML model containers and versions, as the store reads and writes them.

Between the store (MLflow semantics) and the gateway (HTTP). Reads raise MLflow's not-found errors, in MLflow's
words; writes send back the whole resource as read (Azure ML has no PATCH) with MLflow's last-update time kept
right (``mapping.LAST_UPDATED_TAG``), under the model's write lease (``azure/leases.py``): the REST API has no
conditional writes, so a read-modify-write must not interleave with another client's.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Optional

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ErrorCode

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


def retired(container: Json) -> bool:
    """A deleted prompt's container (Azure ML containers cannot be deleted): every read treats it as absent."""
    return mapping.RETIRED_TAG in mapping.container_tags(container)


@dataclass(frozen=True)
class NewVersion:
    """What a new version carries besides its files: MLflow's description, tags and facts (source, run id, ...)."""

    description: Optional[str]
    tags: dict[str, str]
    facts: dict[str, Optional[str]]


@dataclass(frozen=True)
class BlobPlace:
    """Where in a blob container a version's files (or a file or folder ``path`` among them) are, for downloads:
    ``root`` is the version's folder, ``manifest_blob`` its per-file SHA-256 manifest, ``uri`` the artifact URI to
    name in messages."""

    root: str
    path: str
    uri: str
    manifest_sha256: Optional[str]
    manifest_blob: Optional[str]

    def child(self, relative: str) -> BlobPlace:
        relative = relative.strip("/")
        path = f"{self.path}/{relative}" if self.path and relative else relative or self.path
        uri = f"{self.uri.rstrip('/')}/{relative}" if relative else self.uri
        return BlobPlace(self.root, path, uri, self.manifest_sha256, self.manifest_blob)

    @property
    def artifact_uri(self) -> str:
        return self.uri


class ModelAssets:
    """The containers and versions of one workspace or registry (the model-asset interface the store speaks to;
    :mod:`.workspace_assets` and :mod:`.registry_assets` add where each keeps a version's files). ``gateway`` is
    called on each use (the store builds no HTTP pipeline until its first request)."""

    def __init__(self, gateway: Callable[[], AzureMLGateway]) -> None:
        self._gateway = gateway

    def prepare_writes(self) -> None:
        """Look up what the write lease needs before it is taken (nothing, unless the implementation has storage)."""

    def prepare_upload(self) -> None:
        """Look up where new files go, before they are needed (nothing, unless the implementation has a place)."""

    def check_source(self, source: Any) -> None:
        """Refuse, before any request, a source this workspace or registry cannot take (none, for a workspace)."""

    def _models(self) -> Any:
        """The gateway's model containers and versions (``azure.models.ModelAssets``'s operations)."""
        return self._gateway().models

    # -- reads ---------------------------------------------------------------------------------------
    def container(self, name: str) -> Json:
        """The model container; ``RESOURCE_DOES_NOT_EXIST`` ("Registered Model with name=... not found")."""
        validation.model_name(name)
        with azure_errors():
            try:
                container = self._models().get_container(name)
            except az.NotFound as exc:
                raise model_not_found(name, exc) from None
        if retired(container):
            raise model_not_found(name)
        return container

    def find_container(self, name: str) -> Optional[Json]:
        """The model container, or None when there is no such model (or it is a retired prompt)."""
        with azure_errors():
            container = self._absent_is_none(lambda: self._models().get_container(name))
        return None if container is None or retired(container) else container

    def version(self, name: str, version: Any) -> Json:
        """One version; ``RESOURCE_DOES_NOT_EXIST`` ("Model Version (name=..., version=...) not found")."""
        validation.model_name(name)
        version = validation.version(version)
        with azure_errors():
            try:
                return self._models().get_version(name, version)
            except az.NotFound as exc:
                raise version_not_found(name, version, exc) from None

    def alias_version(self, name: str, alias: str) -> str:
        """The version an alias names; ``INVALID_PARAMETER_VALUE`` as MLflow's SQL registry answers."""
        version = mapping.aliases(self.container(name)).get(alias)
        if version is None:
            from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

            raise MlflowException(f"Registered model alias {alias} not found.", error_code=INVALID_PARAMETER_VALUE)
        return version

    def find_version(self, name: str, version: str) -> Optional[Json]:
        with azure_errors():
            return self._absent_is_none(lambda: self._models().get_version(name, version))

    def versions(self, name: str, *, stage: Optional[str] = None) -> Iterator[Json]:
        """Every version with an integer number (others, made with the Azure ML CLI, are skipped with a
        warning), archived ones included; ``stage``: Azure ML's server-side filter."""
        with azure_errors():
            try:
                listed = self._models().list_versions(name, list_view_type=_stages.LIST_VIEW, stage=stage)
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
        """Every model container of the workspace, archived ones included (Azure ML's paging); retired prompts
        (``mapping.RETIRED_TAG``) are left out."""
        with azure_errors():
            for container in self._models().list_containers(list_view_type=_stages.LIST_VIEW):
                if not retired(container):
                    yield container

    def matching_versions(
        self, name: str, *, tags: Optional[str] = None, properties: Optional[str] = None
    ) -> Iterator[Json]:
        """A model's versions narrowed by Azure ML's ``tags``/``properties`` list filters; nothing for a model
        that is gone (it may go between a listing and this read)."""
        with azure_errors():
            try:
                yield from self._models().list_versions(
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

    def put_container(self, name: str, container: Json, last_updated: Any, *, answer: bool = True) -> Json:
        """PUT the container as read, with ``last_updated`` (``mapping.TOUCH``, ``KEEP`` or epoch ms); the
        container as stored, or with ``answer=False`` (the caller does not use it) what was sent, which on a
        registry saves the read-back its long-running PUT needs.

        An unclear outcome is settled by reading the container back (:func:`_settled`)."""
        mapping.set_last_updated(container, last_updated)
        models = self._models()
        with azure_errors():
            return _settled(
                lambda: models.put_container(name, container, read_back=answer),
                lambda: self._absent_is_none(lambda: models.get_container(name)),
                lambda stored: _holds(stored, container, CONTAINER_FIELDS),
                f"PUT model {name}",
            )

    def put_version(self, name: str, resource: Json, last_updated: Any, *, answer: bool = True) -> Json:
        """PUT the version as read, with ``last_updated`` (``mapping.TOUCH``, ``KEEP`` or epoch ms); ``answer``
        as for :meth:`put_container`.

        An unclear outcome is settled by reading the version back (:func:`_settled`)."""
        mapping.set_last_updated(resource, last_updated)
        models = self._models()
        version = str(resource.get("name"))
        with azure_errors():
            return _settled(
                lambda: models.put_version(name, version, resource, read_back=answer),
                lambda: self._absent_is_none(lambda: models.get_version(name, version)),
                lambda stored: _holds(stored, resource, VERSION_FIELDS),
                f"PUT model version {name}/{version}",
            )

    def delete_version(self, name: str, version: str) -> None:
        """DELETE the version; one already gone (a retried DELETE whose answer was lost, or another client's
        delete) is what was asked, and so is an unclear answer after which it is gone."""
        models = self._models()
        with azure_errors():
            try:
                _settled(
                    lambda: models.delete_version(name, version),
                    lambda: self._absent_is_none(lambda: models.get_version(name, version)),
                    lambda stored: stored is None,
                    f"DELETE model version {name}/{version}",
                )
            except az.NotFound:
                _logger.info("Model version %s/%s was already deleted", name, version)

    def restore(self, name: str, originals: list[Json], failure: MlflowException) -> MlflowException:
        """Put versions back as they were read (``originals``, last first) after ``failure`` stopped a write of
        several; the error to raise: ``failure``'s code, saying the model was left as it was, or which versions
        could not be put back and what to do."""
        code = ErrorCode.Value(failure.error_code)  # MlflowException keeps the name; it takes the number
        stuck = []
        for original in reversed(originals):
            try:
                self.put_version(name, copy.deepcopy(original), mapping.KEEP, answer=False)
            except MlflowException:
                stuck.append(str(original.get("name")))
        if not stuck:
            return MlflowException(
                f"{failure.message} Nothing was changed: the versions of model {name!r} were put back as they were.",
                error_code=code,
            )
        which = f"Version {stuck[0]}" if len(stuck) == 1 else f"Versions {', '.join(sorted(stuck, key=int))}"
        return MlflowException(
            f"{failure.message} {which} of model {name!r} could not be put back either, and stay as the failed "
            "call left them. Run the same call again to finish it.",
            error_code=code,
        )


CONTAINER_FIELDS = ("description", "tags", "isArchived")
VERSION_FIELDS = ("description", "tags", "stage", "isArchived")
UNCLEAR = (az.OutcomeUnknown, az.ServiceUnavailable, az.Throttled)
"""Failures after which a write may or may not have happened: the connection broke after sending, or 429 / 5xx
answers outlasted the retries (a service can answer 5xx after it wrote)."""


def _settled(write: Callable[[], Any], read_back: Callable[[], Any], done: Callable[[Any], bool], what: str) -> Any:
    """``write()``; after an unclear failure, read back and answer what actually happened: done → the stored
    resource (None for a delete), as if the write had answered; not done → the failure, unchanged.
    The create protocol settles its version PUT the same way (registration.py)."""
    try:
        return write()
    except UNCLEAR as exc:
        try:
            stored = read_back()
        except az.AzureMLError:
            raise exc from None
        if done(stored):
            _logger.info("%s: the answer was lost (%s), but the write is in place", what, exc.message)
            return stored
        raise


def _holds(stored: Optional[Json], sent: Json, fields: tuple[str, ...]) -> bool:
    """Whether ``stored`` carries what ``sent`` wrote, field by field (read-only fields aside)."""
    if stored is None:
        return False
    have, want = stored.get("properties") or {}, sent.get("properties") or {}
    return all((have.get(f) or None) == (want.get(f) or None) for f in fields)
