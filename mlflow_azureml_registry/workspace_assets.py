"""A workspace's model assets, as the store reads and writes them (the workspace half of the model-asset layer;
a registry's is :mod:`.registry_assets`): a version's files live on a workspace datastore, uploaded
content-addressed by the create protocol (:mod:`.registration`) or referenced where they already are."""

from __future__ import annotations

import contextlib
from typing import Any, Optional

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from . import mapping, registration, session, settings, sources
from .assets import ModelAssets, NewVersion
from .azure.workspace import WorkspaceRef
from .errors import azure_errors
from .sources import LocalModel, RemoteModel
from .uri import DatastoreLocation, InvalidUri, VersionFiles

Json = dict[str, Any]


class WorkspaceAssets(ModelAssets):
    """The model containers and versions of one workspace, and their files."""

    def __init__(self, target: WorkspaceRef) -> None:
        super().__init__(lambda: session.gateway(target))
        self.target = target

    # -- files --------------------------------------------------------------------------------------
    def files(self, name: str, resource: Json) -> DatastoreLocation:
        """The datastore folder of a version's files, with the manifest digest they must match (if any).
        Raises ``InvalidUri`` when they are not on a datastore of a workspace."""
        with azure_errors():
            return mapping.version_location(resource, self.target)

    def download_uri(self, name: str, resource: Json) -> str:
        model_uri = (resource.get("properties") or {}).get("modelUri") or ""
        try:
            return mapping.version_location(resource, self.target).artifact_uri
        except InvalidUri:
            raise MlflowException(
                f"Model version {name}/{resource.get('name')} keeps its files at {model_uri!r}, which is not a "
                "workspace datastore path; download it with the Azure ML SDK instead.",
                error_code=INVALID_PARAMETER_VALUE,
            ) from None

    def open_files(self, files: VersionFiles) -> tuple[Any, DatastoreLocation]:
        """The blob folder and datastore location of a version's files (``files.path`` inside them)."""
        resource = self.version(files.model_name, files.version)
        try:
            location = mapping.version_location(resource, self.target).child(files.path)
        except InvalidUri as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
        with azure_errors():
            return self._gateway().blob_folder(location.datastore), location

    def read_file(self, name: str, resource: Json, relative: str) -> Optional[bytes]:
        """The bytes of a small file of a version (``relative`` to its folder), or None when there is none: one
        blob GET (a prompt version's ``prompt/prompt.json``, :mod:`.prompts`)."""
        with azure_errors():
            location = mapping.version_location(resource, self.target)
            return self._gateway().blob_folder(location.datastore).read(f"{location.path}/{relative}")

    def can_reference(self, remote: RemoteModel) -> bool:
        """Files already on this workspace's datastores are referenced, not copied (unless the user asked for copies
        of datastore and job paths, ``MLFLOW_AZUREML_COPY_DATASTORE_SOURCES``)."""
        location = remote.location
        return (
            isinstance(location, DatastoreLocation)
            and location.workspace == self.target
            and not (remote.referenced and settings.copy_datastore_sources())
        )

    def azureml_source(self, source: str) -> Optional[RemoteModel]:
        """``azureml://datastores/...``, ``azureml://jobs/...`` and ``azureml:<name>:<version>`` in this workspace."""
        with azure_errors():
            return sources.azureml_source(source, self._gateway())

    # -- registration -------------------------------------------------------------------------------
    def prepare_writes(self) -> None:
        """The lease's datastore and credential (a GET and ``listSecrets``, once per process), looked up while a
        new model's name is checked. A failure is left to the lease itself, which goes on without it and says so."""
        from .azure.errors import AzureMLError
        from .azure.leases import LEASE_DATASTORE

        with contextlib.suppress(AzureMLError):
            self._gateway().container_client(LEASE_DATASTORE)

    def prepare_upload(self) -> None:
        """The upload datastore and its credential (a GET and ``listSecrets``, once per process): a registration
        from files sends them while it checks that the model exists."""
        with azure_errors():
            self._gateway().container_client(registration.UPLOAD_DATASTORE)

    def create_from_folder(self, name: str, model: LocalModel, new: NewVersion) -> Json:
        """Upload a local folder (content-addressed, reused when already there) and create a version over it."""
        gateway = self._gateway()
        with azure_errors():
            uploaded = registration.upload_folder(gateway, model, model_name=name)
            body = mapping.new_version_body(
                model_uri=uploaded.location.asset_uri,
                model_type=model.model_type,
                description=new.description,
                tags=new.tags,
                facts={**new.facts, mapping.PROP_MANIFEST: uploaded.manifest_sha256},
                flavors=model.flavors,
            )
            return registration.create_version(gateway, name, body)

    def create_in_place(self, name: str, remote: RemoteModel, new: NewVersion) -> Json:
        """A version over files already in this workspace: nothing is copied.

        Registered versions' files are content-addressed and immutable; datastore and job paths are not, so such
        versions say so in their properties (``mlflow.referencedInPlace``).
        """
        gateway = self._gateway()
        facts = dict(new.facts)
        with azure_errors():
            remote = sources.describe_remote(remote, gateway.blob_folder(remote.location.datastore))
            if remote.referenced:
                facts[mapping.PROP_REFERENCED] = "true"
            if remote.location.manifest_sha256:
                facts[mapping.PROP_MANIFEST] = remote.location.manifest_sha256
            body = mapping.new_version_body(
                model_uri=remote.location.asset_uri,
                model_type=remote.model_type,
                description=new.description,
                tags=new.tags,
                facts=facts,
                flavors=remote.flavors,
            )
            return registration.create_version(gateway, name, body)
