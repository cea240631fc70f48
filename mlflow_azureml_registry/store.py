"""``AzureMLRegistryStore``: MLflow's model registry on Azure ML model assets.

MLflow semantics live here; HTTP lives in ``azure/``. Operations Azure ML cannot do are refused
before any network call (see ``unsupported.py``). Updates are GET + PUT of the whole resource
(Azure ML has no PATCH), sending back what GET returned with only the changed fields replaced.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Optional

from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
)
from mlflow.store.model_registry.abstract_store import AbstractStore

from . import (
    assets,
    concurrency,
    mapping,
    prompts,
    remote_sources,
    search,
    sources,
    targets,
    tracking,
    transitions,
    validation,
)
from . import stages as _stages
from .unsupported import (
    DELETE_MODEL_MESSAGE,
    RENAME_MESSAGE,
    WebhooksRefused,
    refuse,
)
from .uri import (
    InvalidUri,
    parse_registry_uri,
)

_logger = logging.getLogger(__name__)

Json = dict[str, Any]


def _alias_not_found(alias: str) -> MlflowException:
    """MLflow's SQL registry's answer, code included (``INVALID_PARAMETER_VALUE``, not ``RESOURCE_DOES_NOT_EXIST``)."""
    return MlflowException(f"Registered model alias {alias} not found.", error_code=INVALID_PARAMETER_VALUE)


def _model_exists(name: str) -> MlflowException:
    return MlflowException(f"Registered Model (name={name}) already exists.", error_code=RESOURCE_ALREADY_EXISTS)


class AzureMLRegistryStore(WebhooksRefused, AbstractStore):
    """A registry store for one Azure ML workspace or registry, built by MLflow from an ``azureml-registry://`` URI.

    MLflow 3's prompt methods are ``AbstractStore``'s, on this store's model methods; what those do differently
    for prompts (template files, retiring a deleted prompt) is :mod:`.prompts`.

    MLflow caches one instance per process and shares it across threads, so construction does no
    I/O and the gateway (credential, HTTP pipeline) is created on first use.
    """

    def __init__(self, store_uri: str, tracking_uri: Optional[str] = None) -> None:
        super().__init__(store_uri=store_uri, tracking_uri=tracking_uri)
        try:
            self.workspace = parse_registry_uri(store_uri)
        except InvalidUri as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
        self.store_uri = store_uri
        self.tracking_uri = tracking_uri
        self._assets = targets.assets_for(self.workspace)  # the workspace's or registry's model-asset layer

    # -- reads shared by the operations (the model-asset layer; see assets.py) ------------------------
    def _container(self, name: str) -> Json:
        return self._assets.container(name)

    def _version(self, name: str, version: Any) -> Json:
        return self._assets.version(name, version)

    def _entity(self, name: str, resource: Json, container: Optional[Json], strict: bool = True) -> ModelVersion:
        resource = prompts.fill(self._assets, name, resource, strict=strict)  # a prompt's long template, from its file
        return mapping.model_version(resource, name, mapping.aliases_for_version(container, resource.get("name")))

    # -- registered models --------------------------------------------------------------------------
    def create_registered_model(self, name, tags=None, description=None, deployment_job_id=None):
        validation.model_name(name)
        tag_map = validation.registered_model_tags(tags)
        validation.description(description)
        # The common case is answered without the lease; the lease's storage is looked up meanwhile (once per
        # process), as a new model is written next.
        existing, _ = concurrency.together(lambda: self._assets.find_container(name), self._assets.prepare_writes)
        if existing is not None:
            raise prompts.name_taken(name, existing, tag_map) or _model_exists(name)
        with self._assets.writing(name):  # a retired prompt's container is absent: this PUT revives it
            existing = self._assets.find_container(name)
            if existing is not None:  # created while we waited for the lease
                raise prompts.name_taken(name, existing, tag_map) or _model_exists(name)
            props: Json = {"tags": tag_map, "properties": {}, "isArchived": False}
            if description is not None:
                props["description"] = description
            container = self._assets.put_container(name, {"properties": props}, mapping.TOUCH)
        return self._registered_model(container)

    def _registered_model(self, container: Json) -> RegisteredModel:
        name = container.get("name")  # MLflow's latest_versions carry no aliases (no container for them)
        return mapping.registered_model(container, load_latest=lambda: self._latest(name, None, None))

    def get_registered_model(self, name) -> RegisteredModel:
        return self._registered_model(self._container(name))

    def update_registered_model(self, name, description, deployment_job_id=None):
        validation.model_name(name)
        validation.description(description)
        with self._assets.writing(name):
            container = self._container(name)
            container.setdefault("properties", {})["description"] = description
            return self._registered_model(self._assets.put_container(name, container, mapping.TOUCH))

    def rename_registered_model(self, name, new_name):
        refuse(RENAME_MESSAGE.format(name=name, new_name=new_name))

    def delete_registered_model(self, name):
        if not prompts.supported():
            refuse(DELETE_MODEL_MESSAGE.format(name=name))
        prompts.delete(self._assets, name)  # models: refused as above; empty prompts: retired

    def set_registered_model_tag(self, name, tag):
        validation.registered_model_tags([tag])
        with self._assets.writing(name):
            container = self._container(name)
            tags = mapping.container_tags(container)
            tags[tag.key] = str(tag.value)
            container.setdefault("properties", {})["tags"] = tags
            self._assets.put_container(name, container, mapping.KEEP, answer=False)

    def delete_registered_model_tag(self, name, key):
        validation.tag_key(key)
        with self._assets.writing(name):
            container = self._container(name)
            tags = mapping.container_tags(container)
            if key in tags:
                del tags[key]
                container["properties"]["tags"] = tags
                self._assets.put_container(name, container, mapping.KEEP, answer=False)

    def search_registered_models(self, filter_string=None, max_results=None, order_by=None, page_token=None):
        return search.search_registered_models(
            filter_string, max_results, order_by, page_token, self._search_registry()
        )

    # -- reads for search.py (it decides what to ask for; absent models/versions are None) -----------
    def _search_registry(self) -> search.Registry:
        return search.Registry(
            scope=self.store_uri,
            get_container=self._assets.find_container,
            list_containers=self._assets.containers,
            get_version=self._assets.find_version,
            list_versions=lambda name, **kw: prompts.fill_all(
                self._assets, name, list(self._assets.matching_versions(name, **kw))
            ),
            model_entity=self._registered_model,
            # MLflow's SQL registry fills no aliases in version search results (only in single-version reads).
            version_entity=lambda name, resource, container: self._entity(name, resource, None, strict=False),
        )

    # -- stages -------------------------------------------------------------------------------------
    def _latest(
        self, name: str, wanted: Optional[Iterable[str]], container: Optional[Json], listed: Optional[list] = None
    ) -> list[ModelVersion]:
        """The highest version in each wanted stage, in MLflow's SQL order: stages by their lowest version
        (MLflow fills a dict walking the versions in order, so a stage's place is where it first appears).
        ``listed``: the versions :meth:`_listing` read already."""
        wanted_set = {_stages.canonical(s) for s in wanted} if wanted else set(_stages.MLFLOW_STAGES)
        best: dict[str, Json] = {}
        first: dict[str, int] = {}
        for resource in listed if listed is not None else self._listing(name, wanted):
            stage = mapping.mlflow_stage((resource.get("properties") or {}).get("stage"))
            if stage not in wanted_set:
                continue
            number = mapping.version_number(resource)
            first[stage] = min(first.get(stage, number), number)
            if stage not in best or number > mapping.version_number(best[stage]):
                best[stage] = resource
        return [self._entity(name, best[s], container, strict=False) for s in sorted(best, key=first.__getitem__)]

    def _listing(self, name: str, wanted: Optional[Iterable[str]]) -> list[Json]:
        """The model's versions, narrowed by Azure ML's stage filter when one stage is wanted."""
        wanted_set = {_stages.canonical(s) for s in wanted} if wanted else set(_stages.MLFLOW_STAGES)
        return list(self._assets.versions(name, stage=_stages.server_filter(wanted_set)))

    def get_latest_versions(self, name, stages=None):
        validation.model_name(name)
        stages = validation.stages(stages)
        # the container (the model must exist; aliases) and the versions do not wait for each other
        container, listed = concurrency.together(lambda: self._container(name), lambda: self._listing(name, stages))
        # MLflow's SQL store fills these versions' aliases from 2.21 (mlflow/mlflow#14942, with prompts), not before.
        return self._latest(name, stages, container if search.prompts_known() else None, listed)

    def transition_model_version_stage(self, name, version, stage, archive_existing_versions):
        updated, container = transitions.transition(self._assets, name, version, stage, archive_existing_versions)
        return self._entity(name, updated, container)

    # -- model versions -----------------------------------------------------------------------------
    def create_model_version(
        self,
        name,
        source,
        run_id=None,
        tags=None,
        run_link=None,
        description=None,
        local_model_path=None,
        model_id=None,
    ) -> ModelVersion:
        validation.model_name(name)
        tag_map = validation.model_version_tags(tags)
        prompt = prompts.is_prompt_version(source, tag_map)  # MLflow 3's placeholder source: files of our own
        if not prompt:
            sources.check_source(source, local_model_path)
            self._assets.check_source(source)
        validation.description(description)
        run_id = validation.run_id(run_id)
        validation.optional_text("run_link", run_link)
        validation.optional_text("model_id", model_id)
        # A version needs its registered model, as in MLflow; when files will be uploaded, where they go is looked
        # up meanwhile (the datastore, once per process).
        uploads = prompt or sources.uploads_files(source, local_model_path)
        prepare = self._assets.prepare_upload if uploads else (lambda: None)
        concurrency.together(lambda: self._container(name), prepare)
        source_tracking_uri = tracking.source_tracking_uri(self.tracking_uri)
        if run_id is None and model_id:
            run_id = _source_run_id(model_id, source_tracking_uri)
        facts = {
            mapping.PROP_SOURCE: source,
            mapping.PROP_RUN_ID: run_id,
            mapping.PROP_RUN_LINK: run_link,
            mapping.PROP_MODEL_ID: model_id,
        }
        if prompt:
            return self._entity(name, prompts.create_version(self._assets, name, tag_map, description, facts), None)
        remote = self._remote_source(source) if not local_model_path else None
        if remote is not None and remote.origin is not None:  # a version of another workspace or registry
            description, tag_map, facts = remote_sources.promoted(remote, description, tag_map, facts)
        new = assets.NewVersion(description, tag_map, facts)
        if remote is not None and self._assets.can_reference(remote):
            return self._entity(name, self._assets.create_in_place(name, remote, new), None)
        download_uri = remote.location.artifact_uri if remote is not None else source
        local = sources.local_model(download_uri, local_model_path=local_model_path, tracking_uri=source_tracking_uri)
        with local as model:
            stored = self._assets.create_from_folder(name, model, new)
        return self._entity(name, stored, None)  # a new number: no alias can name it yet

    def _remote_source(self, source: Any) -> Optional[sources.RemoteModel]:
        """Where the files of a source already in Azure ML are (see :func:`remote_sources.resolve`)."""
        return remote_sources.resolve(source, self._assets, self.workspace, self._newest)

    def _newest(self, name: str, stage: str) -> Json:
        """The highest version of a model in ``stage`` (``latest``: of all), as ``models:/<name>/<stage>`` means."""
        latest = self._latest(name, None if stage == "latest" else [stage], None)
        if not latest:
            raise MlflowException(
                f"No versions of model {name!r} in stage {stage!r}", error_code=RESOURCE_DOES_NOT_EXIST
            )
        return self._version(name, max(latest, key=lambda mv: int(mv.version)).version)

    def update_model_version(self, name, version, description):
        validation.model_name(name)
        validation.version(version)
        validation.description(description)
        with self._assets.writing(name):
            resource, container = concurrency.together(
                lambda: self._version(name, version), lambda: self._container(name)
            )
            resource.setdefault("properties", {})["description"] = description
            updated = self._assets.put_version(name, resource, mapping.TOUCH)
        return self._entity(name, updated, container)

    def delete_model_version(self, name, version):
        validation.model_name(name)
        validation.version(version)
        with self._assets.writing(name):  # the container, read with the version, does not change under the lease
            resource, container = concurrency.together(
                lambda: self._version(name, version), lambda: self._container(name)
            )
            number = str(resource.get("name"))
            self._assets.delete_version(name, number)
            # An alias must not outlive its version; the model's last update is this delete (as in MLflow).
            tags = mapping.container_tags(container)
            for alias, target in mapping.aliases(container).items():
                if target == number:
                    tags.pop(mapping.alias_tag(alias), None)
            container.setdefault("properties", {})["tags"] = tags
            self._assets.put_container(name, container, mapping.TOUCH, answer=False)

    def get_model_version(self, name, version) -> ModelVersion:
        validation.model_name(name)
        validation.version(version)  # before either request: bad input sends nothing
        resource, container = concurrency.together(lambda: self._version(name, version), lambda: self._container(name))
        return self._entity(name, resource, container)

    def get_model_version_download_uri(self, name, version) -> str:
        return self._assets.download_uri(name, self._version(name, version))

    def search_model_versions(self, filter_string=None, max_results=None, order_by=None, page_token=None):
        return search.search_model_versions(filter_string, max_results, order_by, page_token, self._search_registry())

    def set_model_version_tag(self, name, version, tag):
        validation.model_version_tags([tag])
        validation.version(version)
        with self._assets.writing(name):
            resource = self._version(name, version)
            prompts.check_tag_write(name, resource, tag.key, str(tag.value))
            props = resource.setdefault("properties", {})
            marker = prompts.replacing(resource, tag.key)  # a prompt value its files hold no longer counts there
            props["tags"] = {**(props.get("tags") or {}), tag.key: str(tag.value), **marker}
            self._assets.put_version(name, resource, mapping.KEEP, answer=False)

    def delete_model_version_tag(self, name, version, key):
        validation.tag_key(key)
        validation.version(version)
        with self._assets.writing(name):
            resource = self._version(name, version)
            marker = prompts.replacing(resource, key)  # a prompt value its files hold: gone for MLflow too
            tags = dict((resource.get("properties") or {}).get("tags") or {})
            if key in tags or marker:
                tags.pop(key, None)
                resource.setdefault("properties", {})["tags"] = {**tags, **marker}
                self._assets.put_version(name, resource, mapping.KEEP, answer=False)

    # -- aliases ------------------------------------------------------------------------------------
    def _alias_version(self, name: str, alias: str, container: Optional[Json] = None) -> str:
        container = container if container is not None else self._container(name)
        version = mapping.aliases(container).get(alias)
        if version is None:
            raise _alias_not_found(alias)
        return version

    def set_registered_model_alias(self, name, alias, version):
        validation.model_name(name)
        validation.alias(alias)
        validation.version(version)
        with self._assets.writing(name):  # the version must exist; read with the container
            resource, container = concurrency.together(
                lambda: self._version(name, version), lambda: self._container(name)
            )
            tags = mapping.container_tags(container)
            tags[mapping.alias_tag(alias)] = str(resource.get("name"))
            container.setdefault("properties", {})["tags"] = tags
            self._assets.put_container(name, container, mapping.KEEP, answer=False)

    def delete_registered_model_alias(self, name, alias):
        validation.alias(alias)
        with self._assets.writing(name):
            container = self._container(name)
            tags = mapping.container_tags(container)
            if tags.pop(mapping.alias_tag(alias), None) is not None:
                container["properties"]["tags"] = tags
                self._assets.put_container(name, container, mapping.KEEP, answer=False)

    def get_model_version_by_alias(self, name, alias):
        validation.alias(alias, lookup=True)
        container = self._container(name)
        if validation.is_latest_alias(alias):  # MLflow 3: the highest version, as its SQL store answers
            latest = self._latest(name, None, container)
            if not latest:
                raise MlflowException(f"Latest version not found for model {name}.", RESOURCE_DOES_NOT_EXIST)
            return max(latest, key=lambda mv: int(mv.version))
        version = self._alias_version(name, alias, container)
        try:
            resource = self._version(name, version)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise _alias_not_found(alias) from None
            raise
        return self._entity(name, resource, container)

    # -- MLflow internals ---------------------------------------------------------------------------
    def copy_model_version(self, src_mv, dst_name):
        """MLflow's copy: ``create_model_version(dst, "models:/src/v")``, which this store resolves itself."""
        return super().copy_model_version(src_mv, dst_name)

    def _await_model_version_creation(self, mv, await_creation_for):
        """Creation is synchronous (files first, then the version), so there is nothing to wait for."""
        return None


def _source_run_id(model_id: str, tracking_uri: Optional[str]) -> Optional[str]:
    """The run that logged an MLflow 3 logged model, as MLflow's own SQL registry records it."""
    try:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=tracking_uri).get_logged_model(model_id).source_run_id
    except (MlflowException, AttributeError) as exc:
        _logger.debug("No source run for logged model %s: %s", model_id, exc)
        return None
