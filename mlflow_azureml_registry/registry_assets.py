"""An Azure ML registry's model assets, as the store reads and writes them (the registry half of the model-asset
layer; a workspace's is :mod:`.workspace_assets`).

Registry versions differ from workspace ones (recorded; ``local/FIDELITY.md`` "Registries"): their ``name`` is
the model's name, they have no ``stage`` field, their files are a blob URL in registry-managed storage, writes are
long-running operations and an unknown model's versions list empty. The view below gives the layers above the
workspace's shape (``name`` = version number, ``stage``), keeping MLflow's stage in the version tag
``mlflow.stage``, so the store, search and mapping need no registry branches.
"""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Iterator
from typing import Any, Optional

from . import mapping, session
from .assets import BlobPlace, ModelAssets, NewVersion
from .azure import errors as az
from .azure.registry import RegistryGateway
from .azure.workspace import RegistryRef
from .errors import azure_errors
from .registration import (
    MAX_ALLOCATION_ATTEMPTS,
    existing_version,
    folder_snapshot,
    manifest_blob,
    next_version,
    send_folder,
    stamp_model,
)
from .sources import LocalModel
from .uri import VersionFiles

_logger = logging.getLogger(__name__)

Json = dict[str, Any]


def _to_mlflow_shape(resource: Json) -> Json:
    """A registry version as a workspace version looks: ``name`` = the version (from the ``.../versions/<v>`` id),
    ``stage`` from the ``mlflow.stage`` tag."""
    resource = copy.deepcopy(resource)
    rid = str(resource.get("id") or "")
    if "/versions/" in rid:
        resource["name"] = rid.rsplit("/versions/", 1)[1]
    props = resource.setdefault("properties", {})
    props["stage"] = (props.get("tags") or {}).get(mapping.STAGE_TAG)
    return resource


def _to_registry_shape(resource: Json, model_name: str) -> Json:
    """The body to PUT: the stage back into its tag, ``name`` back to the model's name (as the service sent it)."""
    resource = copy.deepcopy(resource)
    props = resource.setdefault("properties", {})
    stage = props.pop("stage", None)
    tags = dict(props.get("tags") or {})
    if stage and stage not in ("None", "Development"):
        tags[mapping.STAGE_TAG] = stage
    else:
        tags.pop(mapping.STAGE_TAG, None)
    props["tags"] = tags
    props.pop("provisioningState", None)
    if "name" in resource:
        resource["name"] = model_name
    return resource


class _RegistryModelsView:
    """The gateway's registry model operations, in the workspace's shape (see the module docstring)."""

    def __init__(self, models: Any) -> None:
        self._models = models

    def get_container(self, name: str) -> Json:
        return self._models.get_container(name)

    def put_container(self, name: str, body: Json, *, read_back: bool = True) -> Json:
        return self._models.put_container(name, body, read_back=read_back)

    def list_containers(self, **kwargs: Any) -> Iterator[Json]:
        return self._models.list_containers(**kwargs)

    def get_version(self, name: str, version: str) -> Json:
        return _to_mlflow_shape(self._models.get_version(name, version))

    def put_version(self, name: str, version: str, body: Json, *, read_back: bool = True) -> Json:
        sent = _to_registry_shape(body, name)
        return _to_mlflow_shape(self._models.put_version(name, version, sent, read_back=read_back))

    def delete_version(self, name: str, version: str) -> None:
        self._models.delete_version(name, version)

    def list_versions(self, name: str, *, stage: Optional[str] = None, **filters: Any) -> Iterator[Json]:
        # Registries have no stage filter (spec): the store checks each version's stage itself.
        for resource in self._models.list_versions(name, **filters):
            yield _to_mlflow_shape(resource)


