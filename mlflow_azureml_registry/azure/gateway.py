"""One workspace's Azure ML services: model assets, datastores and their blob folders."""

from __future__ import annotations

import threading
from typing import Any, Optional

from ..settings import HttpSettings
from .arm import ArmClient
from .blobs import BlobFolder
from .datastores import Datastore, Datastores, account_url
from .environment import environment_http_settings
from .errors import AzureMLError
from .jobs import Jobs
from .leases import LEASE_DATASTORE, ModelLease
from .models import ModelAssets
from .workspace import WorkspaceRef


def blob_client_options(url: str, http: HttpSettings) -> dict[str, Any]:
    """azure-storage-blob's client options: the environment's proxy and CA bundle, read once, and our timeouts,
    retries and transfer sizes."""
    return dict(
        **environment_http_settings(url),
        connection_timeout=http.connect_timeout,
        read_timeout=http.read_timeout,
        retry_total=http.retry_total,
        # azure-storage-blob backs off 15 s, 18 s, 24 s, ...: minutes before a headless job hears that
        # storage is down. 1 s + 2^n (3, 5, 9, 17 s) keeps retries without the long silence.
        initial_backoff=1,
        increment_base=2,
        max_single_put_size=4 * 1024 * 1024,
        max_block_size=4 * 1024 * 1024,
    )


class AzureMLGateway:
    def __init__(
        self,
        endpoint: str,
        workspace: WorkspaceRef,
        credential: Any,
        http: HttpSettings,
        *,
        storage_account_url: Optional[str] = None,
        transfer_concurrency: int = 8,
    ) -> None:
        self.workspace = workspace
        self._credential = credential
        self._arm = ArmClient(endpoint, credential, http)
        self._http = http
        self.models = ModelAssets(self._arm, workspace)
        self.datastores = Datastores(self._arm, workspace)
        self.jobs = Jobs(self._arm, workspace)
        self._storage_account_url = storage_account_url
        self._concurrency = transfer_concurrency
        self._lock = threading.Lock()
        self._datastore_cache: dict[str, Datastore] = {}
        self._container_cache: dict[str, Any] = {}

    def close(self) -> None:
        self._arm.close()

    def datastore(self, name: str) -> Datastore:
        with self._lock:
            cached = self._datastore_cache.get(name)
        if cached is None:
            cached = self.datastores.get(name)
            with self._lock:
                self._datastore_cache[name] = cached
        return cached

    def container_client(self, datastore_name: str) -> Any:
        """azure-storage-blob's client for the datastore's container, built once per process.

        Its credential is a SAS or key from ``listSecrets`` (a SAS renews itself before expiry) or the
        user's token (renewed by azure-core), so the client never goes stale.
        """
        with self._lock:
            cached = self._container_cache.get(datastore_name)
        if cached is not None:
            return cached
        datastore = self.datastore(datastore_name)
        credential = self.datastores.blob_credential(datastore, self._credential)
        from azure.storage.blob import ContainerClient

        url = account_url(datastore, self._storage_account_url)
        options = blob_client_options(url, self._http)
        client = ContainerClient(url, datastore.container_name, credential=credential, **options)
        with self._lock:
            return self._container_cache.setdefault(datastore_name, client)

    def blob_folder(self, datastore_name: str) -> BlobFolder:
        """Model-file transfers on the datastore's container."""
        return BlobFolder(self.container_client(datastore_name), concurrency=self._concurrency)

    def model_lease(self, model_name: str) -> ModelLease:
        """The lease that serialises writes to one model among this plugin's clients (see :mod:`.leases`)."""
        try:
            client = self.container_client(LEASE_DATASTORE)
        except AzureMLError as exc:
            return ModelLease.unavailable(model_name, exc)
        return ModelLease(client, model_name)