class RegistryAssets(ModelAssets):
    """The model containers and versions of one Azure ML registry, and their files."""

    def __init__(self, target: RegistryRef) -> None:
        super().__init__(lambda: session.gateway(target))
        self.target = target

    def _models(self) -> Any:
        return _RegistryModelsView(self._gateway().models)

    # -- files --------------------------------------------------------------------------------------
    def files(self, name: str, resource: Json) -> VersionFiles:
        """Where a version's files are: the version itself (its storage is reached through a data reference)."""
        return VersionFiles(self.target, name, str(resource.get("name")))

    def download_uri(self, name: str, resource: Json) -> str:
        return self.files(name, resource).artifact_uri

    def can_reference(self, remote: Any) -> bool:
        """Registry versions always own their files (a new version gets its own pending upload)."""
        return False

    def open_files(self, files: VersionFiles) -> tuple[Any, BlobPlace]:
        """The blob folder and place of a version's files: ``POST datarefs`` with the version's ``modelUri``
        (recorded), a read SAS for its container; the folder is the ``modelUri``'s path in that container."""
        resource = self.version(files.model_name, files.version)
        props = resource.get("properties") or {}
        model_uri = str(props.get("modelUri") or "")
        gateway: RegistryGateway = self._gateway()
        with azure_errors():
            reference = gateway.data_reference(files.model_name, files.version, model_uri or None)
            folder = gateway.sas_folder(reference.sas_uri)
        root = _path_in_container(model_uri)
        place = BlobPlace(
            root=root,
            path=f"{root}/{files.path}".strip("/") if files.path else root,
            uri=files.artifact_uri,
            manifest_sha256=(props.get("properties") or {}).get(mapping.PROP_MANIFEST) or None,
            manifest_blob=manifest_blob(root),
        )
        return folder, place

    def read_file(self, name: str, resource: Json, relative: str) -> Optional[bytes]:
        """The bytes of a small file of a version (``relative`` to its folder), or None when there is none: a data
        reference (``POST datarefs``, recorded) and one blob GET (a prompt's ``prompt/prompt.json``)."""
        model_uri = str((resource.get("properties") or {}).get("modelUri") or "")
        gateway: RegistryGateway = self._gateway()
        with azure_errors():
            reference = gateway.data_reference(name, str(resource.get("name")), model_uri or None)
            return gateway.sas_folder(reference.sas_uri).read(f"{_path_in_container(model_uri)}/{relative}")

    def check_source(self, source: Any) -> None:
        """Refuse, before any request, the sources a registry cannot have: a workspace's datastore and job paths
        and ``azureml:<name>:<version>`` (see :meth:`azureml_source`)."""
        from .sources import registry_asset

        if isinstance(source, str) and source.startswith("azureml:") and registry_asset(source) is None:
            self.azureml_source(source)

    def azureml_source(self, source: str) -> Any:
        """``azureml://datastores/...``, ``azureml://jobs/...`` and ``azureml:<name>:<version>`` name a
        workspace's datastore, jobs or models; a registry has none of them."""
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        raise MlflowException(
            f"Source {source[:200]!r} is relative to a workspace, and {self.target.name!r} is an Azure ML registry. "
            "Register it in its workspace, then promote that version: register_model('azureml-registry://<workspace>"
            "/models/<name>/versions/<version>', '<name>') with this registry as the registry URI.",
            error_code=INVALID_PARAMETER_VALUE,
        )

    def create_in_place(self, name: str, remote: Any, new: NewVersion) -> Json:
        raise AssertionError("registry versions always get their own files (can_reference is False)")

    # -- registration -------------------------------------------------------------------------------
    def create_from_folder(self, name: str, model: LocalModel, new: NewVersion) -> Json:
        """Register a local folder as a new version: under the model's write lock, take ``nextVersion``, ask for a
        pending upload at that number (``PUT tempdatarefs``; ``409``, or files already in it: the number is taken,
        try the next), upload the files to ``<registration id>/<folder>/`` with their manifest beside them, look the
        version up (made meanwhile: the next), PUT it with the registration id (a long-running operation; ``Asset
        paths cannot be updated``: the next), verify it, and stamp the model's last update."""
        snap = folder_snapshot(model)
        reg_id = str(uuid.uuid4())
        gateway: RegistryGateway = self._gateway()
        models = self._models()
        with azure_errors(), self.writing(name):
            container = models.get_container(name)
            candidate = next_version(container)
            for _ in range(MAX_ALLOCATION_ATTEMPTS):
                try:
                    reference = gateway.pending_upload(name, str(candidate))
                except az.Conflict:
                    candidate += 1  # that version exists
                    continue
                uploaded = self._upload(gateway, reference, model, snap, reg_id)
                if uploaded is None:
                    candidate += 1  # its storage holds files already: another writer has that number
                    continue
                model_uri, manifest_sha = uploaded
                if existing_version(models, name, candidate) is not None:
                    candidate += 1  # made meanwhile by a writer this machine's lock does not reach
                    continue
                body = mapping.new_version_body(
                    model_uri=model_uri,
                    model_type=model.model_type,
                    description=new.description,
                    tags=new.tags,
                    facts={**new.facts, mapping.PROP_MANIFEST: manifest_sha, mapping.PROP_REGISTRATION_ID: reg_id},
                    flavors=model.flavors,
                )
                try:
                    stored = models.put_version(name, str(candidate), body)
                except az.AssetPathImmutable:
                    candidate += 1  # another writer holds this number with other files
                    continue
                except (az.OutcomeUnknown, az.ServiceUnavailable, az.Throttled) as exc:
                    _logger.warning("Outcome of creating %s/%s is unclear (%s); checking", name, candidate, exc)
                    stored = existing_version(models, name, candidate)
                    if stored is None:
                        raise
                if mapping.registration_id(stored) == reg_id:
                    stamp_model(gateway.models, name, container, stored)
                    return stored
                candidate += 1
        raise az.Conflict(f"Could not allocate a version number for model {name!r} in registry {self.target.name!r}")

    def _upload(
        self, gateway: RegistryGateway, reference: Any, model: LocalModel, snap: Any, registration_id: str
    ) -> Optional[tuple[str, str]]:
        """Upload into the pending upload's container, under ``<registration id>/<folder>``: (``modelUri``, manifest
        digest), or None when the container holds files already. A pending upload is one version's own storage;
        that the service refuses one for a version that exists (``409``) is not recorded, so files already there
        mean another writer's version (one listing request). Two writers that get the same storage at once still
        never write into each other's folder, and their versions' ``modelUri`` differ, so the second PUT is refused
        (``Asset paths cannot be updated``) instead of replacing the first version."""
        from .content import sha256_hex

        folder = gateway.sas_folder(reference.sas_uri)
        if next(iter(folder.list_names("")), None) is not None:
            return None
        root = f"{registration_id}/{model.folder_name}"
        _, manifest = send_folder(folder, snap, root)
        base = reference.blob_uri.split("?", 1)[0].rstrip("/")
        return f"{base}/{root}", sha256_hex(manifest)


def _path_in_container(blob_url: str) -> str:
    """``https://<account host>/<container>/<path>`` (or path-style ``/<account>/<container>/<path>`` on a
    loopback emulator) → ``<path>``. The host is a replica that may change between reads (recorded): never used."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(blob_url)
    parts = [p for p in unquote(parsed.path).split("/") if p]
    host = (parsed.hostname or "").lower()
    skip = 2 if host in ("127.0.0.1", "localhost") or host.replace(".", "").isdigit() else 1
    return "/".join(parts[skip:])
